import { leafHash, merkleLevels, pathFromLevels, rootOfLevels, type MerkleStep } from "../proofs/merkle";
import { addAmounts, AMOUNT_FIELDS, amountsFromWire, amountsToWire, zeroAmounts, type AmountField, type UsageAmounts, type UsageRecord } from "../proofs/proof";
import { decode, encode, strictEncodingProblem, WireError } from "../wire/codec";

/**
 * Twin subtotals (usage.proto TwinSubtotal; docs/billing.md): one leaf per twin with records in a
 * period, the sums of that twin's records, sorted by twin id. Their Merkle root and count go in the
 * proof header (twins_root, twin_count), so the chain can charge each twin without seeing
 * deployments and each twin can check its subtotal against its own records. Pure functions.
 */
export interface TwinSubtotal {
  twinId: number;
  recordCount: number;
  amounts: UsageAmounts;
}

/** The subtotals of `records`, sorted by twin id (records of twin 0 would be a bug upstream: kept as twin 0). */
export function twinSubtotals(records: readonly Pick<UsageRecord, "twinId" | "amounts">[]): TwinSubtotal[] {
  const byTwin = new Map<number, TwinSubtotal>();
  for (const r of records) {
    const t = byTwin.get(r.twinId);
    if (t) {
      t.recordCount++;
      t.amounts = addAmounts(t.amounts, r.amounts);
    } else {
      byTwin.set(r.twinId, { twinId: r.twinId, recordCount: 1, amounts: addAmounts(zeroAmounts(), r.amounts) });
    }
  }
  return [...byTwin.values()].sort((a, b) => a.twinId - b.twinId);
}

export function encodeTwinSubtotal(t: TwinSubtotal): Uint8Array {
  return encode("TwinSubtotal", { twinId: t.twinId, recordCount: t.recordCount, amounts: amountsToWire(t.amounts) });
}

/** Decode untrusted subtotal bytes: a strict encoding (no unknown fields, no padding), else WireError malformed. */
export function decodeTwinSubtotal(bytes: Uint8Array): TwinSubtotal {
  const problem = strictEncodingProblem("TwinSubtotal", bytes);
  if (problem !== undefined) throw new WireError("malformed", `not a strict TwinSubtotal encoding: ${problem}`);
  const w = decode("TwinSubtotal", bytes, { maxBytes: 1024, maxRepeated: 0 });
  return { twinId: w.twinId, recordCount: w.recordCount, amounts: amountsFromWire(w.amounts) };
}

/** The twins tree: root (ZERO_HASH for none) and the leaf hashes' levels, for paths. */
export function twinsTree(encoded: readonly Uint8Array[]): { root: Uint8Array; path(index: number): MerkleStep[] } {
  const levels = merkleLevels(encoded.map((b) => leafHash(b)));
  return { root: rootOfLevels(levels), path: (i) => pathFromLevels(levels, i) };
}

export function amountsEqual(a: UsageAmounts, b: UsageAmounts): boolean {
  return AMOUNT_FIELDS.every((f) => a[f] === b[f]);
}

/** The first field where a and b differ, for messages. */
export function firstDifference(a: UsageAmounts, b: UsageAmounts): AmountField | undefined {
  return AMOUNT_FIELDS.find((f) => a[f] !== b[f]);
}
