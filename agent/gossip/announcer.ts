import type { Capacity } from "../capacity/model";
import type { Units } from "../capacity/units";
import type { Subjects } from "../bus/subjects";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import { AGENT_VERSION } from "../version";
import type { GossipMetrics } from "./metrics";
import { SequenceSource, type CounterStore } from "./sequence";
import { sealAnnouncement, type Announcement, type Envelope, type WakingNode } from "./wire";

/** What the announcer reads; the Ledger is one. */
export interface CapacitySource {
  capacity(): Capacity;
  used(): Units;
  free(): Units;
  deployments(): readonly unknown[];
  powerState(): "up" | "standby";
  /** `rented`: only a rented (dedicated) node takes GPU workloads */
  state(): { rented: boolean };
  onChange(fn: () => void): () => void;
  /** the deployment with this id when the node holds it (find answers say so); the Ledger has it */
  get?(id: number): { version: number; twinId: number } | undefined;
  /** power management fields of the announcement (docs/power.md); the Ledger has the times */
  powerInfo?(): { sinceMs: number; lastClaimMs: number; reason: string };
  /** wakes in progress this node announces (power/waking.ts) */
  waking?(): WakingNode[];
}

/** Where announcements go; a Bus is one. */
export interface Publisher {
  publish(subject: string, data: Uint8Array): void;
}

export interface AnnouncerOptions {
  nodeId: number;
  farmId: number;
  twinId: number;
  heartbeatMs: number;
  debounceMs: number;
  sequenceBlock: number;
  /** announced for power management: the MAC peers wake by wake-on-lan, and whether the node has a public config */
  mac?: string;
  publicConfig?: boolean;
}

export interface AnnouncerModules {
  source: CapacitySource;
  bus: Publisher;
  subjects: Subjects;
  signer: Signer;
  store: CounterStore;
  logger: Logger;
  metrics: GossipMetrics | null;
  now: () => number;
  /** timers; real ones when absent. Tests pass a virtual clock. */
  timers?: Timers;
}

/** The two kinds of wait the announcer needs; `realTimers` is the one the agent uses. */
export interface Timers {
  /** run fn after ms; the handle cancels it */
  after(ms: number, fn: () => void): { cancel(): void };
  /** run fn once the current work (the reply being sent) is done: setImmediate */
  soon(fn: () => void): { cancel(): void };
}

export const realTimers: Timers = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  soon(fn) {
    const t = setImmediate(fn);
    t.unref();
    return { cancel: () => clearImmediate(t) };
  },
};

export interface Sealed {
  announcement: Announcement;
  envelope: Envelope;
  bytes: Uint8Array;
}

export type PublishTrigger = "start" | "change" | "heartbeat" | "reconnect";

/**
 * Publishes this node's signed capacity announcement on `<prefix>.capacity.<farm>.<node>`:
 *   - on change, on the leading edge: the first change after a quiet period goes out at once (on
 *     the next turn of the event loop, after the reply that caused it) and opens a window of
 *     `debounceMs`; changes inside the window are coalesced into one trailing message at its end,
 *     which opens the next window. A lone change is on the wire in well under 5 ms; a burst of
 *     1,000 changes in one second is about 1 + 1000/debounceMs messages (14 at 75 ms); every
 *     change is out within `debounceMs` (< 100 ms);
 *   - as a heartbeat: `heartbeatMs` after the last publish, whatever triggered it;
 *   - on start and after a NATS reconnect (the Gossip component calls `publish("reconnect")`).
 * `current()` is the latest announcement, rebuilt (new sequence, new timestamp) only when the
 * Ledger changed since; sync and find answers use it.
 */
export class Announcer {
  private readonly log: Logger;
  private readonly seq: SequenceSource;
  private latest: Sealed | null = null;
  private heldCache: { key: string; bytes: Uint8Array } | null = null;
  private dirty = true;
  /** the leading-edge publish, queued for the next turn of the event loop */
  private leading: { cancel(): void } | null = null;
  /** the coalescing window after a change publish; a change inside it waits for its end */
  private window: { cancel(): void } | null = null;
  /** a change arrived inside the window and is not on the wire yet */
  private trailing = false;
  private heartbeatTimer: { cancel(): void } | null = null;
  private readonly timers: Timers;
  private unsubscribe: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly options: AnnouncerOptions,
    private readonly m: AnnouncerModules,
  ) {
    this.log = m.logger.child({ module: "gossip" });
    this.timers = m.timers ?? realTimers;
    this.seq = new SequenceSource(m.store, options.sequenceBlock, m.now(), m.now);
  }

  get subject(): string {
    return this.m.subjects.capacity(this.options.farmId, this.options.nodeId);
  }

  /** true while a change is not on the wire yet (queued leading edge, or waiting for the window's end) */
  get changePending(): boolean {
    return this.leading !== null || this.trailing;
  }

  start(): void {
    this.unsubscribe = this.m.source.onChange(() => this.onChange());
    this.publish("start");
  }

  private onChange(): void {
    this.dirty = true;
    if (this.closed || this.leading) return;
    if (this.window) {
      this.trailing = true; // goes out at the window's end, with whatever else changed by then
      return;
    }
    this.leading = this.timers.soon(() => {
      this.leading = null;
      this.publish("change");
    });
  }

  /** After a change publish: changes in the next `debounceMs` wait for its end, then go out as one. */
  private openWindow(): void {
    this.window?.cancel();
    this.window = this.timers.after(this.options.debounceMs, () => {
      this.window = null;
      if (!this.trailing) return; // quiet: the next change goes out at once
      this.trailing = false;
      this.publish("change");
    });
  }

  private build(): Sealed {
    const src = this.m.source;
    const cap = src.capacity();
    const a: Announcement = {
      nodeId: this.options.nodeId,
      farmId: this.options.farmId,
      twinId: this.options.twinId,
      sequence: this.seq.take(),
      timestampMs: this.m.now(),
      total: cap.total,
      reserved: cap.reserved,
      reservable: cap.reservable,
      used: src.used(),
      free: src.free(),
      deployments: src.deployments().length,
      power: src.powerState(),
      heartbeatMs: this.options.heartbeatMs,
      agentVersion: AGENT_VERSION.slice(0, 64),
    };
    const p = src.powerInfo?.();
    if (p) {
      a.powerSinceMs = p.sinceMs;
      if (p.lastClaimMs) a.lastClaimMs = p.lastClaimMs;
      a.powerReason = p.reason;
    }
    if (this.options.mac) a.mac = this.options.mac;
    if (this.options.publicConfig) a.publicConfig = true;
    const waking = src.waking?.();
    if (waking?.length) a.waking = waking;
    const { bytes, envelope } = sealAnnouncement(this.m.signer, a);
    this.dirty = false;
    this.latest = { announcement: a, envelope, bytes };
    return this.latest;
  }

  /**
   * The latest announcement with `holds` set: the answer to a find request naming a deployment
   * this node holds. Same sequence and timestamp as current(); signed once per (announcement,
   * deployment, version), so repeated finds for one id cost no new signature.
   */
  currentHolding(holds: { id: number; version: number; twinId: number }): Uint8Array {
    const cur = this.current();
    const key = `${cur.announcement.sequence}:${holds.id}:${holds.version}:${holds.twinId}`;
    if (this.heldCache?.key === key) return this.heldCache.bytes;
    const { bytes } = sealAnnouncement(this.m.signer, { ...cur.announcement, holds: { ...holds } });
    this.heldCache = { key, bytes };
    return bytes;
  }

  /** The latest announcement; rebuilt when the node's capacity changed since it was built. */
  current(): Sealed {
    return this.latest && !this.dirty ? this.latest : this.build();
  }

  /** Publish now. A heartbeat, start or reconnect always builds a fresh one (new timestamp). */
  publish(trigger: PublishTrigger): Sealed | null {
    if (this.closed) return null;
    // whatever triggered it, this message carries every change so far
    this.leading?.cancel();
    this.leading = null;
    this.trailing = false;
    const s = trigger === "change" ? this.current() : this.build();
    try {
      this.m.bus.publish(this.subject, s.bytes);
      this.m.metrics?.published.inc({ trigger });
      this.log.debug({ event: "announcement_published", trigger, sequence: s.announcement.sequence, free: s.announcement.free }, "capacity announced");
    } catch (err) {
      // the connection is closing or closed; the next heartbeat or reconnect tries again
      this.log.debug({ event: "announcement_not_published", trigger, err: String(err) }, "could not publish the capacity announcement");
    }
    this.armHeartbeat();
    if (trigger === "change") this.openWindow();
    return s;
  }

  private armHeartbeat(): void {
    this.heartbeatTimer?.cancel();
    if (this.closed) return;
    this.heartbeatTimer = this.timers.after(this.options.heartbeatMs, () => this.publish("heartbeat"));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.leading?.cancel();
    this.window?.cancel();
    this.heartbeatTimer?.cancel();
    this.leading = this.window = this.heartbeatTimer = null;
    this.trailing = false;
  }
}
