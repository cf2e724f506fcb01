/**
 * Gossip messages on the wire (proto/tfgrid/capacity/v1/gossip.proto): plain objects in, bytes
 * out, and back. Pure: no I/O, no clock.
 */
import type { Units } from "../capacity/units";
import { DOMAIN } from "../identity/domains";
import { SCHEME_WIRE, signDomain, type SchemeName, type Signer } from "../identity/keys";
import { decode, encode, toSafeNumber, unitsFromWire, unitsToWire, WireError } from "../wire/codec";
import type { WireSignedInput } from "../wire/generated";
import { HEARTBEAT_RANGE_MS } from "./options";

export type PowerState = "up" | "standby";

/** A capacity announcement: what a node has, as it tells its peers. */
export interface Announcement {
  nodeId: number;
  farmId: number;
  twinId: number;
  /** only grows, also across restarts */
  sequence: number;
  /** the announcing node's clock, ms since epoch */
  timestampMs: number;
  total: Units;
  reserved: Units;
  reservable: Units;
  used: Units;
  free: Units;
  /** number of deployments on the node */
  deployments: number;
  power: PowerState;
  heartbeatMs: number;
  agentVersion: string;
  /** only in a find answer to a request naming this deployment id: the node holds it */
  holds?: HeldDeployment;
  /** power management (docs/power.md); absent or zero/empty from nodes that do not manage power */
  powerSinceMs?: number;
  lastClaimMs?: number;
  mac?: string;
  publicConfig?: boolean;
  powerReason?: string;
  /** nodes this node is waking (a wake sent, not yet seen up); absent when none */
  waking?: WakingNode[];
}

/** A wake in progress (gossip.proto WakingNode). */
export interface WakingNode {
  nodeId: number;
  sinceMs: number;
  reason: string;
}

/** At most this many wakes in progress in one announcement. */
export const MAX_WAKING = 16;

/** A deployment a node says it holds (gossip.proto DeploymentHeld). */
export interface HeldDeployment {
  id: number;
  version: number;
  twinId: number;
}

/** The Signed envelope fields, as decoded (the payload is the encoded announcement). */
export interface Envelope {
  payload: Uint8Array;
  signer: Uint8Array;
  scheme: SchemeName;
  signature: Uint8Array;
}

export const MAX_AGENT_VERSION_LENGTH = 64;

const POWER_WIRE: Record<PowerState, number> = { up: 1, standby: 2 };

export function encodeAnnouncement(a: Announcement): Uint8Array {
  return encode("CapacityAnnouncement", {
    nodeId: a.nodeId,
    farmId: a.farmId,
    twinId: a.twinId,
    sequence: a.sequence,
    timestampMs: a.timestampMs,
    total: unitsToWire(a.total),
    reserved: unitsToWire(a.reserved),
    reservable: unitsToWire(a.reservable),
    used: unitsToWire(a.used),
    free: unitsToWire(a.free),
    deployments: a.deployments,
    power: POWER_WIRE[a.power],
    heartbeatMs: a.heartbeatMs,
    agentVersion: a.agentVersion,
    ...(a.holds ? { holds: { id: a.holds.id, version: a.holds.version, twinId: a.holds.twinId } } : {}),
    ...(a.powerSinceMs ? { powerSinceMs: a.powerSinceMs } : {}),
    ...(a.lastClaimMs ? { lastClaimMs: a.lastClaimMs } : {}),
    ...(a.mac ? { mac: a.mac } : {}),
    ...(a.publicConfig ? { publicConfig: true } : {}),
    ...(a.powerReason ? { powerReason: a.powerReason } : {}),
    ...(a.waking?.length ? { waking: a.waking.slice(0, MAX_WAKING) } : {}),
  });
}

/** Sign an announcement: Signed{payload, signer, scheme, signature over the CapacityAnnouncement tag}. */
export function sealAnnouncement(signer: Signer, a: Announcement): { bytes: Uint8Array; envelope: Envelope } {
  const payload = encodeAnnouncement(a);
  const signature = signDomain(signer, DOMAIN.CapacityAnnouncement, payload);
  const bytes = encode("Signed", { payload, signer: signer.publicKey, scheme: SCHEME_WIRE[signer.scheme], signature });
  return { bytes, envelope: { payload, signer: signer.publicKey, scheme: signer.scheme, signature } };
}

/** Re-encode a kept envelope (e.g. to serve it in a peers reply). */
export function envelopeToWire(e: Envelope): WireSignedInput {
  return { payload: e.payload, signer: e.signer, scheme: SCHEME_WIRE[e.scheme], signature: e.signature };
}

function id(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 1) throw new WireError("malformed", `${field}: must be a positive id, got ${v}`);
  return v;
}

/** Decode and validate an announcement payload. Throws WireError("malformed") on anything off. */
export function decodeAnnouncementPayload(payload: Uint8Array, maxBytes: number): Announcement {
  const w = decode("CapacityAnnouncement", payload, { maxBytes, maxRepeated: 16 });
  const power = w.power === 1 ? "up" : w.power === 2 ? "standby" : undefined;
  if (!power) throw new WireError("malformed", `power: unknown power state ${w.power}`);
  if (w.heartbeatMs < HEARTBEAT_RANGE_MS[0] || w.heartbeatMs > HEARTBEAT_RANGE_MS[1]) {
    throw new WireError("malformed", `heartbeatMs: ${w.heartbeatMs} is outside ${HEARTBEAT_RANGE_MS[0]}..${HEARTBEAT_RANGE_MS[1]}`);
  }
  if (w.agentVersion.length > MAX_AGENT_VERSION_LENGTH) throw new WireError("malformed", `agentVersion: longer than ${MAX_AGENT_VERSION_LENGTH} characters`);
  const sequence = toSafeNumber(w.sequence, "sequence");
  if (sequence < 1) throw new WireError("malformed", "sequence: must be at least 1");
  if (w.powerReason.length > 32 || !/^[a-z_]*$/.test(w.powerReason)) throw new WireError("malformed", "powerReason: expected at most 32 lower-case letters or _");
  if (w.mac.length > 0 && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(w.mac)) throw new WireError("malformed", "mac: expected aa:bb:cc:dd:ee:ff");
  for (const f of ["total", "reserved", "reservable", "used", "free"] as const) {
    if (!w[f]) throw new WireError("malformed", `${f}: missing`);
  }
  const waking = (w.waking ?? []).map((x, i) => {
    if (x.reason.length > 32 || !/^[a-z_]*$/.test(x.reason)) throw new WireError("malformed", `waking[${i}].reason: expected at most 32 lower-case letters or _`);
    return { nodeId: id(x.nodeId, `waking[${i}].nodeId`), sinceMs: toSafeNumber(x.sinceMs, `waking[${i}].sinceMs`), reason: x.reason };
  });
  return {
    nodeId: id(w.nodeId, "nodeId"),
    farmId: id(w.farmId, "farmId"),
    twinId: w.twinId,
    sequence,
    timestampMs: toSafeNumber(w.timestampMs, "timestampMs"),
    total: unitsFromWire(w.total, "total"),
    reserved: unitsFromWire(w.reserved, "reserved"),
    reservable: unitsFromWire(w.reservable, "reservable"),
    used: unitsFromWire(w.used, "used"),
    free: unitsFromWire(w.free, "free"),
    deployments: w.deployments,
    power,
    heartbeatMs: w.heartbeatMs,
    agentVersion: w.agentVersion,
    ...(w.holds ? { holds: { id: id(toSafeNumber(w.holds.id, "holds.id"), "holds.id"), version: w.holds.version, twinId: w.holds.twinId } } : {}),
    ...(toSafeNumber(w.powerSinceMs, "powerSinceMs") ? { powerSinceMs: toSafeNumber(w.powerSinceMs, "powerSinceMs") } : {}),
    ...(toSafeNumber(w.lastClaimMs, "lastClaimMs") ? { lastClaimMs: toSafeNumber(w.lastClaimMs, "lastClaimMs") } : {}),
    ...(w.mac ? { mac: w.mac.toLowerCase() } : {}),
    ...(w.publicConfig ? { publicConfig: true } : {}),
    ...(w.powerReason ? { powerReason: w.powerReason } : {}),
    ...(waking.length ? { waking } : {}),
  };
}

export interface FindQuery {
  want: Units;
  /** 0 = any farm */
  farmId: number;
  /** 0 = no limit */
  limit: number;
  /** 0 or absent = none; else a node holding this deployment answers whatever its room, with `holds` */
  deploymentId?: number;
  /** standby nodes that fit answer too (with power standby): a deployer may wake one */
  wakeable?: boolean;
}

export function encodeFindRequest(q: FindQuery): Uint8Array {
  return encode("FindRequest", { want: unitsToWire(q.want), farmId: q.farmId, limit: q.limit, deploymentId: q.deploymentId ?? 0, ...(q.wakeable ? { wakeable: true } : {}) });
}

export function decodeFindRequest(bytes: Uint8Array): FindQuery {
  const w = decode("FindRequest", bytes, { maxBytes: 1024, maxRepeated: 16 });
  const deploymentId = toSafeNumber(w.deploymentId, "deploymentId");
  return { want: unitsFromWire(w.want, "want"), farmId: w.farmId, limit: w.limit, ...(deploymentId ? { deploymentId } : {}), ...(w.wakeable ? { wakeable: true } : {}) };
}

export function encodeSyncRequest(farmId: number, requesterNodeId: number): Uint8Array {
  return encode("SyncRequest", { farmId, requesterNodeId });
}

