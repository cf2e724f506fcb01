/** Power messages on the wire (gossip.proto PowerMessage, PowerReply). Pure: no I/O, no clock. */
import { DOMAIN } from "../identity/domains";
import { open, seal, type Opened } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import { decode, encode, toSafeNumber, WireError } from "../wire/codec";

export type PowerKind = "intent" | "objection" | "wake" | "standby";
const KIND_WIRE: Record<PowerKind, number> = { intent: 1, objection: 2, wake: 3, standby: 4 };
const KIND_NAME: Record<number, PowerKind> = { 1: "intent", 2: "objection", 3: "wake", 4: "standby" };

export interface PowerMessage {
  farmId: number;
  /** the signing node; 0 when a twin signs */
  fromNodeId: number;
  /** the signing twin; 0 when a node signs */
  fromTwinId: number;
  kind: PowerKind;
  targetNodeId: number;
  timestampMs: number;
}

export interface PowerReply {
  nodeId: number;
  ok: boolean;
  code: string;
  message: string;
  power: "up" | "standby";
}

const LIMITS = { maxBytes: 1024, maxRepeated: 16 };

export function sealPowerMessage(signer: Signer, m: PowerMessage): Uint8Array {
  return seal(signer, DOMAIN.PowerMessage, encode("PowerMessage", { ...m, kind: KIND_WIRE[m.kind] }));
}

/** Open and decode a Signed{PowerMessage}: the signature is checked, WHO signed is the caller's to check. */
export function openPowerMessage(bytes: Uint8Array): { ok: true; message: PowerMessage; envelope: Opened } | { ok: false; code: "malformed" | "too_large" | "bad_signature"; message: string } {
  const o = open(bytes, DOMAIN.PowerMessage, LIMITS);
  if (!o.ok) return { ok: false, ...o.refusal };
  try {
    const w = decode("PowerMessage", o.value.payload, LIMITS);
    const kind = KIND_NAME[w.kind];
    if (!kind) return { ok: false, code: "malformed", message: `kind: unknown power message kind ${w.kind}` };
    if ((w.fromNodeId === 0) === (w.fromTwinId === 0)) return { ok: false, code: "malformed", message: "exactly one of fromNodeId and fromTwinId must be set" };
    if (w.targetNodeId < 1 || w.farmId < 1) return { ok: false, code: "malformed", message: "farmId and targetNodeId must be positive ids" };
    return { ok: true, envelope: o.value, message: { farmId: w.farmId, fromNodeId: w.fromNodeId, fromTwinId: w.fromTwinId, kind, targetNodeId: w.targetNodeId, timestampMs: toSafeNumber(w.timestampMs, "timestampMs") } };
  } catch (err) {
    if (err instanceof WireError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

export function sealPowerReply(signer: Signer, r: PowerReply): Uint8Array {
  return seal(signer, DOMAIN.PowerReply, encode("PowerReply", { ...r, power: r.power === "standby" ? 2 : 1 }));
}

export function openPowerReply(bytes: Uint8Array): { ok: true; reply: PowerReply; signer: Uint8Array } | { ok: false; message: string } {
  const o = open(bytes, DOMAIN.PowerReply, LIMITS);
  if (!o.ok) return { ok: false, message: o.refusal.message };
  try {
    const w = decode("PowerReply", o.value.payload, LIMITS);
    return { ok: true, signer: o.value.signer, reply: { nodeId: w.nodeId, ok: w.ok, code: w.code, message: w.message, power: w.power === 2 ? "standby" : "up" } };
  } catch (err) {
    if (err instanceof WireError) return { ok: false, message: err.message };
    throw err;
  }
}
