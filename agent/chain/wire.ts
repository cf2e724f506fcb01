import type { Units } from "../capacity/units";
import { SCHEME_WIRE } from "../identity/keys";
import { unitsToWire } from "../wire/codec";
import type { WireChainCallInput, WireFarmInfoInput, WireNodeInfoInput, WireRejectionInput, WireTwinInfoInput } from "../wire/generated";
import { amountWireName, type ChainFarmRecord, type ChainNodeRecord, type ChainTwinRecord, type NodeChainState, type Refusal } from "./rules";

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
