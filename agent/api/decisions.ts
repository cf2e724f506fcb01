/**
 * Recent decisions of the node API (node.proto DecisionsRequest/DecisionsReply): a bounded ring
 * in memory, newest first, served on `<prefix>.node.<N>.decisions`. Not durable (the store is the
 * record of what was accepted; this is what a farmer watches: the dashboard, `status --watch`,
 * `capacity-agent decisions`). Every deploy and delete the API answers is one entry, refusals
 * included (with their code and, for insufficient_capacity, unit/requested/free); requests shed
 * before any work (`rate_limited`) are not decisions and are not kept.
 */
import type { Rejection } from "../admission/admit";
import { DOMAIN } from "../identity/domains";
import { open, seal } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import { decode, encode, toSafeNumber, WireError } from "../wire/codec";
import { NodeRefused, rejectionToWire } from "./messages";

/** How many decisions a node keeps (and answers at most). */
export const DECISIONS_KEPT = 100;

export type DecisionResult = "create" | "update" | "duplicate" | "delete" | "already_deleted" | "refused";

export interface DecisionEntry {
  seq: number;
  timeMs: number;
  op: "deploy" | "delete";
  result: DecisionResult;
  deploymentId: number;
  version: number;
  twinId: number;
  /** refused only */
  rejection?: { code: string; message: string; unit?: string; requested?: number; free?: number; path?: string };
  latencyUs: number;
  /** a delete the node made itself: grace_expired (the twin's grace ended in debt, docs/billing.md "Grace") */
  reason?: string;
}

/** The ring: `record` is O(1); `list` copies at most `kept` entries. */
export class DecisionLog {
  private readonly ring: DecisionEntry[] = [];
  private next = 0;
  private count = 0;
  constructor(readonly kept = DECISIONS_KEPT) {
    if (!Number.isInteger(kept) || kept < 1) throw new RangeError("DecisionLog: kept must be a positive integer");
  }

  /** decisions since start (the newest's seq) */
  get total(): number {
    return this.count;
  }

  record(e: Omit<DecisionEntry, "seq" | "rejection"> & { rejection?: Rejection }): DecisionEntry {
    const r = e.rejection;
    const entry: DecisionEntry = {
      ...e,
      seq: ++this.count,
      rejection: r ? { code: r.code, message: r.message, ...(r.unit ? { unit: r.unit, requested: r.requested ?? 0, free: r.free ?? 0 } : {}), ...(r.path ? { path: r.path } : {}) } : undefined,
    };
    if (!entry.rejection) delete entry.rejection;
    if (!entry.reason) delete entry.reason;
    if (this.ring.length < this.kept) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.kept;
    return entry;
  }

  /** Newest first, at most `limit` (0: all kept). */
  list(limit = 0): DecisionEntry[] {
    const n = Math.min(limit > 0 ? limit : this.kept, this.ring.length);
    const out: DecisionEntry[] = [];
    for (let i = 1; i <= n; i++) out.push(this.ring[(this.next - i + this.ring.length * 2) % this.ring.length]);
    return out;
  }
}

/** The request's limit, or a WireError (malformed, too_large). */
export function readDecisionsRequest(bytes: Uint8Array): number {
  return decode("DecisionsRequest", bytes, { maxBytes: 64 }).limit;
}

export function sealDecisionsReply(signer: Signer, r: { nodeId: number; decisions: DecisionEntry[]; kept: number; total: number; timestampMs: number }): Uint8Array {
  return seal(
    signer,
    DOMAIN.DecisionsReply,
    encode("DecisionsReply", {
      nodeId: r.nodeId,
      kept: r.kept,
      total: r.total,
      timestampMs: r.timestampMs,
      decisions: r.decisions.map((d) => ({
        seq: d.seq,
        timeMs: d.timeMs,
        op: d.op,
        result: d.result,
        deploymentId: d.deploymentId,
        version: d.version,
        twinId: d.twinId,
        latencyUs: d.latencyUs,
        ...(d.reason ? { reason: d.reason } : {}),
        ...(d.rejection ? { rejection: rejectionToWire(d.rejection as Rejection) } : {}),
      })),
    }),
  );
}

export function sealDecisionsRefusal(signer: Signer, nodeId: number, r: Rejection): Uint8Array {
  return seal(signer, DOMAIN.DecisionsReply, encode("DecisionsReply", { nodeId, rejection: rejectionToWire(r) }));
}

export interface DecisionsView {
  nodeId: number;
  kept: number;
  total: number;
  timestampMs: number;
  /** newest first */
  decisions: DecisionEntry[];
  signer: Uint8Array;
}

const READ_LIMITS = { maxBytes: 1024 * 1024, maxRepeated: 10_000 };

/** Decode a node's signed decisions reply; a refusal (rate_limited, malformed) throws NodeRefused. */
export function readDecisionsReply(bytes: Uint8Array): DecisionsView {
  const o = open(bytes, DOMAIN.DecisionsReply, READ_LIMITS);
  if (!o.ok) throw new WireError(o.refusal.code === "bad_signature" ? "malformed" : o.refusal.code, `node reply: ${o.refusal.message}`);
  const r = decode("DecisionsReply", o.value.payload, READ_LIMITS);
  if (r.rejection?.code) throw new NodeRefused(r.rejection.code, r.rejection.message);
  return {
    nodeId: r.nodeId,
    kept: r.kept,
    total: toSafeNumber(r.total, "total"),
    timestampMs: toSafeNumber(r.timestampMs, "timestampMs"),
    signer: o.value.signer,
    decisions: r.decisions.map((d, i): DecisionEntry => {
      const rej = d.rejection;
      const e: DecisionEntry = {
        seq: toSafeNumber(d.seq, `decisions[${i}].seq`),
        timeMs: toSafeNumber(d.timeMs, `decisions[${i}].timeMs`),
        op: d.op === "delete" ? "delete" : "deploy",
        result: d.result as DecisionResult,
        deploymentId: toSafeNumber(d.deploymentId, `decisions[${i}].deploymentId`),
        version: d.version,
        twinId: d.twinId,
        latencyUs: toSafeNumber(d.latencyUs, `decisions[${i}].latencyUs`),
        ...(d.reason ? { reason: d.reason } : {}),
      };
      if (rej?.code) {
        e.rejection = {
          code: rej.code,
          message: rej.message,
          ...(rej.unit ? { unit: rej.unit, requested: toSafeNumber(rej.requested, "requested"), free: toSafeNumber(rej.free, "free") } : {}),
          ...(rej.path ? { path: rej.path } : {}),
        };
      }
      return e;
    }),
  };
}
