import { checkRoom } from "../admission/admit";
import type { Bus, BusMessage, BusSubscription } from "../bus/bus";
import { RequestLimiter } from "../bus/limits";
import type { Subjects } from "../bus/subjects";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import type { Metrics } from "../metrics/metrics";
import type { Registry } from "../registry/types";
import { WireError } from "../wire/codec";
import { Announcer, type CapacitySource } from "./announcer";
import { createGossipMetrics, type GossipMetrics } from "./metrics";
import type { GossipOptions } from "./options";
import type { CounterStore } from "./sequence";
import { PeerView } from "./peers";
import { decodeFindRequest, type WakingNode } from "./wire";

export interface GossipModules {
  bus: Bus;
  subjects: Subjects;
  /** the Ledger */
  ledger: CapacitySource;
  store: CounterStore;
  registry: Registry;
  signer: Signer;
  logger: Logger;
  metrics: Metrics | null;
  now: () => number;
  /** wakes in progress to announce (power management; power/waking.ts): listed, and a change re-announces */
  waking?: { list(): WakingNode[]; onChange(fn: () => void): () => void };
}

/** The ledger as the announcer's source, with the wakes in progress (a change of either re-announces). */
function withWaking(ledger: CapacitySource, waking: NonNullable<GossipModules["waking"]>): CapacitySource {
  return {
    capacity: () => ledger.capacity(),
    used: () => ledger.used(),
    free: () => ledger.free(),
    deployments: () => ledger.deployments(),
    powerState: () => ledger.powerState(),
    state: () => ledger.state(),
    get: ledger.get ? (id: number) => ledger.get!(id) : undefined,
    powerInfo: ledger.powerInfo ? () => ledger.powerInfo!() : undefined,
    waking: () => waking.list(),
    onChange: (fn: () => void) => {
      const a = ledger.onChange(fn);
      const b = waking.onChange(fn);
      return () => (a(), b());
    },
  };
}

/**
 * Capacity gossip, one component of the agent:
 *   - the Announcer publishes this node's signed announcement (on change, debounced, and as a
 *     heartbeat) on `<prefix>.capacity.<farm>.<node>`;
 *   - the PeerView keeps the farm's (or grid's) verified announcements and answers
 *     `<prefix>.node.<node>.peers`;
 *   - responders: `capacity.sync.<farm>` (always answer with the current announcement) and
 *     `capacity.find` (answer only when the request fits, the farm matches and power is up);
 *   - after a NATS reconnect it publishes a fresh announcement and catches up again.
 * start() returns once the first announcement is out and the catch-up answers are in, so a
 * started agent already holds its farm's view.
 */
export class Gossip {
  readonly announcer: Announcer;
  readonly view: PeerView;
  private readonly log: Logger;
  private readonly metrics: GossipMetrics | null;
  private subs: BusSubscription[] = [];
  private stopWatch: (() => void) | null = null;
  /** find and sync requests, and peers requests: per requester connection and in all, before any work */
  private readonly limiter: RequestLimiter;
  private readonly peersLimiter: RequestLimiter;

  constructor(
    readonly options: GossipOptions,
    private readonly m: GossipModules,
  ) {
    this.log = m.logger.child({ module: "gossip" });
    this.metrics = m.metrics ? createGossipMetrics(m.metrics.registry, options.expiryHeartbeats) : null;
    this.announcer = new Announcer(options, { source: m.waking ? withWaking(m.ledger, m.waking) : m.ledger, bus: m.bus, subjects: m.subjects, signer: m.signer, store: m.store, logger: m.logger, metrics: this.metrics, now: m.now });
    this.limiter = new RequestLimiter({ rate: options.requestRate, burst: 2 * options.requestRate }, options.answersPerSecond, 10_000, m.now);
    this.peersLimiter = new RequestLimiter({ rate: options.peersRate, burst: 2 * options.peersRate }, options.peersPerSecond, 10_000, m.now);
    this.view = new PeerView(options, { bus: m.bus, subjects: m.subjects, registry: m.registry, signer: m.signer, logger: m.logger, metrics: this.metrics, now: m.now });
  }

  async start(): Promise<void> {
    const { bus, subjects } = this.m;
    this.view.start((what, reply) => this.allow(what, reply));
    const respond = (subject: string, what: string, handler: (msg: BusMessage) => Uint8Array | null): BusSubscription =>
      bus.subscribe(subject, {
        callback: (err, msg) => {
          if (err || !msg.reply || !this.allow(what, msg.reply)) return;
          try {
            const reply = handler(msg);
            if (reply) msg.respond(reply);
          } catch (e) {
            this.log.warn({ event: "gossip_internal_error", subject, err: String(e) }, "could not answer a gossip request");
          }
        },
      });
    this.subs.push(
      respond(subjects.capacitySync(this.options.farmId), "sync", () => this.announcer.current().bytes),
      respond(subjects.capacityFind(), "find", (msg) => this.onFind(msg.data)),
    );
    await bus.flush();
    this.announcer.start();
    const answers = await this.view.sync();
    this.log.info({ event: "gossip_started", heartbeatMs: this.options.heartbeatMs, scope: this.options.scope, peers: this.view.table.size, syncAnswers: answers }, "capacity gossip started");
    this.watchReconnects();
  }

  /** Admit a find, sync or peers request before any work; a refused one is dropped unanswered and counted. */
  private allow(what: string, reply: string): boolean {
    const shed = (what === "peers" ? this.peersLimiter : this.limiter).check(reply);
    if (!shed) return true;
    this.m.metrics?.shed.inc({ subject: what, reason: shed });
    this.m.metrics?.shedDropped.inc({ subject: what });
    return false;
  }

  /**
   * Answer a find request with the current announcement when it fits, or with `holds` set when it
   * names a deployment this node holds; stay silent otherwise.
   */
  onFind(data: Uint8Array): Uint8Array | null {
    let q;
    try {
      q = decodeFindRequest(data);
    } catch (err) {
      if (err instanceof WireError) {
        this.log.debug({ event: "find_request_invalid", code: err.code, detail: err.message }, "ignored an invalid find request");
        return null;
      }
      throw err;
    }
    const l = this.m.ledger;
    // a deployer asking about a deployment id (deploy --auto): the node holding it always says so,
    // whatever its room, farm or power, so one id stays on one node
    const held = q.deploymentId ? l.get?.(q.deploymentId) : undefined;
    if (held && q.deploymentId) {
      this.metrics?.find.inc({ result: "holds" });
      return this.announcer.currentHolding({ id: q.deploymentId, version: held.version, twinId: held.twinId });
    }
    // answer only when a deploy of `want` would be admitted in this farm; a wakeable find asks
    // about the node as it would be once woken
    const room = { power: q.wakeable ? "up" : l.powerState(), rented: l.state().rented, used: l.used(), reservable: l.capacity().reservable } as const;
    if ((q.farmId && q.farmId !== this.options.farmId) || checkRoom(q.want, q.want, room)) {
      this.metrics?.find.inc({ result: "no_fit" });
      return null;
    }
    this.metrics?.find.inc({ result: "answered" });
    return this.announcer.current().bytes;
  }

  private watchReconnects(): void {
    this.stopWatch = this.m.bus.onReconnect(
      async () => {
        this.announcer.publish("reconnect");
        const answers = await this.view.sync();
        this.log.info({ event: "gossip_resynced", server: this.m.bus.getServer(), answers, peers: this.view.table.size }, "re-announced and caught up after a reconnect");
      },
      (err) => this.log.debug({ event: "gossip_status_ended", err: String(err) }, "status watch ended"),
    );
  }

  close(): void {
    this.stopWatch?.();
    this.announcer.close();
    this.view.close();
    for (const s of this.subs) {
      try {
        s.unsubscribe();
      } catch {
        /* the connection is closed */
      }
    }
    this.subs = [];
  }
}
