import type { WireRejection } from "../api/messages";
import type { Units } from "../capacity/units";
import { amountsFromWire, amountsToWire, type AmountField, type UsageAmounts } from "../proofs/proof";
import { toSafeNumber, type U64, type WireUnits, unitsToWire, WireError } from "../wire/codec";

/** Wire shapes of chain.proto as `decode` returns them (64-bit integers as decimal strings). */
export interface WireChainCall {
  timestampMs: U64;
  registerTwin: { twinId: number } | null;
  registerNode: { nodeId: number; farmId: number; twinId: number; total: WireUnits | null } | null;
  registerFarm: { farmId: number; twinId: number; name: string; access: number; allowTwins: number[]; disallowTwins: number[] } | null;
  setPower: { nodeId: number; state: number; target: number } | null;
}

export interface WireChainQuery {
  nodeId: number;
  twinId: number;
  wantProofs: boolean;
  fromSequence: U64;
  limit: number;
  farmId: number;
  billsTwinId: number;
  billsNodeId: number;
  billsSequence: U64;
}

export interface WireNodeInfo {
  nodeId: number;
  farmId: number;
  twinId: number;
  publicKey: Uint8Array;
  scheme: number;
  total: WireUnits | null;
  registeredMs: U64;
  updatedMs: U64;
  lastSequence: U64;
  lastPeriodEndMs: U64;
  lastHash: Uint8Array;
  powerState: number;
  powerTarget: number;
  powerChangedMs: U64;
}

export interface WireTwinInfo {
  twinId: number;
  publicKey: Uint8Array;
  scheme: number;
  registeredMs: U64;
}

export interface WireFarmInfo {
  farmId: number;
  twinId: number;
  name: string;
  registeredMs: U64;
  updatedMs: U64;
  nodeCount: number;
  open: boolean;
  allowedTwins: number[];
}

export interface WireChainReply {
  ok: boolean;
  rejection: WireRejection | null;
  node: WireNodeInfo | null;
  twin: WireTwinInfo | null;
  proofs: Array<{ proof: Uint8Array; acceptedMs: U64 }>;
  proofHash: Uint8Array;
  timestampMs: U64;
  farm: WireFarmInfo | null;
  /** register calls: registered, updated, renamed or unchanged ("" from a chain before ids were assigned) */
  outcome: string;
  balance: WireTwinBalance | null;
  bills: WireTwinBill[];
  twinsInDebt: number[];
  pricing: { cuPerHour: string; suPerHour: string; ipv4PerHour: string; nuPerGib: string } | null;
}

export interface WireChainEvent {
  kind: string;
  nodeId: number;
  twinId: number;
  sequence: U64;
  proofHash: Uint8Array;
  timestampMs: U64;
  farmId: number;
}

/** A ChainCall payload (what ChainClient signs). */
export function chainCallToWire(
  timestampMs: number,
  call: {
    registerTwin?: { twinId: number };
    registerNode?: { nodeId: number; farmId: number; twinId: number; total: Units };
    registerFarm?: { farmId: number; twinId: number; name: string; access?: number; allowTwins?: number[]; disallowTwins?: number[] };
    setPower?: { nodeId: number; state: number; target: number };
  },
): Record<string, unknown> {
  const o: Record<string, unknown> = { timestampMs };
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
}

export interface TwinBalance {
  twinId: number;
  balance: bigint;
  inDebt: boolean;
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
  };
}

export function balanceToWire(b: TwinBalance): Record<string, unknown> {
  return { twinId: b.twinId, balance: b.balance.toString(), inDebt: b.inDebt };
}

export function balanceFromWire(w: WireTwinBalance): TwinBalance {
  return { twinId: w.twinId, balance: bigintOf(w.balance, "balance"), inDebt: w.inDebt };
}
