import { decodeTwinSubtotal, amountsEqual, firstDifference, twinsTree, type TwinSubtotal } from "../billing/twins";
import { price, type PricingPolicy } from "../billing/pricing";
import { hashesEqual } from "../proofs/merkle";
import { addAmounts, amountsFromWire, amountsToWire, zeroAmounts, type AmountField, type ProofHeader, type UsageAmounts } from "../proofs/proof";
import { toSafeNumber, WireError, type U64 } from "../wire/codec";
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
export function checkSettlement(header: ProofHeader, twins: readonly Uint8Array[] | undefined, pricing: PricingPolicy): { ok: true; charges: TwinCharge[] } | Refusal {
  const root = header.twinsRoot ?? new Uint8Array(0);
  if (root.length === 0) {
    if (twins && twins.length > 0) return { ok: false, code: "malformed", message: "the proof header has no twins_root, so it takes no twin subtotals" };
    return { ok: true, charges: [] };
  }
  if (twins === undefined) {
    return { ok: false, code: "twins_missing", message: `the proof commits to ${header.twinCount ?? 0} twin subtotals: send it on proof.settle with them (docs/billing.md)` };
  }
  if (twins.length !== (header.twinCount ?? 0)) return { ok: false, code: "twin_count_mismatch", message: `the header says ${header.twinCount ?? 0} twin subtotals, ${twins.length} were sent` };
  const subtotals: TwinSubtotal[] = [];
  for (let i = 0; i < twins.length; i++) {
    let t: TwinSubtotal;
    try {
      t = decodeTwinSubtotal(twins[i]);
    } catch (err) {
      if (err instanceof WireError) return { ok: false, code: "malformed", message: `twin subtotal ${i}: ${err.message}` };
      throw err;
    }
    if (t.twinId === 0) return { ok: false, code: "malformed", message: `twin subtotal ${i}: twin_id 0 is not a twin` };
    if (t.recordCount === 0) return { ok: false, code: "malformed", message: `twin subtotal ${i} (twin ${t.twinId}): a subtotal sums at least one record` };
    if (i > 0 && t.twinId <= subtotals[i - 1].twinId) return { ok: false, code: "malformed", message: `twin subtotal ${i}: twin ids must be strictly ascending (${subtotals[i - 1].twinId} then ${t.twinId})` };
    subtotals.push(t);
  }
  const got = twinsTree(twins).root;
  if (!hashesEqual(got, root)) return { ok: false, code: "twins_root_mismatch", message: `the twin subtotals hash up to ${hex(got)}, not to the header's twins_root ${hex(root)}` };
  let sum = zeroAmounts();
  let records = 0;
  for (const t of subtotals) {
    sum = addAmounts(sum, t.amounts);
    records += t.recordCount;
  }
  if (!amountsEqual(sum, header.totals)) {
    const f = firstDifference(sum, header.totals) as AmountField;
    return { ok: false, code: "subtotal_mismatch", message: `the twin subtotals add up to ${f} ${sum[f]}, the header's totals say ${header.totals[f]}` };
  }
  if (records !== header.recordCount) return { ok: false, code: "subtotal_mismatch", message: `the twin subtotals count ${records} records, the header says ${header.recordCount}` };
  return { ok: true, charges: subtotals.map((t) => ({ twinId: t.twinId, recordCount: t.recordCount, amounts: t.amounts, amount: price(t.amounts, pricing) })) };
}

/** A twin's bill as the chain stores it (one balance change per twin and proof). */
export interface TwinBill {
  twinId: number;
  nodeId: number;
  sequence: number;
  periodStartMs: number;
  periodEndMs: number;
  farmId: number;
  recordCount: number;
  amounts: UsageAmounts;
  amount: bigint;
  balanceAfter: bigint;
  /** "" or twin_in_debt: the balance did not cover the bill */
  code: string;
  /** the pricing policy version it was priced with (0: from before versions) */
  pricingVersion: number;
}

export interface TwinBalance {
  twinId: number;
  balance: bigint;
  inDebt: boolean;
}

/** The most a single fund call may add (dev grids), smallest unit. */
export const MAX_FUND = 10n ** 24n;

/** Parse a fund amount: a positive decimal integer up to MAX_FUND. */
export function parseFundAmount(s: string): { ok: true; amount: bigint } | Refusal {
  if (typeof s !== "string" || !/^[1-9][0-9]{0,24}$/.test(s) || BigInt(s) > MAX_FUND) {
    return { ok: false, code: "malformed", message: `amount ${JSON.stringify(s)}: expected a positive integer of the smallest unit, at most ${MAX_FUND}` };
  }
  return { ok: true, amount: BigInt(s) };
}

export interface WireTwinBill {
  twinId: number;
  nodeId: number;
  sequence: U64;
  periodStartMs: U64;
  periodEndMs: U64;
  amount: string;
  amounts: Partial<Record<AmountField, U64>> | null;
  farmId: number;
  balanceAfter: string;
  code: string;
  recordCount: number;
  pricingVersion: number;
}

export interface WireTwinBalance {
  twinId: number;
  balance: string;
  inDebt: boolean;
}

function bigintOf(s: string, field: string): bigint {
  if (!/^-?(0|[1-9][0-9]*)$/.test(s)) throw new WireError("malformed", `${field}: ${JSON.stringify(s)} is not a decimal integer`);
  return BigInt(s);
}

export function billToWire(b: TwinBill): Record<string, unknown> {
  return {
    twinId: b.twinId,
    nodeId: b.nodeId,
    sequence: b.sequence,
    periodStartMs: b.periodStartMs,
    periodEndMs: b.periodEndMs,
    amount: b.amount.toString(),
    amounts: amountsToWire(b.amounts),
    farmId: b.farmId,
    balanceAfter: b.balanceAfter.toString(),
    code: b.code,
    recordCount: b.recordCount,
    pricingVersion: b.pricingVersion,
  };
}

export function billFromWire(w: WireTwinBill): TwinBill {
  return {
    twinId: w.twinId,
    nodeId: w.nodeId,
    sequence: toSafeNumber(w.sequence, "sequence"),
    periodStartMs: toSafeNumber(w.periodStartMs, "periodStartMs"),
    periodEndMs: toSafeNumber(w.periodEndMs, "periodEndMs"),
    farmId: w.farmId,
    recordCount: w.recordCount,
    amounts: amountsFromWire(w.amounts),
    amount: bigintOf(w.amount, "amount"),
    balanceAfter: bigintOf(w.balanceAfter, "balanceAfter"),
    code: w.code,
    pricingVersion: w.pricingVersion ?? 0,
  };
}

export function balanceToWire(b: TwinBalance): Record<string, unknown> {
  return { twinId: b.twinId, balance: b.balance.toString(), inDebt: b.inDebt };
}

export function balanceFromWire(w: WireTwinBalance): TwinBalance {
  return { twinId: w.twinId, balance: bigintOf(w.balance, "balance"), inDebt: w.inDebt };
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
