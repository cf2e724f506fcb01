import * as crypto from "node:crypto";
import type { Rejection } from "../admission/admit";
import { specToWire, type DeploymentSpec } from "../admission/spec";
import { DOMAIN } from "../identity/domains";
import { open, seal } from "../identity/envelope";
import { SCHEME_WIRE, signDomain, type Signer } from "../identity/keys";
import { decode, encode, toSafeNumber, unitsFromWire, WireError } from "../wire/codec";
import type { WireRejectionInput } from "../wire/generated";
import type { Units } from "../capacity/units";
import { AgentError } from "../errors";

/** What `status` shows of usage metering (node.proto UsageStatus). */
export interface UsageStatusView {
  periodMs: number;
  lastSequence: number;
  deliveredSequence: number;
  pending: number;
  meteredUntilMs: number;
  lastCode: string;
  chain: boolean;
  /** twins in debt on the chain at the last accepted proof (docs/billing.md): their new deployments get twin_in_debt */
  twinsInGrace?: number[];
  /** the same twins with their grace ends (docs/billing.md "Grace"); `expired`: their deployments were deleted */
  grace?: Array<{ twinId: number; graceEndMs: number; expired: boolean }>;
}

export function rejectionToWire(r: Rejection): WireRejectionInput {
  return { code: r.code, message: r.message, unit: r.unit ?? "", requested: r.requested ?? 0, free: r.free ?? 0, path: r.path ?? "" };
}

/** Encode a deployment and sign it with each of `signers` (the owner first, then co-signers). */
export function buildDeployRequest(spec: DeploymentSpec, signers: Array<{ twinId: number; signer: Signer }>): Uint8Array {
  const deployment = encode("Deployment", specToWire(spec));
  return encode("DeployRequest", {
    deployment,
    signatures: signers.map(({ twinId, signer }) => ({
      twinId,
      scheme: SCHEME_WIRE[signer.scheme],
      signature: signDomain(signer, DOMAIN.Deployment, deployment),
    })),
  });
}

export function sha256Hex(b: Uint8Array): string {
  return crypto.createHash("sha256").update(b).digest("hex");
}

/** A delete request: a Signed envelope made by the owning twin. */
export function buildDeleteRequest(id: number, twinId: number, signer: Signer, nowMs: number): Uint8Array {
  return seal(signer, DOMAIN.DeleteRequest, encode("DeleteRequest", { id, twinId, timestampMs: nowMs }));
}

export interface Decided {
  accepted: boolean;
  code: string;
  message: string;
  id: number;
  version: number;
  duplicate: boolean;
  nodeId: number;
  rejection?: { code: string; message: string; unit?: string; requested?: number; free?: number; path?: string };
  /** the public key that signed the reply */
  signer: Uint8Array;
}

/** Decode a node's signed decision reply (deploy and delete). */
export function readDecisionReply(bytes: Uint8Array): Decided {
  const o = open(bytes, DOMAIN.DecisionReply);
  if (!o.ok) throw new WireError(o.refusal.code === "bad_signature" ? "malformed" : o.refusal.code, `node reply: ${o.refusal.message}`);
  const r = decode("DecisionReply", o.value.payload);
  const rej = r.rejection;
  const base = { id: toSafeNumber(r.id, "id"), version: r.version, duplicate: r.duplicate, nodeId: r.nodeId, signer: o.value.signer };
  if (r.accepted) return { ...base, accepted: true, code: r.duplicate ? "duplicate" : "ok", message: r.duplicate ? "already applied; nothing changed" : "accepted" };
  return {
    ...base,
    accepted: false,
    code: rej?.code || "internal",
    message: rej?.message || "refused",
    rejection: rej
      ? { code: rej.code, message: rej.message, ...(rej.unit ? { unit: rej.unit, requested: toSafeNumber(rej.requested, "requested"), free: toSafeNumber(rej.free, "free") } : {}), ...(rej.path ? { path: rej.path } : {}) }
      : undefined,
  };
}

/** The node refused to answer a read (e.g. `rate_limited`: this connection sent too many requests). */
export class NodeRefused extends AgentError<string> {
  constructor(code: string, message: string) {
    super(code, `node refused: ${code}: ${message}`);
    this.name = "NodeRefused";
  }
}

export interface StatusView {
  nodeId: number;
  farmId: number;
  twinId: number;
  total: Units;
  reserved: Units;
  allocatable: Units;
  reservable: Units;
  used: Units;
  free: Units;
  power: "up" | "standby";
  agentVersion: string;
  timestampMs: number;
  /** this page's deployments (NodeClient.status: all of them, every page fetched) */
  deployments: Array<{ id: number; twinId: number; version: number; units: Units }>;
  /** deployments on the node, all pages together */
  deploymentCount: number;
  /** more deployments after this page's last */
  more: boolean;
  usage?: UsageStatusView;
  /** the node's disk is full: new work is refused with store_full until there is room */
  storeFull: boolean;
  signer: Uint8Array;
}

/** Status pages: deployments with an id above `after`, at most `limit` (0: the node's default). */
export const STATUS_PAGE_DEFAULT = 100;
export const STATUS_PAGE_MAX = 1000;

export function readStatusReply(bytes: Uint8Array): StatusView {
  const o = open(bytes, DOMAIN.StatusReply, { maxBytes: 16 * 1024 * 1024, maxRepeated: 100_000 });
  if (!o.ok) throw new WireError(o.refusal.code === "bad_signature" ? "malformed" : o.refusal.code, `node reply: ${o.refusal.message}`);
  const s = decode("StatusReply", o.value.payload, { maxBytes: 16 * 1024 * 1024, maxRepeated: 100_000 });
  if (s.rejection?.code) throw new NodeRefused(s.rejection.code, s.rejection.message);
  return {
    nodeId: s.nodeId,
    farmId: s.farmId,
    twinId: s.twinId,
    total: unitsFromWire(s.total),
    reserved: unitsFromWire(s.reserved),
    allocatable: unitsFromWire(s.allocatable),
    reservable: unitsFromWire(s.reservable),
    used: unitsFromWire(s.used),
    free: unitsFromWire(s.free),
    power: s.power === 2 ? "standby" : "up",
    agentVersion: s.agentVersion,
    timestampMs: toSafeNumber(s.timestampMs, "timestampMs"),
    deployments: s.deployments.map((d) => ({ id: toSafeNumber(d.id, "id"), twinId: d.twinId, version: d.version, units: unitsFromWire(d.units) })),
    // a node before paging sends every deployment and no count
    deploymentCount: s.deploymentCount || s.deployments.length,
    more: s.more,
    usage: s.usage
      ? {
          periodMs: toSafeNumber(s.usage.periodMs, "usage.periodMs"),
          lastSequence: toSafeNumber(s.usage.lastSequence, "usage.lastSequence"),
          deliveredSequence: toSafeNumber(s.usage.deliveredSequence, "usage.deliveredSequence"),
          pending: s.usage.pending,
          meteredUntilMs: toSafeNumber(s.usage.meteredUntilMs, "usage.meteredUntilMs"),
          lastCode: s.usage.lastCode,
          chain: s.usage.chain,
          twinsInGrace: s.usage.twinsInGrace ?? [],
          grace: (s.usage.grace ?? []).map((g) => ({ twinId: g.twinId, graceEndMs: toSafeNumber(g.graceEndMs, "usage.grace.graceEndMs"), expired: g.expired })),
        }
      : undefined,
    storeFull: s.storeFull === true,
    signer: o.value.signer,
  };
}

