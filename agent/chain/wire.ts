import type { Units } from "../capacity/units";
import { amountsFromWire, amountsToWire, type UsageAmounts } from "../proofs/proof";
import { toSafeNumber, unitsToWire, WireError } from "../wire/codec";
import type { WireChainCallInput, WireTwinBalance, WireTwinBalanceInput, WireTwinBill, WireTwinBillInput } from "../wire/generated";

/** chain.proto's messages as decode gives them (agent/wire/generated.ts), for the modules that speak to a chain. */
export type { WireChainCall, WireChainEvent, WireChainQuery, WireChainReply, WireFarmInfo, WireNodeInfo, WireTwinBalance, WireTwinBill, WireTwinInfo } from "../wire/generated";

/** A ChainCall payload (what ChainClient signs). */
export function chainCallToWire(
  timestampMs: number,
  call: {
    registerTwin?: { twinId: number };
    registerNode?: { nodeId: number; farmId: number; twinId: number; total: Units };
    registerFarm?: { farmId: number; twinId: number; name: string; access?: number; allowTwins?: number[]; disallowTwins?: number[] };
    setPower?: { nodeId: number; state: number; target: number };
  },
): WireChainCallInput {
  const o: WireChainCallInput = { timestampMs };
  if (call.registerTwin) o.registerTwin = call.registerTwin;
  if (call.registerNode) o.registerNode = { ...call.registerNode, total: unitsToWire(call.registerNode.total) };
  if (call.registerFarm) o.registerFarm = call.registerFarm;
  if (call.setPower) o.setPower = call.setPower;
  return o;
}

/*
 * Bills and balances as the chain answers them (docs/billing.md), with their conversions both ways:
 * the authority encodes them, ChainClient decodes them.
 */

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
  /** in debt: since when and when its grace ends (chain clock, ms; docs/billing.md "Grace") */
  inDebtSinceMs?: number;
  graceEndMs?: number;
}

/** The most a single fund call may add (dev grids), smallest unit. */
export const MAX_FUND = 10n ** 24n;

/** Parse a fund amount: a positive decimal integer up to MAX_FUND. */
export function parseFundAmount(s: string): { ok: true; amount: bigint } | { ok: false; code: "malformed"; message: string } {
  if (typeof s !== "string" || !/^[1-9][0-9]{0,24}$/.test(s) || BigInt(s) > MAX_FUND) {
    return { ok: false, code: "malformed", message: `amount ${JSON.stringify(s)}: expected a positive integer of the smallest unit, at most ${MAX_FUND}` };
  }
  return { ok: true, amount: BigInt(s) };
}

function bigintOf(s: string, field: string): bigint {
  if (!/^-?(0|[1-9][0-9]*)$/.test(s)) throw new WireError("malformed", `${field}: ${JSON.stringify(s)} is not a decimal integer`);
  return BigInt(s);
}

export function billToWire(b: TwinBill): WireTwinBillInput {
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

export function balanceToWire(b: TwinBalance): WireTwinBalanceInput {
  return { twinId: b.twinId, balance: b.balance.toString(), inDebt: b.inDebt, inDebtSinceMs: b.inDebtSinceMs ?? 0, graceEndMs: b.graceEndMs ?? 0 };
}

export function balanceFromWire(w: WireTwinBalance): TwinBalance {
  const since = toSafeNumber(w.inDebtSinceMs ?? 0, "in_debt_since_ms");
  const end = toSafeNumber(w.graceEndMs ?? 0, "grace_end_ms");
  return { twinId: w.twinId, balance: bigintOf(w.balance, "balance"), inDebt: w.inDebt, ...(since ? { inDebtSinceMs: since } : {}), ...(end ? { graceEndMs: end } : {}) };
}
