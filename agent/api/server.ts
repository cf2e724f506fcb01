import type { Bus, BusMessage, BusSubscription } from "../bus/bus";
import type { Decision, Rejection, Reservation } from "../admission/admit";
import type { Ledger } from "../admission/ledger";
import type { Subjects } from "../bus/subjects";
import { DOMAIN } from "../identity/domains";
import { open, sameKey, seal } from "../identity/envelope";
import { toHex, type Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import type { Metrics } from "../metrics/metrics";
import { schemeAdmits, type Registry } from "../registry/types";
import { decode, encode, toSafeNumber, unitsToWire, WireError } from "../wire/codec";
import type { WireDecisionReplyInput, WireDeploymentSummaryInput } from "../wire/generated";
import { rejectionToWire, STATUS_PAGE_DEFAULT, STATUS_PAGE_MAX, type UsageStatusView } from "./messages";
import { verifyDeployRequest, type RequestAbout } from "./verify";
import { API_LIMITS_DEFAULTS, ApiGate, deployOwner, type ApiLimits, type ApiOp, type Charge } from "./limits";
import type { ShedReason } from "../bus/limits";
import { AGENT_VERSION } from "../version";
import { refused } from "../result";
import { DecisionLog, readDecisionsRequest, sealDecisionsRefusal, sealDecisionsReply, type DecisionResult } from "./decisions";

export interface NodeApiOptions {
  nodeId: number;
  farmId: number;
  twinId: number;
  maxRequestBytes: number;
  deleteSkewMs: number;
  /** admission limits in front of the handlers (api/limits.ts); default API_LIMITS_DEFAULTS */
  limits?: ApiLimits;
}

/** What the node API reads from the store: the signed request of a deployment, and whether the disk is full. */
export interface ApiStore {
  getDeploymentRequest(id: number): Uint8Array | undefined;
  readonly full: boolean;
}

/** What is known of a refused request: deployment, version, twin, and who asked. */
type Refused = RequestAbout & { requester?: string };

export interface NodeApiModules {
  bus: Bus;
  subjects: Subjects;
  ledger: Ledger;
  store: ApiStore;
  registry: Registry;
  signer: Signer;
  logger: Logger;
  metrics: Metrics | null;
  now: () => number;
  /** usage metering's state for status replies (absent: the node does not meter) */
  usage?: () => UsageStatusView | undefined;
}

/**
 * The node API: tfgrid.v1.node.<node>.deploy / .delete / .get / .status over NATS request/reply.
 * Every reply is a Signed envelope made by the node key. Bad input gets an error reply with a
 * stable code; nothing a client sends can stop the agent or change its state without a decision.
 */
export class NodeApi {
  private readonly log: Logger;
  private subs: BusSubscription[] = [];
  readonly gate: ApiGate;
  private readonly refusals = new Map<string, Uint8Array>();
  /** the last decisions, served on node.<N>.decisions (api/decisions.ts) */
  readonly decisions = new DecisionLog();

  constructor(
    private readonly options: NodeApiOptions,
    private readonly m: NodeApiModules,
  ) {
    this.log = m.logger.child({ module: "api" });
    this.gate = new ApiGate(options.limits ?? API_LIMITS_DEFAULTS, { now: m.now, logger: m.logger, metrics: m.metrics, refusal: (op, reason) => this.refusal(op, reason) });
  }

  start(): void {
    const { subjects, bus } = this.m;
    const id = this.options.nodeId;
    type Handler = (msg: BusMessage, charge: Charge) => Promise<Uint8Array> | Uint8Array;
    const routes: Array<[string, Handler, ApiOp]> = [
      [subjects.nodeDeploy(id), (msg) => this.onDeploy(msg.data), "deploy"],
      [subjects.nodeDelete(id), (msg) => this.onDelete(msg.data), "delete"],
      [subjects.nodeGet(id), (msg, charge) => this.onGet(msg.data, charge), "get"],
      [subjects.nodeStatus(id), (msg, charge) => this.statusReply(msg.data, charge), "status"],
      [subjects.nodeDecisions(id), (msg, charge) => this.decisionsReply(msg.data, charge), "decisions"],
    ];
    for (const [subject, handler, op] of routes) {
      const sub = bus.subscribe(subject, {
        callback: (err, msg) => {
          if (err) {
            this.log.warn({ event: "api_subscription_error", subject, err: String(err) }, "subscription error");
            return;
          }
          // admission before any work: per-requester rates, bounded lanes (api/limits.ts)
          this.gate.offer(op, msg, (charge) => this.serve(msg, (m) => handler(m, charge)));
        },
      });
      this.subs.push(sub);
    }
    this.log.info({ event: "api_listening", subjects: routes.map((r) => r[0]) }, "node API listening");
  }

  private async serve(msg: BusMessage, handler: (msg: BusMessage) => Promise<Uint8Array> | Uint8Array): Promise<void> {
    let reply: Uint8Array;
    try {
      reply = await handler(msg);
    } catch (err) {
      // a bug or an I/O failure (e.g. the disk is full): the request is refused, the agent stays up
      this.log.error({ event: "api_internal_error", subject: msg.subject, err }, "request failed");
      reply = this.decisionReply(refused({ code: "internal", message: "the node could not process the request; see its log" }), 0, 0);
    }
    if (msg.reply) msg.respond(reply);
  }

  /** A request refused before the ledger decided: logged, counted, answered. */
  private refuse(op: "deploy" | "delete", rejection: Rejection, about: Refused, t0: number): Uint8Array {
    this.refused(op, rejection, about, t0);
    this.m.metrics?.apiErrors.inc({ code: rejection.code });
    return this.decisionReply(refused(rejection), about.id ?? 0, about.version ?? 0);
  }

  /**
   * The one log line of every refusal, whoever refused (the API's checks or the ledger): its code,
   * the deployment and twin as far as the request told them, and the requester (the twins whose
   * signatures a deploy carries; the key that signed a delete).
   */
  private refused(op: "deploy" | "delete", r: Rejection, about: Refused, t0: number): void {
    this.noteDecision(op, "refused", about.id ?? 0, about.version ?? 0, about.twinId ?? 0, t0, r);
    this.log.info(
      {
        event: op === "deploy" ? "deployment_rejected" : "deletion_rejected",
        code: r.code,
        deploymentId: about.id,
        version: about.version,
        twinId: about.twinId,
        requester: about.requester ?? (about.signers?.length ? `twins ${about.signers.join(",")}` : undefined),
        unit: r.unit,
        requested: r.requested,
        free: r.free,
        path: r.path,
        reason: r.message,
      },
      op === "deploy" ? "deployment rejected" : "delete rejected",
    );
  }

  /** One entry of the recent decisions ring (every deploy and delete answered, refusals included). */
  private noteDecision(op: "deploy" | "delete", result: DecisionResult, id: number, version: number, twinId: number, t0: number, rejection?: Rejection): void {
    this.decisions.record({ op, result, deploymentId: id, version, twinId, timeMs: this.m.now(), latencyUs: Math.max(0, Math.round((performance.now() - t0) * 1000)), rejection });
  }

  private decisionReply(d: Decision, id: number, version: number): Uint8Array {
    const payload: WireDecisionReplyInput = { nodeId: this.options.nodeId, id, version };
    if (d.ok) {
      payload.accepted = true;
      payload.duplicate = d.value.kind === "duplicate" || d.value.kind === "already_deleted";
    } else {
      payload.accepted = false;
      payload.rejection = rejectionToWire(d.refusal);
    }
    return seal(this.m.signer, DOMAIN.DecisionReply, encode("DecisionReply", payload));
  }

  /** The signed `rate_limited` reply for an op and reason, made once and reused (refusing costs no signature). */
  private refusal(op: ApiOp, reason: ShedReason): Uint8Array {
    const key = `${op}:${reason}`;
    const hit = this.refusals.get(key);
    if (hit) return hit;
    const r = rateLimited(reason);
    const bytes =
      op === "get"
        ? seal(this.m.signer, DOMAIN.GetReply, encode("GetReply", { found: false, rejection: rejectionToWire(r) }))
        : op === "status"
          ? seal(this.m.signer, DOMAIN.StatusReply, encode("StatusReply", { nodeId: this.options.nodeId, rejection: rejectionToWire(r) }))
          : op === "decisions"
            ? sealDecisionsRefusal(this.m.signer, this.options.nodeId, r)
          : this.decisionReply(refused(r), 0, 0);
    this.refusals.set(key, bytes);
    return bytes;
  }

  private tooLarge(bytes: Uint8Array): Rejection | undefined {
    if (bytes.length <= this.options.maxRequestBytes) return undefined;
    return { code: "too_large", message: `request of ${bytes.length} bytes exceeds the limit of ${this.options.maxRequestBytes}` };
  }

  async onDeploy(bytes: Uint8Array, t0 = performance.now()): Promise<Uint8Array> {
    const big = this.tooLarge(bytes);
    if (big) return this.refuse("deploy", big, {}, t0);
    const owner = deployOwner(bytes, this.options.maxRequestBytes);
    if (owner !== undefined && !this.gate.twinAllowed("deploy", owner)) return this.refusal("deploy", "twin_rate");
    const v = await verifyDeployRequest(bytes, this.m.registry, { maxBytes: this.options.maxRequestBytes, maxRepeated: 1024 });
    if (!v.ok) return this.refuse("deploy", v.refusal.rejection, v.refusal.about ?? {}, t0);
    const { spec, units, hash, signers } = v.value;
    const d = await this.m.ledger.deployDurably({ spec, units, hash }, bytes); // on disk (group commit) before the reply
    if (d.ok) {
      const ev = d.value.kind === "duplicate" ? "deployment_duplicate" : d.value.kind === "update" ? "deployment_updated" : "deployment_accepted";
      this.log.info({ event: ev, id: spec.id, version: spec.version, twinId: spec.twinId, units }, "deployment accepted");
      this.noteDecision("deploy", d.value.kind, spec.id, spec.version, spec.twinId, t0);
    } else {
      this.refused("deploy", d.refusal, { id: spec.id, version: spec.version, twinId: spec.twinId, signers }, t0);
    }
    return this.decisionReply(d, spec.id, spec.version);
  }

  async onDelete(bytes: Uint8Array, t0 = performance.now()): Promise<Uint8Array> {
    const big = this.tooLarge(bytes);
    if (big) return this.refuse("delete", big, {}, t0);
    const o = open(bytes, DOMAIN.DeleteRequest, { maxBytes: this.options.maxRequestBytes });
    if (!o.ok) return this.refuse("delete", o.refusal, {}, t0);
    const requester = toHex(o.value.signer);
    let req: { id: string; twinId: number; timestampMs: string };
    let id: number;
    let ts: number;
    try {
      req = decode("DeleteRequest", o.value.payload);
      id = toSafeNumber(req.id, "id");
      ts = toSafeNumber(req.timestampMs, "timestampMs");
    } catch (err) {
      if (err instanceof WireError) return this.refuse("delete", { code: err.code, message: err.message }, { requester }, t0);
      throw err;
    }
    if (!this.gate.twinAllowed("delete", req.twinId)) return this.refusal("delete", "twin_rate");
    const about: Refused = { id, twinId: req.twinId, requester };
    const twin = await this.m.registry.twin(req.twinId);
    if (!twin) return this.refuse("delete", { code: "unauthorized", message: `twin ${req.twinId} is not in the registry` }, about, t0);
    if (!sameKey(twin.publicKey, o.value.signer) || !schemeAdmits(twin.scheme, o.value.scheme)) {
      return this.refuse("delete", { code: "bad_signature", message: `the delete request is not signed by twin ${req.twinId}'s key` }, about, t0);
    }
    const skew = Math.abs(this.m.now() - ts);
    if (skew > this.options.deleteSkewMs) {
      return this.refuse("delete", { code: "stale_request", message: `the request's timestamp is ${Math.round(skew / 1000)} s from the node's clock (allowed ${this.options.deleteSkewMs / 1000} s); check the clock and send a fresh request` }, about, t0);
    }
    const d = await this.m.ledger.deleteDurably({ id, twinId: req.twinId });
    const a = d.ok ? d.value : undefined;
    const version = a ? (a.kind === "delete" ? a.previous.version : a.kind === "already_deleted" ? a.version : 0) : 0;
    if (a) {
      this.log.info({ event: a.kind === "delete" ? "deployment_deleted" : "deployment_duplicate", id, version, twinId: req.twinId }, "deployment deleted");
      this.noteDecision("delete", a.kind === "delete" ? "delete" : "already_deleted", id, version, req.twinId, t0);
    } else if (!d.ok) this.refused("delete", d.refusal, about, t0);
    return this.decisionReply(d, id, version);
  }

  private summary(r: Reservation): WireDeploymentSummaryInput {
    return { id: r.id, twinId: r.twinId, version: r.version, units: unitsToWire(r.units), createdMs: r.createdMs, updatedMs: r.updatedMs };
  }

  /** `charge(bytes)`: asked before a reply of that size is built; a reason refuses it with rate_limited. */
  onGet(bytes: Uint8Array, charge: Charge = () => null): Uint8Array {
    let id: number;
    try {
      id = toSafeNumber(decode("GetRequest", bytes, { maxBytes: 1024 }).id, "id");
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      return seal(this.m.signer, DOMAIN.GetReply, encode("GetReply", { found: false, rejection: rejectionToWire({ code: err.code, message: err.message }) }));
    }
    const r = this.m.ledger.get(id);
    if (!r) {
      return seal(this.m.signer, DOMAIN.GetReply, encode("GetReply", { found: false, rejection: rejectionToWire({ code: "not_found", message: `deployment ${id} is not on this node` }) }));
    }
    const request = this.m.store.getDeploymentRequest(id);
    const shed = charge(REPLY_OVERHEAD_BYTES + (request?.length ?? 0));
    if (shed) return this.refusal("get", shed);
    const wireReq = request ? decode("DeployRequest", request, { maxBytes: 64 * 1024 * 1024, maxRepeated: 1 << 20 }) : undefined;
    return seal(this.m.signer, DOMAIN.GetReply, encode("GetReply", { found: true, summary: this.summary(r), request: wireReq }));
  }

  /** One page of deployments (by id, after `after`) with the node's capacity and usage state. */
  statusReply(request: Uint8Array = new Uint8Array(), charge: Charge = () => null): Uint8Array {
    let after: number;
    let limit: number;
    try {
      const r = decode("StatusRequest", request, { maxBytes: 64 });
      after = toSafeNumber(r.after, "after");
      limit = Math.min(r.limit || STATUS_PAGE_DEFAULT, STATUS_PAGE_MAX);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.m.metrics?.apiErrors.inc({ code: err.code });
      return seal(this.m.signer, DOMAIN.StatusReply, encode("StatusReply", { nodeId: this.options.nodeId, rejection: rejectionToWire({ code: err.code, message: err.message }) }));
    }
    const l = this.m.ledger;
    const all = l.deployments(); // sorted by id
    let from = 0;
    for (let lo = 0, hi = all.length; lo < hi; ) {
      const mid = (lo + hi) >> 1;
      if (all[mid].id <= after) lo = from = mid + 1;
      else hi = mid;
    }
    const page = all.slice(from, from + limit);
    // a reply costs what this page holds
    const shed = charge(REPLY_OVERHEAD_BYTES + STATUS_BYTES_PER_DEPLOYMENT * page.length);
    if (shed) return this.refusal("status", shed);
    const cap = l.capacity();
    return seal(
      this.m.signer,
      DOMAIN.StatusReply,
      encode("StatusReply", {
        nodeId: this.options.nodeId,
        farmId: this.options.farmId,
        twinId: this.options.twinId,
        total: unitsToWire(cap.total),
        reserved: unitsToWire(cap.reserved),
        allocatable: unitsToWire(cap.allocatable),
        reservable: unitsToWire(cap.reservable),
        used: unitsToWire(l.used()),
        free: unitsToWire(l.free()),
        deployments: page.map((r) => this.summary(r)),
        deploymentCount: all.length,
        more: from + page.length < all.length,
        power: l.powerState() === "standby" ? 2 : 1,
        agentVersion: AGENT_VERSION,
        timestampMs: this.m.now(),
        usage: this.m.usage?.(),
        storeFull: this.m.store.full,
      }),
    );
  }

  /** The recent decisions, newest first (`limit` 0: all kept). */
  decisionsReply(request: Uint8Array = new Uint8Array(), charge: Charge = () => null): Uint8Array {
    let limit: number;
    try {
      limit = readDecisionsRequest(request);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.m.metrics?.apiErrors.inc({ code: err.code });
      return sealDecisionsRefusal(this.m.signer, this.options.nodeId, { code: err.code, message: err.message });
    }
    const list = this.decisions.list(limit);
    const shed = charge(REPLY_OVERHEAD_BYTES + DECISION_BYTES * list.length);
    if (shed) return this.refusal("decisions", shed);
    return sealDecisionsReply(this.m.signer, { nodeId: this.options.nodeId, decisions: list, kept: this.decisions.kept, total: this.decisions.total, timestampMs: this.m.now() });
  }

  async close(): Promise<void> {
    this.gate.close();
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }
}

/** Reply size estimates for `charge`: envelope and summary, and one status entry per deployment. */
const REPLY_OVERHEAD_BYTES = 512;
const STATUS_BYTES_PER_DEPLOYMENT = 96;
/** one decision entry (its rejection message included) */
const DECISION_BYTES = 256;

function rateLimited(reason: ShedReason): Rejection {
  const why =
    reason === "queue_full"
      ? "the node is busy (its request queue is full)"
      : reason === "reply_bytes"
        ? "the node is sending as many reply bytes as it allows per second"
        : reason === "twin_rate"
          ? "this twin sent more requests than the node allows per second"
          : "this connection sent more requests than the node allows per second";
  return { code: "rate_limited", message: `${why}; retry in a second, and send fewer requests at once` };
}
