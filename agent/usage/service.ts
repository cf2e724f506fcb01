import type { Bus, BusSubscription } from "../bus/bus";
import { RequestLimiter } from "../bus/limits";
import type { Subjects } from "../bus/subjects";
import { DOMAIN } from "../identity/domains";
import { seal } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import { DELIVERY_BUCKETS, type Counter, type Gauge, type Histogram, type Metrics, type MetricsRegistry } from "../metrics/metrics";
import { buildProof, proofTwins } from "../proofs/build";
import { inclusionPath, leafHash } from "../proofs/merkle";
import { decodeProofHeader, decodeRecord, ZERO_HASH } from "../proofs/proof";
import { StoreError } from "../store/errors";
import type { Store } from "../store/store";
import { decode, encode, WireError } from "../wire/codec";
import type { WireUsageAuditReplyInput, WireUsageRecordsReplyInput } from "../wire/generated";
import { rejectionToWire, type UsageStatusView } from "../api/messages";
import { LISTING_PAGE, LISTING_PAGE_MAX } from "./audit";
import { meterPeriod } from "./meter";
import { UsageOutbox, type ChainHead, type OutboxStore } from "./outbox";
import { UptimeLog, type UptimeStore } from "./uptime";

/** What the usage service needs of the store: its outbox's and up-time log's tables, and the reservations it meters. */
export type UsageStore = OutboxStore & UptimeStore & Pick<Store, "reservationsAt" | "reservationEvents">;
import { RetryTimer } from "../util/retry";
import type { ProofVerdict, TwinDebt } from "../chain/backend";
import { graceDue, markExpired, mergeGrace, type TwinGrace } from "../billing/grace";
import { TwinDebts } from "./debts";

/** Where proofs go: the chain (ChainClient is one). Throws when the chain cannot be reached. */
export interface ProofSink {
  /**
   * `twins`: the encoded twin subtotals the header's twins_root commits to (they travel with the
   * proof for billing). An accepted answer names the proof's twins in debt (`debts`) unless the
   * sink has `verdict`.
   */
  submitProof(envelope: Uint8Array, twins: Uint8Array[]): Promise<{ ok: true; code: string; debts?: TwinDebt[] } | { ok: false; code: string; message: string }>;
  /** the chain's head for this node, to go on from after the local store was lost */
  head?(nodeId: number): Promise<ChainHead | undefined>;
  /**
   * A chain that judges proofs after accepting them (tfchain: "in a block", then the verifier):
   * its verdict on a delivered proof, asked until it has one. Throws when it cannot be asked or
   * its answer is not trusted (not signed by the configured verifier key).
   */
  verdict?(nodeId: number, sequence: number): Promise<ProofVerdict>;
  /** whether the chain says the twin is in debt now, and its grace end: asked before its deployments are deleted */
  debtOf?(twinId: number): Promise<{ inDebt: boolean; graceEndMs: number }>;
}

/** Public traffic per deployment; the default source measures nothing (see README). */
export interface NetworkCounter {
  bytes(deploymentId: number, fromMs: number, toMs: number): bigint;
}

export const NO_NETWORK_COUNTER: NetworkCounter = { bytes: () => 0n };

export interface UsageOptions {
  nodeId: number;
  farmId: number;
  /** period length, ms; periods are aligned to the Unix epoch (default 3600000) */
  periodMs: number;
  /** how often the agent marks itself alive in the store, ms; a crash loses at most this much served time (never bills it) */
  aliveMs: number;
  /** retry backoff of proof delivery, ms */
  retryMinMs: number;
  retryMaxMs: number;
  /** audits answered per second per requester connection (default 20, burst twice that) and in all (default 200); more get rate_limited */
  auditRate?: number;
  auditsPerSecond?: number;
}

export function usageOptionsFrom(c: { nodeId: number; farmId: number; usage: { periodSeconds: number } }): UsageOptions {
  const periodMs = c.usage.periodSeconds * 1000;
  return { nodeId: c.nodeId, farmId: c.farmId, periodMs, aliveMs: Math.min(10_000, Math.max(250, Math.floor(periodMs / 20))), retryMinMs: 500, retryMaxMs: Math.min(60_000, Math.max(2_000, periodMs)) };
}

export interface UsageModules {
  bus: Bus;
  subjects: Subjects;
  store: UsageStore;
  signer: Signer;
  logger: Logger;
  /** `shed` (the agent's Metrics) counts audits refused over the rate */
  metrics: ({ registry: MetricsRegistry } & Partial<Pick<Metrics, "shed">>) | null;
  now: () => number;
  /** null: proofs are built and kept for audit, but not sent (no chain configured) */
  sink: ProofSink | null;
  /** told the twins the chain says are in debt, at start and whenever the chain tells (admission refuses their new deployments) */
  onTwinsInDebt?: (twinIds: readonly number[]) => void;
  /** a twin's grace ended and the chain still says it is in debt: delete its deployments on this node (resolves when done) */
  onGraceExpired?: (twinId: number) => Promise<void>;
  network?: NetworkCounter;
}

interface UsageMetrics {
  built: Counter;
  submitted: Counter;
  pending: Gauge;
  delivery: Histogram;
}

/**
 * Usage metering and proofs, one component of the agent:
 *   - marks the agent alive in the store every `aliveMs` (time between a crash and the next start
 *     is downtime: stated in the proof, never billed as served);
 *   - at every period boundary meters each deployment from the store's reservation events, commits
 *     the sorted records with a Merkle root, signs the header and puts it in the outbox (one
 *     transaction, before anything is sent); periods missed while the agent was down are closed at
 *     start, one proof each;
 *   - sends pending proofs in sequence order until the chain acknowledges each (`duplicate` of the
 *     identical proof counts as delivered), with exponential backoff while the chain is away;
 *   - answers audits on `<prefix>.node.<node>.usage.<sequence>` with a record and its inclusion path,
 *     or with one signed page of all the proof's records (`list_records`, for a completeness audit).
 */
export class UsageService {
  readonly outbox: UsageOutbox;
  readonly uptime: UptimeLog;
  readonly debts: TwinDebts;
  private readonly log: Logger;
  private readonly metrics: UsageMetrics | null;
  private uptimeId = 0;
  /** start of this run's up-time while it could not be written yet (a full disk at start) */
  private uptimeStartMs = 0;
  /** a due period could not be closed because the disk is full; it stays open and is retried */
  private deferred = false;
  private periodTimer: NodeJS.Timeout | null = null;
  private aliveTimer: NodeJS.Timeout | null = null;
  private readonly retry: RetryTimer;
  private sending = false;
  private again = false;
  private closed = false;
  private sub: BusSubscription | null = null;
  private stopWatch: (() => void) | null = null;
  /** audits read records and build inclusion paths: bounded per requester and in all, before any work */
  private readonly auditLimiter: RequestLimiter;
  private auditRefusal: Uint8Array | null = null;

  constructor(
    readonly options: UsageOptions,
    private readonly m: UsageModules,
  ) {
    this.log = m.logger.child({ module: "usage" });
    const rate = options.auditRate ?? 20;
    this.auditLimiter = new RequestLimiter({ rate, burst: 2 * rate }, options.auditsPerSecond ?? 200, 10_000, m.now);
    this.outbox = new UsageOutbox(m.store);
    this.uptime = new UptimeLog(m.store);
    this.debts = new TwinDebts(m.store);
    this.retry = new RetryTimer({ minMs: options.retryMinMs, maxMs: options.retryMaxMs }, () => void this.send());
    this.verdictRetry = new RetryTimer({ minMs: options.retryMinMs, maxMs: options.retryMaxMs }, () => void this.askVerdict());
    this.metrics = m.metrics
      ? {
          built: m.metrics.registry.counter("capacity_agent_usage_proofs_built_total", "usage proofs built and put in the outbox"),
          submitted: m.metrics.registry.counter("capacity_agent_usage_proofs_submitted_total", "usage proof submissions, by result (ok, duplicate, a refusal code, chain_unavailable)", ["result"]),
          pending: m.metrics.registry.gauge("capacity_agent_usage_outbox_pending", "usage proofs waiting for the chain"),
          delivery: m.metrics.registry.histogram("capacity_agent_usage_proof_delivery_seconds", "from the end of a proof's period to the chain's acknowledgement", [], DELIVERY_BUCKETS),
        }
      : null;
  }

  async start(): Promise<void> {
    const now = this.m.now();
    if (!this.outbox.head()) await this.initHead(now);
    this.uptimeStartMs = now;
    this.alive(now);
    // what the chain said before a restart holds until it says otherwise
    this.grace = this.debts.list();
    this.m.onTwinsInDebt?.(this.grace.map((g) => g.twinId));
    this.closeDuePeriods();
    this.scheduleAlive();
    this.schedulePeriod();
    this.sub = this.m.bus.subscribe(this.m.subjects.nodeUsage(this.options.nodeId, "*"), {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        try {
          const shed = this.auditLimiter.check(msg.reply);
          if (shed) {
            this.m.metrics?.shed?.inc({ subject: "usage", reason: shed });
            this.auditRefusal ??= seal(this.m.signer, DOMAIN.UsageAuditReply, encode("UsageAuditReply", { found: false, rejection: rejectionToWire({ code: "rate_limited", message: "more audit requests than the node answers per second; retry in a second" }) }));
            msg.respond(this.auditRefusal);
            return;
          }
          msg.respond(this.audit(msg.subject, msg.data));
        } catch (e) {
          this.log.warn({ event: "usage_audit_failed", err: String(e) }, "could not answer an audit request");
        }
      },
    });
    this.watchReconnects();
    const head = this.outbox.head()!;
    this.log.info({ event: "usage_started", periodMs: this.options.periodMs, sequence: head.sequence, meteredUntil: head.periodEndMs, pending: this.outbox.pendingCount(), chain: this.m.sink !== null, twinsInGrace: this.grace.length }, "usage metering started");
    void this.send();
    // a verdict made while this node was away is asked for now
    void this.askVerdict();
    void this.checkGrace();
  }

  /**
   * First start with this store: go on from the chain's head for this node when the chain knows
   * one (the store was lost or replaced; sequences and hashes must continue), else start metering now.
   */
  private async initHead(now: number): Promise<void> {
    let head: ChainHead | undefined;
    if (this.m.sink?.head) {
      try {
        head = await this.m.sink.head(this.options.nodeId);
      } catch (err) {
        this.log.warn({ event: "usage_chain_head_unknown", err: String(err) }, "the chain did not answer; metering starts now at sequence 1");
      }
    }
    if (head && head.sequence > 0) {
      this.outbox.setHead(head);
      this.log.warn({ event: "usage_head_adopted", sequence: head.sequence, periodEndMs: head.periodEndMs }, "no local proofs: going on from the chain's last proof of this node");
    } else {
      this.outbox.setHead({ sequence: 0, periodEndMs: now, hash: ZERO_HASH });
    }
  }

  private alignedEnd(afterMs: number): number {
    const p = this.options.periodMs;
    return (Math.floor(afterMs / p) + 1) * p;
  }

  /**
   * Mark the agent alive until `nowMs` (beginning this run's up-time interval first when that
   * could not be written yet). On a full disk it writes nothing and returns false: the interval is
   * kept in memory from its start and the next mark that finds room covers the whole span.
   */
  private alive(nowMs: number): boolean {
    return this.tryWrite(() => {
      if (this.uptimeId === 0) this.uptimeId = this.uptime.begin(this.uptimeStartMs);
      this.uptime.markAlive(this.uptimeId, nowMs);
    });
  }

  /** Run a store write; false (nothing written) when the disk is full. Other errors are thrown. */
  private tryWrite(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === "store_full") return false;
      throw err;
    }
  }

  /**
   * Build a proof for every period that has ended since the head. On a full disk the period stays
   * open (nothing is written, the head does not move) and is closed at a later tick when there is room.
   */
  closeDuePeriods(): number {
    const now = this.m.now();
    this.alive(now);
    let built = 0;
    for (;;) {
      const head = this.outbox.head()!;
      const end = this.alignedEnd(head.periodEndMs);
      if (end > now) break;
      if (!this.tryWrite(() => this.build(head, end, now))) {
        if (!this.deferred) {
          this.log.warn(
            { event: "usage_proof_deferred", code: "store_full", sequence: head.sequence + 1, periodStartMs: head.periodEndMs, periodEndMs: end },
            "the disk is full: the usage period stays open and its proof is built when there is room; free space on the data disk",
          );
        }
        this.deferred = true;
        break;
      }
      if (this.deferred) this.log.info({ event: "usage_proof_resumed", sequence: head.sequence + 1 }, "there is room again: building the deferred usage proofs");
      this.deferred = false;
      built++;
    }
    if (built > 0) {
      this.metrics?.pending.set({}, this.outbox.pendingCount());
      void this.send();
    }
    return built;
  }

  /** Meter the period after `head` from the store, build its proof (agent/proofs/build.ts) and put it in the outbox. */
  private build(head: ChainHead, endMs: number, nowMs: number): void {
    const startMs = head.periodEndMs;
    const network = this.m.network ?? NO_NETWORK_COUNTER;
    const metered = meterPeriod({
      periodStartMs: startMs,
      periodEndMs: endMs,
      initial: this.m.store.reservationsAt(startMs),
      events: this.m.store.reservationEvents(startMs, endMs),
      uptime: this.uptime.intervals(startMs, endMs),
      network: (id: number) => network.bytes(id, startMs, endMs),
    });
    const proof = buildProof(head, { nodeId: this.options.nodeId, farmId: this.options.farmId, periodEndMs: endMs, ...metered }, this.m.signer);
    this.outbox.append(proof, nowMs);
    this.metrics?.built.inc({});
    this.log.info(
      { event: "usage_proof_built", sequence: proof.header.sequence, periodStartMs: startMs, periodEndMs: endMs, records: proof.records.length, downtimeMs: metered.downtimeMs, cuMicroHours: metered.totals.cuMicroHours.toString(), suMicroHours: metered.totals.suMicroHours.toString() },
      "usage proof built",
    );
  }

  private scheduleAlive(): void {
    if (this.closed) return;
    this.aliveTimer = setTimeout(() => {
      try {
        this.alive(this.m.now()); // on a full disk: false, and the store logged store_full once
        if (this.deferred) this.closeDuePeriods();
        void this.checkGrace();
      } catch (err) {
        this.log.error({ event: "usage_alive_failed", err: String(err) }, "could not mark the agent alive in the store");
      }
      this.scheduleAlive();
    }, this.options.aliveMs);
    this.aliveTimer.unref?.();
  }

  private schedulePeriod(): void {
    if (this.closed) return;
    const now = this.m.now();
    const due = this.alignedEnd(this.outbox.head()!.periodEndMs) - now;
    // a period already due could not be closed (full disk, an error): retry at the alive pace, not in a hot loop
    const delay = due > 0 ? due : this.options.aliveMs;
    this.periodTimer = setTimeout(() => {
      try {
        this.closeDuePeriods();
      } catch (err) {
        this.log.error({ event: "usage_proof_failed", err: String(err) }, "could not build a usage proof; retrying at the next tick");
      }
      this.schedulePeriod();
    }, Math.min(delay, 2_147_000_000));
    this.periodTimer.unref?.();
  }

  /** the twins the chain says are in debt, with their grace ends (kept in TwinDebts) */
  private grace: TwinGrace[] = [];
  private readonly verdictRetry: RetryTimer;
  /** the delivered proof whose verdict was last applied (0: none since start) */
  private verdictKnown = 0;
  private askingVerdict = false;
  private checkingGrace = false;
  private graceUnconfirmedLogged = false;

  /**
   * The chain told which of a judged proof's twins (`covered`: those with records in it) are in
   * debt: they replace those twins' entries (billing/grace.ts mergeGrace).
   */
  private applyDebts(told: readonly TwinDebt[], covered: ReadonlySet<number>): void {
    const next = mergeGrace(this.grace, told, covered);
    const changed = next.length !== this.grace.length || next.some((g, i) => g.twinId !== this.grace[i].twinId || g.graceEndMs !== this.grace[i].graceEndMs);
    this.setGrace(next);
    if (changed) this.log.info({ event: "twins_in_debt", twins: next.map((g) => g.twinId), grace: next.map((g) => ({ twinId: g.twinId, graceEndMs: g.graceEndMs })) }, "the chain's twins in debt changed: their new deployments are refused");
    this.m.onTwinsInDebt?.(next.map((g) => g.twinId));
    void this.checkGrace();
  }

  private setGrace(list: TwinGrace[]): void {
    this.grace = list;
    // on a full disk the list holds in memory; the next change that finds room writes all of it
    this.tryWrite(() => this.debts.replace(list));
  }

  /**
   * On a chain that judges after accepting (tfchain with the verifier), ask for the verdict on the
   * newest delivered proof until there is one; it says the twins in debt. Asked after each
   * delivery, at start and after a reconnect, so a verdict made while the node was away is learnt.
   */
  async askVerdict(): Promise<void> {
    const sink = this.m.sink;
    if (!sink?.verdict || this.closed || this.askingVerdict) return;
    const sequence = this.outbox.deliveredSequence();
    if (sequence === 0 || sequence === this.verdictKnown) return;
    this.askingVerdict = true;
    try {
      let v: ProofVerdict;
      try {
        v = await sink.verdict(this.options.nodeId, sequence);
      } catch (err) {
        this.log.warn({ event: "verdict_unavailable", sequence, code: (err as { code?: string }).code, err: (err as Error).message }, "no trusted verdict on the proof yet; asking again later");
        if (!this.closed) this.verdictRetry.schedule();
        return;
      }
      if (this.closed) return;
      if (!v.judged) {
        this.verdictRetry.schedule();
        return;
      }
      this.verdictRetry.reset();
      this.verdictKnown = sequence;
      if (v.ok) this.log.info({ event: "proof_verdict", sequence, code: v.code, block: v.block, twinsInDebt: v.debts.map((d) => d.twinId) }, "the verifier accepted the proof");
      else this.log.error({ event: "proof_verdict", sequence, code: v.code, block: v.block }, "the verifier refused a proof this node put on the chain");
      if (v.ok) this.applyDebts(v.debts, this.twinsIn(sequence));
    } finally {
      this.askingVerdict = false;
    }
    // a newer proof was delivered while asking
    if (this.outbox.deliveredSequence() !== this.verdictKnown) void this.askVerdict();
  }

  /**
   * Delete the deployments of every twin whose grace has ended while in debt, once each: the
   * chain is asked first whether the twin is still in debt (funded in time: it leaves the list);
   * while the chain does not answer, nothing is deleted and the next tick asks again.
   */
  async checkGrace(): Promise<void> {
    if (this.checkingGrace || this.closed) return;
    this.checkingGrace = true;
    try {
      for (const twinId of graceDue(this.grace, this.m.now())) {
        if (this.closed) return;
        const sink = this.m.sink;
        if (sink?.debtOf) {
          let d: { inDebt: boolean; graceEndMs: number };
          try {
            d = await sink.debtOf(twinId);
          } catch (err) {
            if (!this.graceUnconfirmedLogged) this.log.warn({ event: "grace_unconfirmed", twinId, err: (err as Error).message }, "a twin's grace ended but the chain does not say whether it is still in debt; its deployments stay until it does");
            this.graceUnconfirmedLogged = true;
            return;
          }
          this.graceUnconfirmedLogged = false;
          if (!d.inDebt || d.graceEndMs > this.m.now()) {
            this.log.info({ event: "grace_left", twinId, inDebt: d.inDebt, graceEndMs: d.graceEndMs }, d.inDebt ? "the chain gives the twin a later grace end" : "the twin was funded in time: it keeps its deployments");
            this.applyDebts(d.inDebt ? [{ twinId, graceEndMs: d.graceEndMs }] : [], new Set([twinId]));
            continue;
          }
        }
        await this.m.onGraceExpired?.(twinId);
        this.setGrace(markExpired(this.grace, twinId));
      }
      await this.recheckExpired();
    } catch (err) {
      this.log.error({ event: "grace_expiry_failed", err: String(err) }, "could not delete the deployments of a twin whose grace ended; retrying at the next tick");
    } finally {
      this.checkingGrace = false;
    }
  }

  /** when each expired twin was last asked about (in memory: a restart asks again) */
  private readonly expiredAsked = new Map<number, number>();

  /**
   * A twin whose deployments were deleted has no records in later proofs, so no verdict speaks of
   * it again: ask the chain about it at most once a minute, and drop it from the list (its new
   * deployments pass again) once it is no longer in debt.
   */
  private async recheckExpired(): Promise<void> {
    const sink = this.m.sink;
    if (!sink?.debtOf) return;
    const now = this.m.now();
    for (const g of this.grace.filter((x) => x.expired)) {
      if (this.closed) return;
      if (now - (this.expiredAsked.get(g.twinId) ?? -Infinity) < 60_000) continue;
      this.expiredAsked.set(g.twinId, now);
      const d = await sink.debtOf(g.twinId).catch(() => undefined);
      if (d && !d.inDebt) {
        this.log.info({ event: "grace_left", twinId: g.twinId, inDebt: false }, "a twin whose deployments were deleted is out of debt: it may deploy again");
        this.expiredAsked.delete(g.twinId);
        this.applyDebts([], new Set([g.twinId]));
      }
    }
  }

  /** The twins with records in proof `sequence`. */
  private twinsIn(sequence: number): Set<number> {
    return new Set(this.outbox.records(sequence).map((r) => decodeRecord(r.bytes).twinId));
  }

  /**
   * The encoded twin subtotals of a proof, recomputed from its stored records (not stored twice);
   * none for a proof built before billing (its header has no twins_root, so it bills nobody).
   */
  private twinsOf(p: { sequence: number; header: Uint8Array }): Uint8Array[] {
    if (!decodeProofHeader(p.header).twinsRoot) return [];
    return proofTwins(this.outbox.records(p.sequence).map((r) => decodeRecord(r.bytes)));
  }

  /** Send pending proofs, oldest first, until the outbox is empty or the chain is away. */
  async send(): Promise<void> {
    const sink = this.m.sink;
    if (!sink || this.closed) return;
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    try {
      do {
        this.again = false;
        for (;;) {
          if (this.closed) return;
          const p = this.outbox.nextPending();
          if (!p) break;
          let r: Awaited<ReturnType<ProofSink["submitProof"]>>;
          try {
            r = await sink.submitProof(p.envelope, this.twinsOf(p));
          } catch (err) {
            this.tryWrite(() => this.outbox.markAttempt(p.sequence, "chain_unavailable"));
            this.metrics?.submitted.inc({ result: "chain_unavailable" });
            if (p.attempts === 0) this.log.warn({ event: "usage_chain_unavailable", sequence: p.sequence, err: String((err as Error).message ?? err) }, "the chain did not answer; the proof stays in the outbox and is retried");
            this.retryLater();
            return;
          }
          if (this.closed) return;
          this.metrics?.submitted.inc({ result: r.code });
          if (r.ok) {
            if (!this.tryWrite(() => this.outbox.markDelivered(p.sequence, r.code, this.m.now()))) {
              // the chain has it; marking it needs room. Sent again later, the chain answers duplicate (= delivered)
              this.retryLater();
              return;
            }
            this.retry.reset();
            this.metrics?.pending.set({}, this.outbox.pendingCount());
            this.metrics?.delivery.observe({}, (this.m.now() - p.periodEndMs) / 1000);
            this.log.info({ event: "usage_proof_delivered", sequence: p.sequence, code: r.code, attempts: p.attempts + 1 }, "usage proof delivered");
            // the chain's answer to a newly accepted proof names its twins in debt (a duplicate says
            // nothing new); a chain that judges later is asked for its verdict instead
            if (sink.verdict) void this.askVerdict();
            else if (r.code === "ok") this.applyDebts(r.debts ?? [], this.twinsIn(p.sequence));
            continue;
          }
          this.tryWrite(() => this.outbox.markAttempt(p.sequence, r.code));
          this.log.error({ event: "usage_proof_refused", sequence: p.sequence, code: r.code, reason: r.message }, "the chain refused a usage proof; it stays in the outbox and is retried");
          this.retryLater();
          return;
        }
      } while (this.again);
    } finally {
      this.sending = false;
    }
  }

  private retryLater(): void {
    if (!this.closed) this.retry.schedule();
  }

  /** A reconnect to NATS may mean the chain is back: try at once. */
  private watchReconnects(): void {
    this.stopWatch = this.m.bus.onReconnect(() => {
      this.retry.cancel();
      void this.send();
      this.verdictRetry.cancel();
      void this.askVerdict();
    });
  }

  /** What `status` shows: the last proof built and delivered, what waits, the chain's last answer. */
  status(): UsageStatusView {
    const head = this.outbox.head();
    const pending = this.outbox.nextPending();
    return {
      periodMs: this.options.periodMs,
      lastSequence: head?.sequence ?? 0,
      deliveredSequence: this.outbox.deliveredSequence(),
      pending: this.outbox.pendingCount(),
      meteredUntilMs: head?.periodEndMs ?? 0,
      lastCode: pending?.lastCode ?? "",
      chain: this.m.sink !== null,
      twinsInGrace: this.grace.map((g) => g.twinId),
      grace: this.grace.map((g) => ({ ...g })),
    };
  }

  /** Answer `<prefix>.node.<node>.usage.<sequence>`: a deployment's record and its inclusion path. */
  audit(subject: string, data: Uint8Array): Uint8Array {
    const reply = (v: WireUsageAuditReplyInput): Uint8Array => seal(this.m.signer, DOMAIN.UsageAuditReply, encode("UsageAuditReply", v));
    const token = subject.slice(subject.lastIndexOf(".") + 1);
    if (!/^[1-9]\d{0,15}$/.test(token)) return reply({ found: false, rejection: rejectionToWire({ code: "malformed", message: `"${token}" is not a proof sequence number` }) });
    let deploymentId: number;
    try {
      const q = decode("UsageAuditRequest", data, { maxBytes: 64, maxRepeated: 0 });
      if (q.listRecords) return this.listRecords(Number(token), q.startIndex, q.maxRecords);
      deploymentId = Number(q.deploymentId);
      if (!Number.isSafeInteger(deploymentId)) throw new WireError("malformed", "deploymentId is out of range");
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      return reply({ found: false, rejection: rejectionToWire({ code: err.code, message: err.message }) });
    }
    const sequence = Number(token);
    const proof = this.outbox.proof(sequence);
    if (!proof) return reply({ found: false, rejection: rejectionToWire({ code: "not_found", message: `node ${this.options.nodeId} has no proof ${sequence}` }) });
    const records = this.outbox.records(sequence);
    const index = records.findIndex((r) => r.deploymentId === deploymentId);
    if (index < 0) return reply({ found: false, proof: proof.envelope, rejection: rejectionToWire({ code: "not_found", message: `deployment ${deploymentId} has no record in proof ${sequence}` }) });
    const path = inclusionPath(records.map((r) => leafHash(r.bytes)), index);
    return reply({ found: true, proof: proof.envelope, record: records[index].bytes, leafIndex: index, path: path.map((s) => ({ hash: s.hash, left: s.left })) });
  }

  /**
   * One page of a proof's records for a completeness audit (`UsageAuditRequest.list_records`):
   * at most `max` (0: LISTING_PAGE, capped at LISTING_PAGE_MAX) encoded records from leaf index `start` on.
   */
  private listRecords(sequence: number, start: number, max: number): Uint8Array {
    const reply = (v: WireUsageRecordsReplyInput): Uint8Array => seal(this.m.signer, DOMAIN.UsageRecordsReply, encode("UsageRecordsReply", v));
    const proof = this.outbox.proof(sequence);
    if (!proof) return reply({ found: false, rejection: rejectionToWire({ code: "not_found", message: `node ${this.options.nodeId} has no proof ${sequence}` }) });
    if (start > proof.recordCount) {
      return reply({ found: false, proof: proof.envelope, recordCount: proof.recordCount, rejection: rejectionToWire({ code: "malformed", message: `start_index ${start} is past the ${proof.recordCount} records of proof ${sequence}` }) });
    }
    const limit = max === 0 ? LISTING_PAGE : Math.min(max, LISTING_PAGE_MAX);
    const records = this.outbox.recordsPage(sequence, start, limit);
    return reply({ found: true, proof: proof.envelope, recordCount: proof.recordCount, startIndex: start, records, nextIndex: start + records.length });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.periodTimer, this.aliveTimer]) if (t) clearTimeout(t);
    this.retry.close();
    this.verdictRetry.close();
    this.stopWatch?.();
    try {
      this.sub?.unsubscribe();
    } catch {
      /* the connection is closed */
    }
    try {
      this.alive(this.m.now());
    } catch {
      /* the store is closed */
    }
  }
}
