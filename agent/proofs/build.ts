import { encodeTwinSubtotal, twinSubtotals, twinsTree } from "../billing/twins";
import { DOMAIN } from "../identity/domains";
import { seal } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import { leafHash, merkleRoot } from "./merkle";
import { addAmounts, AMOUNT_FIELDS, encodeProofHeader, encodeRecord, proofHash, zeroAmounts, type ProofHeader, type UsageAmounts, type UsageRecord } from "./proof";

/**
 * Building one usage proof (DESIGN.md, "Usage proofs"; docs/usage-proofs.md; docs/billing.md).
 * Pure: no I/O and no clock. From the previous proof (the head) and one metered period it makes
 * what the node keeps and sends: the encoded records in leaf order, the header committing to them
 * (records root) and to the twin subtotals (twins root), the header signed in a `Signed` envelope
 * (domain UsageProof), the hash the next proof chains to, and the encoded subtotals that travel
 * with the proof for billing. UsageService (agent/usage/service.ts) stores the result in its outbox;
 * the benchmarks and the footprint measurement build their proofs with it too.
 */

/** Where the next proof goes on from: the last proof's sequence and hash, and the end of its period (sequence 0 and ZERO_HASH before the first). */
export interface ProofHead {
  sequence: number;
  periodEndMs: number;
  hash: Uint8Array;
}

/**
 * One node's metered period from the head's end to `periodEndMs` (usage/meter.ts meterPeriod gives
 * records, totals and downtimeMs).
 */
export interface MeteredPeriod {
  nodeId: number;
  farmId: number;
  periodEndMs: number;
  /** sorted by deployment id, ascending, each id once (the leaf order) */
  records: readonly UsageRecord[];
  /** the sum of the records' amounts */
  totals: UsageAmounts;
  downtimeMs: number;
}

export interface BuiltProof {
  header: ProofHeader;
  /** the encoded header: what is signed, and what the hash is of */
  headerBytes: Uint8Array;
  /** Signed{UsageProof}: what goes to the chain */
  envelope: Uint8Array;
  /** proofHash(headerBytes): the next proof's previous hash */
  hash: Uint8Array;
  /** the encoded records in leaf order (kept by the node for audits) */
  records: Array<{ deploymentId: number; bytes: Uint8Array }>;
  /** the encoded twin subtotals the header's twins_root commits to, sorted by twin id (sent with the proof) */
  twins: Uint8Array[];
}

/** The encoded twin subtotals of a proof's records (docs/billing.md), in the order twins_root commits to. */
export function proofTwins(records: readonly UsageRecord[]): Uint8Array[] {
  return twinSubtotals(records).map(encodeTwinSubtotal);
}

/**
 * The signed proof of `period`, following `head`: sequence head.sequence + 1, the period
 * [head.periodEndMs, period.periodEndMs), previous hash head.hash. Throws on input no meter gives
 * (a bug in the caller): a period that does not end after the head, records out of order, totals
 * that are not the records' sum, numbers out of range.
 */
export function buildProof(head: ProofHead, period: MeteredPeriod, signer: Signer): BuiltProof {
  const startMs = head.periodEndMs;
  const endMs = period.periodEndMs;
  if (!Number.isSafeInteger(head.sequence) || head.sequence < 0) throw new Error(`buildProof: head sequence must be a non-negative integer, got ${head.sequence}`);
  if (head.hash.length !== 32) throw new Error(`buildProof: head hash must be 32 bytes, got ${head.hash.length}`);
  if (!Number.isSafeInteger(startMs) || !Number.isSafeInteger(endMs) || endMs <= startMs) throw new Error(`buildProof: the period [${startMs}, ${endMs}) must end after the head's end`);
  if (!Number.isSafeInteger(period.downtimeMs) || period.downtimeMs < 0 || period.downtimeMs > endMs - startMs) {
    throw new Error(`buildProof: downtime ${period.downtimeMs} ms is not within the period of ${endMs - startMs} ms`);
  }
  let sum = zeroAmounts();
  period.records.forEach((r, i) => {
    if (i > 0 && r.deploymentId <= period.records[i - 1].deploymentId) throw new Error(`buildProof: records must be sorted by deployment id, each once: ${period.records[i - 1].deploymentId} then ${r.deploymentId}`);
    sum = addAmounts(sum, r.amounts);
  });
  const off = AMOUNT_FIELDS.find((f) => sum[f] !== period.totals[f]);
  if (off) throw new Error(`buildProof: totals.${off} ${period.totals[off]} is not the records' sum ${sum[off]}`);

  const records = period.records.map((r) => ({ deploymentId: r.deploymentId, bytes: encodeRecord(r) }));
  const twins = proofTwins(period.records);
  const header: ProofHeader = {
    nodeId: period.nodeId,
    farmId: period.farmId,
    sequence: head.sequence + 1,
    periodStartMs: startMs,
    periodEndMs: endMs,
    previousHash: head.hash,
    recordCount: records.length,
    totals: period.totals,
    recordsRoot: merkleRoot(records.map((r) => leafHash(r.bytes))),
    downtimeMs: period.downtimeMs,
    twinsRoot: twinsTree(twins).root,
    twinCount: twins.length,
  };
  const headerBytes = encodeProofHeader(header);
  return { header, headerBytes, envelope: seal(signer, DOMAIN.UsageProof, headerBytes), hash: proofHash(headerBytes), records, twins };
}

/** The head after `p`: where the proof after it goes on from. */
export function headAfter(p: BuiltProof): ProofHead {
  return { sequence: p.header.sequence, periodEndMs: p.header.periodEndMs, hash: p.hash };
}
