import { SCHEME_WIRE } from "../identity/keys";
import { unitsToWire } from "../wire/codec";
import type { WireFarmInfoInput, WireNodeInfoInput, WireRejectionInput, WireTwinInfoInput } from "../wire/generated";
import { amountWireName, type ChainFarmRecord, type ChainNodeRecord, type ChainTwinRecord, type NodeChainState, type Refusal } from "./rules";

/** The authority's records in chain.proto's shapes (NodeInfo, TwinInfo, FarmInfo), as ChainServer replies with them. */
export function nodeInfoToWire(r: ChainNodeRecord, s: NodeChainState): WireNodeInfoInput {
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

export function twinInfoToWire(t: ChainTwinRecord): WireTwinInfoInput {
  return { twinId: t.twinId, publicKey: t.publicKey, scheme: SCHEME_WIRE[t.scheme], registeredMs: t.registeredMs };
}

export function farmInfoToWire(f: ChainFarmRecord, nodeCount: number): WireFarmInfoInput {
  return { farmId: f.farmId, twinId: f.twinId, name: f.name, registeredMs: f.registeredMs, updatedMs: f.updatedMs, nodeCount, open: f.open, allowedTwins: f.allowedTwins };
}

/**
 * A chain refusal as a Rejection. The message is shared with the node API, whose field names say
 * what admission reports (`free`); the chain's `exceeds_capacity` names the amount field in `unit`
 * (snake_case, e.g. cru_seconds), the proof's total in `requested` and, in `free`, the most the
 * node's registered capacity allows in the period (Refusal.allowed).
 */
export function refusalToWire(r: Refusal): WireRejectionInput {
  return {
    code: r.code,
    message: r.message,
    unit: r.unit ? amountWireName(r.unit) : "",
    requested: r.requested !== undefined ? r.requested.toString() : 0,
    free: r.allowed !== undefined ? r.allowed.toString() : 0,
  };
}
