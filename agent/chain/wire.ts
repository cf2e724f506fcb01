import type { WireRejection } from "../api/messages";
import type { Units } from "../capacity/units";
import { SCHEME_WIRE } from "../identity/keys";
import { type U64, type WireUnits, unitsToWire } from "../wire/codec";
import type { WireTwinBalance, WireTwinBill } from "./billing";
import type { ChainFarmRecord, ChainNodeRecord, ChainTwinRecord, NodeChainState } from "./rules";

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
  pricing: WirePricing | null;
  pricings: WirePricing[];
}

export interface WirePricing {
  cuPerHour: string;
  suPerHour: string;
  ipv4PerHour: string;
  nuPerGib: string;
  version: number;
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

export function nodeInfoToWire(r: ChainNodeRecord, s: NodeChainState): Record<string, unknown> {
  return {
    nodeId: r.nodeId,
    farmId: r.farmId,
    twinId: r.twinId,
    publicKey: r.publicKey,
    scheme: SCHEME_WIRE[r.scheme],
    total: unitsToWire(r.total),
    registeredMs: r.registeredMs,
    updatedMs: r.updatedMs,
    lastSequence: s.lastSequence,
    lastPeriodEndMs: s.lastPeriodEndMs,
    lastHash: s.lastHash,
  };
}

export function twinInfoToWire(t: ChainTwinRecord): Record<string, unknown> {
  return { twinId: t.twinId, publicKey: t.publicKey, scheme: SCHEME_WIRE[t.scheme], registeredMs: t.registeredMs };
}

export function farmInfoToWire(f: ChainFarmRecord, nodeCount: number): Record<string, unknown> {
  return { farmId: f.farmId, twinId: f.twinId, name: f.name, registeredMs: f.registeredMs, updatedMs: f.updatedMs, nodeCount, open: f.open, allowedTwins: f.allowedTwins };
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
