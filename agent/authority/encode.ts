import { SCHEME_WIRE } from "../identity/keys";
import { unitsToWire } from "../wire/codec";
import type { ChainFarmRecord, ChainNodeRecord, ChainTwinRecord, NodeChainState } from "./rules";

/** The authority's records in chain.proto's shapes (NodeInfo, TwinInfo, FarmInfo), as ChainServer replies with them. */
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
