import type { Bus, BusMessage, BusSubscription } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { DOMAIN } from "../identity/domains";
import { open, sameKey, seal } from "../identity/envelope";
import { SCHEME_WIRE, type Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import { decodeProofHeader, proofHash, type ProofHeader } from "../proofs/proof";
import { decode, encode, strictEncodingProblem, toSafeNumber, unitsFromWire, WireError } from "../wire/codec";
import { checkSettlement, MAX_TWINS_PER_PROOF } from "./billing";
import { pricingEquals, pricingToJson, type PricingPolicy, type VersionedPricing } from "../billing/pricing";
import type { ChainMetrics } from "./metrics";
import { RegistrationLimiter } from "./limits";
import type { ChainOptions } from "./options";
import { checkProof, checkRegisterFarm, checkRegisterNode, checkRegisterTwin, type ChainNodeRecord, type FarmAccessWire, type NodeChainState, type Refusal } from "./rules";
import type { ChainStore } from "./store";
import { balanceToWire, billToWire, parseFundAmount, type TwinBalance, type TwinBill } from "../chain/wire";
import type { WireProofVerdictInput, WireChainCall, WireChainQuery, WireChainReplyInput, WireFarmInfoInput, WireNodeInfoInput, WireTwinInfoInput } from "../wire/generated";
import { graceEnd } from "../billing/grace";
import { farmInfoToWire, nodeInfoToWire, refusalToWire, twinInfoToWire } from "./encode";

/** The calls the chain serves: `<prefix>.chain.<call>`. */
export const CHAIN_CALLS = ["twin.register", "node.register", "farm.register", "proof.submit", "proof.settle", "query", "fund", "node.power"] as const;
export type ChainCallName = (typeof CHAIN_CALLS)[number];

/** Kinds of ChainEvent, published on `<prefix>.chain.events.<kind>`. */
export type ChainEventKind = "proof_accepted" | "node_registered" | "node_updated" | "twin_registered" | "farm_registered" | "farm_updated";

export interface ChainServerModules {
  bus: Bus;
  subjects: Subjects;
  /** the chain's own key: every reply and event is signed with it */
  signer: Signer;
  store: ChainStore;
  logger: Logger;
  metrics: ChainMetrics | null;
  now: () => number;
}

/** Headroom kept under the server's max payload for the rest of a proofs reply, bytes. */
const REPLY_HEADROOM = 8 * 1024;

interface ReplyBody {
  ok: boolean;
  rejection?: Refusal;
  node?: WireNodeInfoInput;
  twin?: WireTwinInfoInput;
  farm?: WireFarmInfoInput;
  proofs?: Array<{ proof: Uint8Array; acceptedMs: number }>;
  proofHash?: Uint8Array;
  /** register calls: registered, updated, renamed, unchanged */
  outcome?: string;
  balance?: TwinBalance;
  bills?: TwinBill[];
  twinsInDebt?: number[];
  twinsGrace?: TwinBalance[];
  verdict?: WireProofVerdictInput;
  pricing?: VersionedPricing;
  pricings?: VersionedPricing[];
}

/** Largest proof.settle request: the envelope and MAX_TWINS_PER_PROOF subtotals of at most 128 bytes each (about 528 KiB, under NATS's default 1 MiB payload). */
const SETTLE_MAX_BYTES = MAX_TWINS_PER_PROOF * 128 + 4096;

/** Most bills one query returns (and the default). */
const MAX_BILLS_PER_QUERY = 100;

/** Most twin ids in one farm call's allow_twins and disallow_twins (each). */
const MAX_TWINS_PER_CALL = 64;

/**
 * The chain stand-in: plays tfchain's role for capacity-agent (DESIGN.md "Identity, registry,
 * chain") over NATS request/reply. It keeps the registry (twin and node keys, farms and their
 * owner twins, node capacity) and verifies and stores usage proofs with the rules of rules.ts,
 * durably (ChainStore).
 *
 * Every reply is a Signed{ChainReply} made with the chain key; bad input of any kind gets a
 * refusal with a stable code (counted in capacity_agent_chain_refusals_total{code}), never a crash.
 * Handlers run synchronously (better-sqlite3), so calls are judged one at a time, in arrival order.
 * close() does not close the store or the NATS connection: their owner does.
 */
export class ChainServer {
  private readonly log: Logger;
  private subs: BusSubscription[] = [];
  private pendingRefusals = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** registration rate limits (per key, global, new twins); in memory, bounded */
  readonly limiter: RegistrationLimiter;
  /** the policy proofs are priced with now, and its version in the store (set on first use) */
  private pricing: VersionedPricing | null = null;

  constructor(
    private readonly options: ChainOptions,
    private readonly m: ChainServerModules,
  ) {
    this.log = m.logger.child({ module: "chain" });
    this.limiter = new RegistrationLimiter(options.limits);
  }

  /**
   * Price proofs from now on with `policy` (docs/billing.md "Policy versions"): the store gives it
   * a version (the latest when unchanged, else a new one), which every bill it prices names. The
   * stand-in uses its configured policy; the tfchain verifier the farm's policy read from the chain.
   */
  usePricing(policy: PricingPolicy): VersionedPricing {
    if (this.pricing && pricingEquals(this.pricing, policy)) return this.pricing;
    const version = this.m.store.pricingVersionOf(policy, this.m.now());
    if (this.pricing?.version !== version) this.log.info({ event: "pricing_version", version, pricing: pricingToJson(policy) }, "pricing policy in use");
    this.pricing = { ...policy, version };
    return this.pricing;
  }

  private currentPricing(): VersionedPricing {
    return this.pricing ?? this.usePricing(this.options.pricing);
  }

  /** Subscribe to the chain subjects; resolves once the server has them (a flush round trip). */
  async start(): Promise<void> {
    for (const call of CHAIN_CALLS) {
      const subject = this.m.subjects.chain(call);
      const sub = this.m.bus.subscribe(subject, {
        callback: (err, msg) => {
          if (err) {
            if (!this.closed) this.log.warn({ event: "chain_subscription_error", subject, err: String(err) }, "subscription error");
            return;
          }
          this.serve(call, msg);
        },
      });
      this.subs.push(sub);
    }
    this.flushTimer = setInterval(() => {
      this.flushRefusals();
      this.limiter.sweep(this.m.now());
    }, this.options.refusalFlushMs);
    this.flushTimer.unref();
    await this.m.bus.flush();
    this.log.info({ event: "chain_listening", subjects: CHAIN_CALLS.map((c) => this.m.subjects.chain(c)) }, "chain listening");
  }

  private serve(call: ChainCallName, msg: BusMessage): void {
    let reply: Uint8Array;
    try {
      reply = this.handle(call, msg.data);
    } catch (err) {
      // a bug or an I/O failure (disk full): the call is refused, the chain stays up
      this.log.error({ event: "chain_internal_error", call, err }, "call failed");
      try {
        reply = this.refuse(call, { code: "internal", message: "the chain could not process the call; see its log" });
      } catch {
        return;
      }
    }
    if (!msg.reply) return;
    try {
      msg.respond(reply);
    } catch (err) {
      this.log.debug({ event: "chain_reply_failed", call, err: String(err) }, "could not reply");
    }
  }

  /** Judge one call's raw bytes and return the signed reply. Never throws on bad input. */
  handle(call: ChainCallName, bytes: Uint8Array): Uint8Array {
    // a proof with its twin subtotals may be larger than any other call: it is bounded by the most twins one proof may bill
    const limit = call === "proof.settle" ? Math.max(this.options.maxRequestBytes, SETTLE_MAX_BYTES) : this.options.maxRequestBytes;
    if (bytes.length > limit) {
      const r: Refusal = { code: "too_large", message: `request of ${bytes.length} bytes exceeds the limit of ${limit}` };
      return call === "proof.submit" || call === "proof.settle" ? this.refuseProof(r) : this.refuse(call, r);
    }
    switch (call) {
      case "twin.register":
        return this.onRegisterTwin(bytes);
      case "node.register":
        return this.onRegisterNode(bytes);
      case "farm.register":
        return this.onRegisterFarm(bytes);
      case "proof.submit":
        return this.onSubmitProof(bytes, undefined);
      case "proof.settle":
        return this.onSettleProof(bytes);
      case "query":
        return this.onQuery(bytes);
      case "fund":
        return this.onFund(bytes);
      case "node.power":
        return this.onSetPower(bytes);
    }
  }

  // -------------------------------------------------------------------------------------------

  private reply(body: ReplyBody): Uint8Array {
    const payload: WireChainReplyInput = { ok: body.ok, timestampMs: this.m.now() };
    if (body.rejection) payload.rejection = refusalToWire(body.rejection);
    if (body.node) payload.node = body.node;
    if (body.twin) payload.twin = body.twin;
    if (body.farm) payload.farm = body.farm;
    if (body.proofs) payload.proofs = body.proofs;
    if (body.proofHash) payload.proofHash = body.proofHash;
    if (body.outcome) payload.outcome = body.outcome;
    if (body.balance) payload.balance = balanceToWire(body.balance);
    if (body.bills) payload.bills = body.bills.map(billToWire);
    if (body.twinsInDebt?.length) payload.twinsInDebt = body.twinsInDebt;
    if (body.twinsGrace?.length) payload.twinsGrace = body.twinsGrace.map(balanceToWire);
    if (body.verdict) payload.verdict = body.verdict;
    if (body.pricing) payload.pricing = { ...pricingToJson(body.pricing), version: body.pricing.version };
    if (body.pricings?.length) payload.pricings = body.pricings.map((p) => ({ ...pricingToJson(p), version: p.version }));
    return seal(this.m.signer, DOMAIN.ChainReply, encode("ChainReply", payload));
  }

  private refuse(call: ChainCallName, rejection: Refusal, extra: Omit<ReplyBody, "ok" | "rejection"> = {}): Uint8Array {
    this.m.metrics?.refusals.inc({ code: rejection.code });
    this.pendingRefusals.set(rejection.code, (this.pendingRefusals.get(rejection.code) ?? 0) + 1);
    if (call !== "proof.submit" && call !== "proof.settle") this.log.info({ event: "call_refused", call, code: rejection.code, reason: rejection.message }, "call refused");
    return this.reply({ ok: false, rejection, ...extra });
  }

  private accepted(call: ChainCallName, body: Omit<ReplyBody, "ok">): Uint8Array {
    this.m.metrics?.accepted.inc({ call });
    return this.reply({ ok: true, ...body });
  }

  private event(kind: ChainEventKind, e: { nodeId?: number; twinId?: number; farmId?: number; sequence?: number; proofHash?: Uint8Array }, atMs: number): { kind: string; atMs: number; bytes: Uint8Array } {
    const bytes = seal(this.m.signer, DOMAIN.ChainEvent, encode("ChainEvent", { kind, timestampMs: atMs, ...e }));
    return { kind, atMs, bytes };
  }

  private publish(ev: { kind: string; bytes: Uint8Array }): void {
    try {
      this.m.bus.publish(this.m.subjects.chain(`events.${ev.kind}`), ev.bytes);
    } catch (err) {
      // the event is in the store; a closed or draining connection only loses the live copy
      this.log.debug({ event: "chain_event_publish_failed", kind: ev.kind, err: String(err) }, "could not publish an event");
    }
  }

  private wireError(call: ChainCallName, err: unknown): Uint8Array {
    if (err instanceof WireError) return this.refuse(call, { code: err.code, message: err.message });
    throw err;
  }

  /** Open a Signed{ChainCall} and decode it; a refusal reply when it cannot be. */
  private openCall(call: ChainCallName, bytes: Uint8Array): { reply: Uint8Array } | { signer: Uint8Array; scheme: "ed25519" | "sr25519"; c: WireChainCall; ts: number } {
    const o = open(bytes, DOMAIN.ChainCall, { maxBytes: this.options.maxRequestBytes });
    if (!o.ok) return { reply: this.refuse(call, { ...o.refusal }) };
    try {
      const c = decode("ChainCall", o.value.payload, { maxBytes: this.options.maxRequestBytes, maxRepeated: MAX_TWINS_PER_CALL });
      const ts = toSafeNumber(c.timestampMs, "timestamp_ms");
      return { signer: o.value.signer, scheme: o.value.scheme, c, ts };
    } catch (err) {
      return { reply: this.wireError(call, err) };
    }
  }

  /** Take a registration token for the signer (and a new-twin one when it has no twin yet); a refusal reply when over a limit. */
  private limited(call: ChainCallName, oc: { signer: Uint8Array; scheme: string }, newTwin: boolean, now: number): Uint8Array | undefined {
    const v = this.limiter.take(`${oc.scheme}:${Buffer.from(oc.signer).toString("hex")}`, now, newTwin);
    return v.ok ? undefined : this.refuse(call, v);
  }

  private onRegisterTwin(bytes: Uint8Array): Uint8Array {
    const call = "twin.register";
    const oc = this.openCall(call, bytes);
    if ("reply" in oc) return oc.reply;
    const { c } = oc;
    if (!c.registerTwin || c.registerNode || c.registerFarm) return this.refuse(call, { code: "malformed", message: "a twin.register call carries register_twin and nothing else" });
    const now = this.m.now();
    const signer = { publicKey: oc.signer, scheme: oc.scheme };
    const mine = this.m.store.twinByKey(oc.signer, oc.scheme);
    const limited = this.limited(call, oc, !mine, now);
    if (limited) return limited;
    const checked = checkRegisterTwin(mine, { timestampMs: oc.ts, twinId: c.registerTwin.twinId }, signer, now, this.options.policy, this.m.store.nextId("twins"));
    if (!checked.ok) return this.refuse(call, checked.refusal);
    const r = checked.value;
    const twinId = r.record.twinId;
    const ev = r.kind === "registered" ? this.event("twin_registered", { twinId }, now) : undefined;
    this.m.store.putTwin(r.record, ev);
    if (ev) {
      this.publish(ev);
      this.log.info({ event: "twin_registered", twinId, scheme: r.record.scheme }, "twin registered");
    } else {
      this.log.debug({ event: "twin_unchanged", twinId }, "twin registration refreshed");
    }
    return this.accepted(call, { twin: twinInfoToWire(r.record), outcome: r.kind });
  }

  private onRegisterNode(bytes: Uint8Array): Uint8Array {
    const call = "node.register";
    const oc = this.openCall(call, bytes);
    if ("reply" in oc) return oc.reply;
    const { c } = oc;
    if (!c.registerNode || c.registerTwin || c.registerFarm) return this.refuse(call, { code: "malformed", message: "a node.register call carries register_node and nothing else" });
    const rn = c.registerNode;
    let total;
    try {
      total = rn.total ? unitsFromWire(rn.total, "register_node.total") : undefined;
    } catch (err) {
      return this.wireError(call, err);
    }
    const now = this.m.now();
    const limited = this.limited(call, oc, false, now);
    if (limited) return limited;
    const twin = this.m.store.twinByKey(oc.signer, oc.scheme);
    const ctx = { twin, mine: twin ? this.m.store.nodeByTwin(twin.twinId) : undefined, farm: rn.farmId ? this.m.store.farm(rn.farmId) : undefined, nextId: this.m.store.nextId("nodes") };
    const checked = checkRegisterNode(ctx, { timestampMs: oc.ts, nodeId: rn.nodeId, farmId: rn.farmId, twinId: rn.twinId, total }, { publicKey: oc.signer, scheme: oc.scheme }, now, this.options.policy);
    if (!checked.ok) return this.refuse(call, checked.refusal);
    const r = checked.value;
    const { nodeId, twinId, farmId } = r.record;
    const kind = r.kind === "registered" ? "node_registered" : r.kind === "updated" ? "node_updated" : undefined;
    const ev = kind ? this.event(kind, { nodeId, twinId, farmId }, now) : undefined;
    this.m.store.putNode(r.record, r.state, ev);
    if (ev && kind) {
      this.publish(ev);
      this.log.info({ event: kind, nodeId, farmId, twinId, total: r.record.total }, kind === "node_registered" ? "node registered" : "node updated");
    } else {
      this.log.debug({ event: "node_unchanged", nodeId }, "node registration refreshed");
    }
    return this.accepted(call, { node: nodeInfoToWire(r.record, r.state), outcome: r.kind });
  }

  /** node.power: the node reports its power state and target, signed by its own key. */
  private onSetPower(bytes: Uint8Array): Uint8Array {
    const call = "node.power";
    const oc = this.openCall(call, bytes);
    if ("reply" in oc) return oc.reply;
    const { c } = oc;
    if (!c.setPower || c.registerTwin || c.registerNode || c.registerFarm) return this.refuse(call, { code: "malformed", message: "a node.power call carries set_power and nothing else" });
    const sp = c.setPower;
    if (![1, 2].includes(sp.state) || ![1, 2].includes(sp.target)) return this.refuse(call, { code: "malformed", message: "set_power.state and .target must be UP (1) or STANDBY (2)" });
    const now = this.m.now();
    if (Math.abs(now - oc.ts) > this.options.policy.maxClockSkewMs) return this.refuse(call, { code: "stale_request", message: `the call's timestamp is more than ${this.options.policy.maxClockSkewMs / 1000} s from the chain's clock; check the clock and send a fresh call` });
    const limited = this.limited(call, oc, false, now);
    if (limited) return limited;
    const entry = this.m.store.node(sp.nodeId);
    if (!entry) return this.refuse(call, { code: "unknown_node", message: `node ${sp.nodeId} is not registered on the chain` });
    if (entry.record.scheme !== oc.scheme || !sameKey(entry.record.publicKey, oc.signer)) {
      return this.refuse(call, { code: "unauthorized", message: `node.power for node ${sp.nodeId} must be signed by that node's key` });
    }
    this.m.store.setNodePower(sp.nodeId, sp.state, sp.target, now);
    this.log.info({ event: "node_power", nodeId: sp.nodeId, state: sp.state === 2 ? "standby" : "up" }, "node reported its power");
    return this.accepted(call, { node: this.nodeInfo(sp.nodeId)! });
  }

  private nodeInfo(nodeId: number): WireNodeInfoInput | undefined {
    const entry = this.m.store.node(nodeId);
    if (!entry) return undefined;
    const p = this.m.store.nodePower(nodeId);
    return { ...nodeInfoToWire(entry.record, entry.state), ...(p ? { powerState: p.state, powerTarget: p.target, powerChangedMs: p.changedMs } : {}) };
  }

  private onRegisterFarm(bytes: Uint8Array): Uint8Array {
    const call = "farm.register";
    const oc = this.openCall(call, bytes);
    if ("reply" in oc) return oc.reply;
    const { c } = oc;
    if (!c.registerFarm || c.registerTwin || c.registerNode) return this.refuse(call, { code: "malformed", message: "a farm.register call carries register_farm and nothing else" });
    const rf = c.registerFarm;
    const now = this.m.now();
    const limited = this.limited(call, oc, false, now);
    if (limited) return limited;
    const twin = this.m.store.twinByKey(oc.signer, oc.scheme);
    const existing = rf.farmId ? this.m.store.farm(rf.farmId) : undefined;
    const name = rf.name !== "" ? rf.name : (existing?.name ?? `farm-${this.m.store.nextId("farms")}`);
    const checked = checkRegisterFarm(
      { existing, twin, named: this.m.store.farmByName(name), farmsOfTwin: twin ? this.m.store.farmCountOfTwin(twin.twinId) : 0, nextId: this.m.store.nextId("farms") },
      { timestampMs: oc.ts, farmId: rf.farmId, twinId: rf.twinId, name: rf.name, access: rf.access as FarmAccessWire, allowTwins: rf.allowTwins, disallowTwins: rf.disallowTwins },
      { publicKey: oc.signer, scheme: oc.scheme },
      now,
      this.options.policy,
    );
    if (!checked.ok) return this.refuse(call, checked.refusal);
    const r = checked.value;
    const { farmId, twinId } = r.record;
    const kind = r.kind === "registered" ? "farm_registered" : r.kind === "unchanged" ? undefined : "farm_updated";
    const ev = kind ? this.event(kind, { farmId, twinId }, now) : undefined;
    this.m.store.putFarm(r.record, ev);
    if (ev && kind) this.publish(ev);
    if (r.kind === "registered") {
      this.log.info({ event: "farm_registered", farmId, twinId, name: r.record.name, open: r.record.open }, "farm registered");
    } else if (r.kind === "unchanged") {
      this.log.debug({ event: "farm_unchanged", farmId }, "farm registration refreshed");
    } else {
      this.log.info({ event: "farm_updated", farmId, twinId, name: r.record.name, open: r.record.open, allowedTwins: r.record.allowedTwins.length }, "farm updated");
    }
    return this.accepted(call, { farm: farmInfoToWire(r.record, this.m.store.farmNodeCount(farmId)), outcome: r.kind });
  }

  /** A ProofSubmission: the signed proof and the twin subtotals its header commits to (billing). */
  private onSettleProof(bytes: Uint8Array): Uint8Array {
    let sub: { proof: Uint8Array; twins: Uint8Array[] };
    try {
      sub = decode("ProofSubmission", bytes, { maxBytes: Math.max(this.options.maxRequestBytes, SETTLE_MAX_BYTES), maxRepeated: MAX_TWINS_PER_PROOF });
    } catch (err) {
      if (err instanceof WireError) return this.refuseProof({ code: err.code, message: err.message });
      throw err;
    }
    return this.onSubmitProof(sub.proof, sub.twins);
  }

  private onSubmitProof(bytes: Uint8Array, twins: Uint8Array[] | undefined): Uint8Array {
    const call = twins === undefined ? "proof.submit" : "proof.settle";
    const o = open(bytes, DOMAIN.UsageProof, { maxBytes: this.options.maxRequestBytes });
    if (!o.ok) return this.refuseProof({ ...o.refusal });
    let header: ProofHeader;
    try {
      header = decodeProofHeader(o.value.payload);
    } catch (err) {
      if (err instanceof WireError) return this.refuseProof({ code: err.code, message: err.message });
      throw err;
    }
    // Store only what was signed and means something: a header must be a strict encoding of
    // UsageProof (only its fields, each at most once, varints in the fewest bytes; field order and
    // explicit defaults are the encoder's choice: docs/usage-proofs.md "Header encoding"), and the
    // envelope is re-encoded from its four fields, so nobody can pad a proof with bytes the chain
    // would keep forever.
    const problem = strictEncodingProblem("UsageProof", o.value.payload);
    if (problem !== undefined) {
      return this.refuseProof({ code: "malformed", message: `the proof header is not a strict UsageProof encoding: ${problem}; see "Header encoding" in docs/usage-proofs.md` }, header);
    }
    const canonical = encode("Signed", { payload: o.value.payload, signer: o.value.signer, scheme: SCHEME_WIRE[o.value.scheme], signature: o.value.signature });
    const entry = this.m.store.node(header.nodeId);
    const hash = proofHash(o.value.payload);
    const signerOk = !!entry && sameKey(entry.record.publicKey, o.value.signer) && entry.record.scheme === o.value.scheme;
    const now = this.m.now();
    const checked = checkProof(entry?.state, entry?.record, header, hash, signerOk, now, this.options.policy, (seq) => this.m.store.proofHashAt(header.nodeId, seq));
    if (!checked.ok) {
      const r = checked.refusal;
      // the head lets an agent see where the chain stands (e.g. adopt it after losing its store)
      const node = entry && r.code !== "unknown_node" ? nodeInfoToWire(entry.record, entry.state) : undefined;
      return this.refuseProof(r, header, { node, proofHash: r.code === "duplicate" ? hash : undefined });
    }
    const next = checked.value;
    // billing: the twin subtotals must match the header before anything is stored
    const pricing = this.currentPricing();
    const settled = checkSettlement(header, twins, pricing);
    if (!settled.ok) return this.refuseProof(settled.refusal, header);
    const charges = settled.value;
    const ev = this.event("proof_accepted", { nodeId: header.nodeId, twinId: entry!.record.twinId, sequence: header.sequence, proofHash: hash }, now);
    const billing = charges.length > 0 ? { farmId: entry!.record.farmId, periodStartMs: header.periodStartMs, periodEndMs: header.periodEndMs, charges, pricingVersion: pricing.version } : undefined;
    const bills = this.m.store.acceptProof(header.nodeId, next, canonical, now, ev, billing);
    this.publish(ev);
    const twinsInDebt = bills.filter((b) => b.balanceAfter < 0n).map((b) => b.twinId);
    if (bills.length > 0) {
      this.log.info(
        { event: "proof_billed", nodeId: header.nodeId, sequence: header.sequence, farmId: entry!.record.farmId, twins: bills.length, amount: bills.reduce((a, b) => a + b.amount, 0n).toString(), twinsInDebt: twinsInDebt.length },
        "twins billed",
      );
    }
    this.log.info(
      { event: "proof_accepted", nodeId: header.nodeId, sequence: header.sequence, periodStartMs: header.periodStartMs, periodEndMs: header.periodEndMs, records: header.recordCount, hash: Buffer.from(hash).toString("hex") },
      "proof accepted",
    );
    return this.accepted(call, { proofHash: hash, node: nodeInfoToWire(entry!.record, next), twinsInDebt, twinsGrace: twinsInDebt.map((t) => this.balanceOf(t)) });
  }

  /** A twin's balance, and in debt since when and until when its grace runs (docs/billing.md "Grace"). */
  private balanceOf(twinId: number): TwinBalance {
    const balance = this.m.store.balance(twinId);
    const since = this.m.store.debtSince(twinId);
    return { twinId, balance, inDebt: balance < 0n, ...(since !== undefined ? { inDebtSinceMs: since, graceEndMs: graceEnd(since, this.options.graceMs) } : {}) };
  }

  /**
   * The verdict on node `nodeId`'s proof `sequence`: the verifier's when it recorded one (tfchain),
   * else accepted when the proof is stored (the stand-in judges as it is sent), else not judged yet.
   * An accepted proof names its twins that are in debt now, with their grace ends.
   */
  private verdictOf(nodeId: number, sequence: number): WireProofVerdictInput {
    const v = this.m.store.verdict(nodeId, sequence) ?? (this.m.store.proofHashAt(nodeId, sequence) ? { ok: true, code: "ok", block: 0 } : undefined);
    if (!v) return { nodeId, sequence, judged: false };
    const debts = v.ok ? this.m.store.twinsBilledIn(nodeId, sequence).map((t) => this.balanceOf(t)).filter((b) => b.inDebt) : [];
    return { nodeId, sequence, judged: true, ok: v.ok, code: v.code, block: v.block, twinsInDebt: debts.map(balanceToWire) };
  }

  /** Stand-in only (dev grids): add to a registered twin's balance. */
  private onFund(bytes: Uint8Array): Uint8Array {
    const call = "fund";
    let f: { twinId: number; amount: string };
    try {
      f = decode("FundTwin", bytes, { maxBytes: 1024, maxRepeated: 0 });
    } catch (err) {
      return this.wireError(call, err);
    }
    // a registered twin, or one the chain already billed (a dev grid's twins may live in a registry
    // file only: their debt must be payable)
    if (!f.twinId || (!this.m.store.twin(f.twinId) && !this.m.store.hasBalance(f.twinId))) {
      return this.refuse(call, { code: "not_found", message: `twin ${f.twinId} is neither registered on the chain nor billed by it` });
    }
    const a = parseFundAmount(f.amount);
    if (!a.ok) return this.refuse(call, a);
    const balance = this.m.store.fund(f.twinId, a.amount, this.m.now());
    this.log.info({ event: "twin_funded", twinId: f.twinId, amount: a.amount.toString(), balance: balance.toString() }, "twin funded");
    return this.accepted(call, { balance: this.balanceOf(f.twinId) });
  }

  private refuseProof(r: Refusal, header?: ProofHeader, extra: Omit<ReplyBody, "ok" | "rejection"> = {}): Uint8Array {
    this.log.info({ event: "proof_refused", code: r.code, nodeId: header?.nodeId, sequence: header?.sequence, unit: r.unit, reason: r.message }, "proof refused");
    return this.refuse("proof.submit", r, extra);
  }

  private onQuery(bytes: Uint8Array): Uint8Array {
    const call = "query";
    let q: WireChainQuery;
    let from: number;
    try {
      q = decode("ChainQuery", bytes, { maxBytes: 1024, maxRepeated: 0 });
      from = toSafeNumber(q.fromSequence, "from_sequence");
    } catch (err) {
      return this.wireError(call, err);
    }
    let billsSequence: number;
    let verdictSequence: number;
    try {
      billsSequence = toSafeNumber(q.billsSequence, "bills_sequence");
      verdictSequence = toSafeNumber(q.verdictSequence, "verdict_sequence");
    } catch (err) {
      return this.wireError(call, err);
    }
    if (!q.nodeId && !q.twinId && !q.farmId && !q.billsTwinId) return this.refuse(call, { code: "malformed", message: "a query names a node_id, a twin_id, a farm_id or a bills_twin_id" });
    const body: Omit<ReplyBody, "ok"> = {};
    if (q.nodeId) {
      const entry = this.m.store.node(q.nodeId);
      if (!entry) return this.refuse(call, { code: "not_found", message: `node ${q.nodeId} is not registered` });
      body.node = this.nodeInfo(q.nodeId);
      if (verdictSequence > 0) body.verdict = this.verdictOf(q.nodeId, verdictSequence);
      if (q.wantProofs) body.proofs = this.proofsFor(entry.record, entry.state, from, q.limit);
    }
    if (q.twinId) {
      const twin = this.m.store.twin(q.twinId);
      if (!twin) return this.refuse(call, { code: "not_found", message: `twin ${q.twinId} is not registered` });
      body.twin = twinInfoToWire(twin);
    }
    if (q.farmId) {
      const farm = this.m.store.farm(q.farmId);
      if (!farm) return this.refuse(call, { code: "not_found", message: `farm ${q.farmId} is not registered` });
      body.farm = farmInfoToWire(farm, this.m.store.farmNodeCount(q.farmId));
    }
    if (q.billsTwinId) {
      // a twin billed by the chain without being registered on it (a dev grid's registry-file twin) has bills and a balance too
      if (!this.m.store.twin(q.billsTwinId) && !this.m.store.hasBalance(q.billsTwinId)) return this.refuse(call, { code: "not_found", message: `twin ${q.billsTwinId} is not registered` });
      body.balance = this.balanceOf(q.billsTwinId);
      const limit = Math.min(q.limit || MAX_BILLS_PER_QUERY, MAX_BILLS_PER_QUERY);
      // a query does not make a version: before the first priced proof the policy is unversioned (0)
      body.pricing = this.pricing ?? { ...this.options.pricing, version: 0 };
      body.bills = this.m.store.bills(q.billsTwinId, { nodeId: q.billsNodeId, sequence: billsSequence, limit });
      // each bill is checked with the policy of its version, not today's
      body.pricings = [...new Set(body.bills.map((b) => b.pricingVersion).filter((v) => v > 0))].map((v) => ({ ...this.m.store.pricingOfVersion(v)!, version: v }));
    }
    return this.accepted(call, body);
  }

  /**
   * from 0: the last proof only; else up to `limit` (0 = 1, at most maxProofsPerQuery) from that
   * sequence on, in order, cut short to stay under the NATS server's max payload: a reply may hold
   * fewer than asked, the caller asks again from the next sequence.
   */
  private proofsFor(node: ChainNodeRecord, state: NodeChainState, from: number, limit: number): Array<{ proof: Uint8Array; acceptedMs: number }> {
    const rows =
      from === 0
        ? state.lastSequence > 0
          ? this.m.store.proofs(node.nodeId, state.lastSequence, 1)
          : []
        : this.m.store.proofs(node.nodeId, from, Math.min(Math.max(limit, 1), this.options.maxProofsPerQuery));
    const maxPayload = this.m.bus.maxPayload() ?? 1024 * 1024;
    let budget = maxPayload - REPLY_HEADROOM;
    const out: Array<{ proof: Uint8Array; acceptedMs: number }> = [];
    for (const r of rows) {
      budget -= r.proof.length + 24; // field tags, lengths, accepted_ms, and the envelope's share
      if (budget < 0) break;
      out.push({ proof: r.proof, acceptedMs: r.acceptedMs });
    }
    return out;
  }

  private flushRefusals(): void {
    if (this.pendingRefusals.size === 0) return;
    const counts = this.pendingRefusals;
    this.pendingRefusals = new Map();
    try {
      this.m.store.addRefusals(counts);
    } catch (err) {
      if (!this.closed) this.log.warn({ event: "chain_refusal_counts_not_saved", err: String(err) }, "refusal counters could not be saved");
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    for (const s of this.subs) {
      try {
        s.unsubscribe();
      } catch {
        // the connection is closed already
      }
    }
    this.subs = [];
    this.flushRefusals();
  }
}
