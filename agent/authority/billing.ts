import { decodeTwinSubtotal, amountsEqual, firstDifference, twinsTree, type TwinSubtotal } from "../billing/twins";
import { price, type PricingPolicy } from "../billing/pricing";
import { hashesEqual } from "../proofs/merkle";
import { addAmounts, zeroAmounts, type AmountField, type ProofHeader, type UsageAmounts } from "../proofs/proof";
import { ok, refused, type Result } from "../result";
import { WireError } from "../wire/codec";
import type { Refusal } from "./rules";

/**
 * Billing rules of the chain (docs/billing.md): pure functions, no I/O. The server checks a proof's
 * twin subtotals against its header with checkSettlement, prices each with billing/pricing.ts, and
 * the store applies the charges (debit each twin, credit the farm) in the transaction that accepts
 * the proof.
 */

/** Codes of settlement refusals (besides malformed). */
export type SettlementCode = "twins_missing" | "twin_count_mismatch" | "twins_root_mismatch" | "subtotal_mismatch";

/** Most twin subtotals one proof may carry (each twin with records on the node in the period). */
export const MAX_TWINS_PER_PROOF = 4096;

/** One twin's charge for one proof. */
export interface TwinCharge {
  twinId: number;
  recordCount: number;
  amounts: UsageAmounts;
  /** smallest unit, rounded down once (billing/pricing.ts) */
  amount: bigint;
}

/**
 * Check the twin subtotals sent with a proof against its header: a header from before billing
 * (no twins_root) takes none and bills nobody; else exactly twin_count strict encodings, twin ids
 * strictly ascending and nonzero, each with records, hashing up to twins_root, and adding up to the
 * header's totals and record count (the check that catches a node inflating one twin's subtotal
 * without inflating the totals). `twins` undefined: sent on proof.submit, without subtotals.
 */
export function checkSettlement(header: ProofHeader, twins: readonly Uint8Array[] | undefined, pricing: PricingPolicy): Result<TwinCharge[], Refusal> {
  const root = header.twinsRoot ?? new Uint8Array(0);
  if (root.length === 0) {
    if (twins && twins.length > 0) return refused({ code: "malformed", message: "the proof header has no twins_root, so it takes no twin subtotals" });
    return ok([]);
  }
  if (twins === undefined) {
    return refused({ code: "twins_missing", message: `the proof commits to ${header.twinCount ?? 0} twin subtotals: send it on proof.settle with them (docs/billing.md)` });
  }
  if (twins.length !== (header.twinCount ?? 0)) return refused({ code: "twin_count_mismatch", message: `the header says ${header.twinCount ?? 0} twin subtotals, ${twins.length} were sent` });
  const subtotals: TwinSubtotal[] = [];
  for (let i = 0; i < twins.length; i++) {
    let t: TwinSubtotal;
    try {
      t = decodeTwinSubtotal(twins[i]);
    } catch (err) {
      if (err instanceof WireError) return refused({ code: "malformed", message: `twin subtotal ${i}: ${err.message}` });
      throw err;
    }
    if (t.twinId === 0) return refused({ code: "malformed", message: `twin subtotal ${i}: twin_id 0 is not a twin` });
    if (t.recordCount === 0) return refused({ code: "malformed", message: `twin subtotal ${i} (twin ${t.twinId}): a subtotal sums at least one record` });
    if (i > 0 && t.twinId <= subtotals[i - 1].twinId) return refused({ code: "malformed", message: `twin subtotal ${i}: twin ids must be strictly ascending (${subtotals[i - 1].twinId} then ${t.twinId})` });
    subtotals.push(t);
  }
  const got = twinsTree(twins).root;
  if (!hashesEqual(got, root)) return refused({ code: "twins_root_mismatch", message: `the twin subtotals hash up to ${hex(got)}, not to the header's twins_root ${hex(root)}` });
  let sum = zeroAmounts();
  let records = 0;
  for (const t of subtotals) {
    sum = addAmounts(sum, t.amounts);
    records += t.recordCount;
  }
  if (!amountsEqual(sum, header.totals)) {
    const f = firstDifference(sum, header.totals) as AmountField;
    return refused({ code: "subtotal_mismatch", message: `the twin subtotals add up to ${f} ${sum[f]}, the header's totals say ${header.totals[f]}` });
  }
  if (records !== header.recordCount) return refused({ code: "subtotal_mismatch", message: `the twin subtotals count ${records} records, the header says ${header.recordCount}` });
  return ok(subtotals.map((t) => ({ twinId: t.twinId, recordCount: t.recordCount, amounts: t.amounts, amount: price(t.amounts, pricing) })));
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
