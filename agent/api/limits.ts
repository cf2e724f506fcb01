/**
 * The node API's admission of requests (before any work is done on them):
 *
 *   - per requester (reply-inbox prefix, see bus/limits.ts) a token bucket for reads (get, status)
 *     and one for writes (deploy, delete); a write is also charged to its twin's bucket once the
 *     twin id is read (cheap decoding, before signatures and registry lookups);
 *   - reads are reply-size-aware: each started 16 KiB of reply costs one more token of the
 *     requester's bucket, and every read reply is charged to a global bytes-per-second budget;
 *   - two lanes with bounded queues: writes have their own lane, served first, so a flood of reads
 *     cannot starve a deploy; reads are served one per event-loop turn so socket input (and the
 *     writes in it) keeps being read;
 *   - what is shed gets a `rate_limited` reply (pre-signed, so refusing costs no signature) while
 *     the refusal budget lasts, and is dropped silently beyond it; both are counted by subject and
 *     reason (capacity_agent_requests_shed_total).
 */
import type { BusMessage } from "../bus/bus";
import { BoundedQueue, Budget, KeyedBuckets, requesterOf, type ShedReason } from "../bus/limits";
import type { Logger } from "../log/logger";
import type { Metrics } from "../metrics/metrics";
import { decode, WireError } from "../wire/codec";
import { intInRange } from "../util/ints";

export interface ApiLimits {
  /** requesters (connections, twins) whose buckets are kept; the least recently seen go first (default 10000) */
  maxRequesters: number;
  /** reads (get, status, decisions) per second per requester; each started 16 KiB of reply counts as one more (default 50) */
  readRate: number;
  /** reads a requester may send at once before its rate applies (default 100) */
  readBurst: number;
  /** deploys and deletes per second per requester connection and per twin (default 10) */
  writeRate: number;
  /** writes at once before the rate applies (default 40) */
  writeBurst: number;
  /** bytes of read replies per second, all requesters together (default 16 MiB; burst: twice that) */
  replyBytesPerSecond: number;
  /** reads waiting to be served; more are shed with queue_full (default 64) */
  readQueue: number;
  /** writes waiting to be decided; more are shed with queue_full (default 256) */
  writeQueue: number;
  /**
   * writes in progress at the same time (default 32). Decisions stay serialised (the event loop);
   * the writes decided in one turn share one fsync (group commit, admission/ledger.ts), so this is
   * also the largest group: 4 held 64 concurrent requesters to groups of 4
   */
  writeConcurrency: number;
  /** `rate_limited` replies per second; beyond this shed requests get no reply (default 2000) */
  refusalsPerSecond: number;
}

export const API_LIMITS_DEFAULTS: ApiLimits = {
  maxRequesters: 10_000,
  readRate: 50,
  readBurst: 100,
  writeRate: 10,
  writeBurst: 40,
  replyBytesPerSecond: 16 * 1024 * 1024,
  readQueue: 64,
  writeQueue: 256,
  writeConcurrency: 32,
  refusalsPerSecond: 2000,
};

/** Allowed range of each limit (integers). */
export const API_LIMITS_RANGES: Record<keyof ApiLimits, [number, number]> = {
  maxRequesters: [1, 10_000_000],
  readRate: [1, 1_000_000],
  readBurst: [1, 1_000_000],
  writeRate: [1, 1_000_000],
  writeBurst: [1, 1_000_000],
  replyBytesPerSecond: [64 * 1024, 1024 * 1024 * 1024],
  readQueue: [1, 100_000],
  writeQueue: [1, 100_000],
  writeConcurrency: [1, 256],
  refusalsPerSecond: [0, 1_000_000],
};

/** One started block of this many reply bytes costs one read token. */
export const READ_COST_BYTES = 16 * 1024;

export type ApiOp = "deploy" | "delete" | "get" | "status" | "decisions";

export interface ApiGateModules {
  now: () => number;
  logger: Logger;
  metrics: Metrics | null;
  /** the signed `rate_limited` reply for an op (the server caches them) */
  refusal: (op: ApiOp, reason: ShedReason) => Uint8Array;
}

/** Asked for a reply of `bytes` before it is built: null to go on, else why it is refused. */
export type Charge = (bytes: number) => ShedReason | null;

/** A request admitted to a lane: run it; `charge` asks for reply bytes before building a big reply. */
export type Job = (charge: Charge) => Promise<void>;

interface Queued {
  op: ApiOp;
  requester: string;
  job: Job;
}

/** Log a summary of shed requests at most this often. */
const SHED_LOG_EVERY_MS = 10_000;

/** The admission gate in front of the node API's handlers. */
export class ApiGate {
  private readonly reads: KeyedBuckets;
  private readonly writes: KeyedBuckets;
  private readonly twins: KeyedBuckets;
  private readonly bytes: Budget;
  private readonly refusals: Budget;
  private readonly readLane: BoundedQueue<Queued>;
  private readonly writeLane: BoundedQueue<Queued>;
  private writesRunning = 0;
  private readScheduled = false;
  private closed = false;
  private readonly log: Logger;
  private shedSinceLog = 0;
  private lastShedLog = -Infinity;

  constructor(
    readonly limits: ApiLimits,
    private readonly m: ApiGateModules,
  ) {
    this.log = m.logger.child({ module: "api" });
    this.reads = new KeyedBuckets({ rate: limits.readRate, burst: limits.readBurst }, limits.maxRequesters, m.now);
    this.writes = new KeyedBuckets({ rate: limits.writeRate, burst: limits.writeBurst }, limits.maxRequesters, m.now);
    this.twins = new KeyedBuckets({ rate: limits.writeRate, burst: limits.writeBurst }, limits.maxRequesters, m.now);
    this.bytes = new Budget({ rate: limits.replyBytesPerSecond, burst: 2 * limits.replyBytesPerSecond }, m.now);
    this.refusals = new Budget({ rate: limits.refusalsPerSecond, burst: limits.refusalsPerSecond }, m.now);
    this.readLane = new BoundedQueue(limits.readQueue);
    this.writeLane = new BoundedQueue(limits.writeQueue);
  }

  /**
   * Called from the subscription callback, before any work: charge the requester, queue the job
   * in its lane, or shed the request (a `rate_limited` reply while the refusal budget lasts).
   */
  offer(op: ApiOp, msg: BusMessage, job: Job): void {
    if (this.closed) return;
    const requester = requesterOf(msg.reply);
    const write = op === "deploy" || op === "delete";
    if (!(write ? this.writes : this.reads).take(requester)) return this.shed(op, msg, "requester_rate");
    const lane = write ? this.writeLane : this.readLane;
    if (!lane.push({ op, requester, job })) return this.shed(op, msg, "queue_full");
    this.pump();
  }

  /** A write's twin, read after cheap checks: false (and counted) when the twin is over its rate. */
  twinAllowed(op: ApiOp, twinId: number): boolean {
    if (this.twins.take(`t${twinId}`)) return true;
    this.count(op, "twin_rate");
    return false;
  }

  /** Requests waiting in the lanes (reads, writes). */
  get queued(): { reads: number; writes: number } {
    return { reads: this.readLane.length, writes: this.writeLane.length };
  }

  private pump(): void {
    // writes first, up to writeConcurrency at a time; each is async (registry, store)
    while (this.writesRunning < this.limits.writeConcurrency) {
      const w = this.writeLane.shift();
      if (!w) break;
      this.writesRunning++;
      void w.job(() => null).finally(() => {
        this.writesRunning--;
        this.pump();
      });
    }
    // reads: one per event-loop turn (setImmediate runs after pending I/O, so the socket and the
    // writes in it keep being read during a flood of reads)
    if (!this.readScheduled && this.readLane.length > 0) {
      this.readScheduled = true;
      setImmediate(() => {
        this.readScheduled = false;
        if (this.closed) return;
        const r = this.readLane.shift();
        if (r) {
          // a reply larger than a full bucket costs the whole bucket, so every reply stays possible
          const charge: Charge = (bytes) => {
            const extra = Math.min(Math.ceil(bytes / READ_COST_BYTES), this.limits.readBurst) - 1;
            if (extra > 0 && !this.reads.take(r.requester, extra)) return this.count(r.op, "requester_rate");
            if (!this.bytes.take(Math.min(bytes, this.bytes.rule.burst))) return this.count(r.op, "reply_bytes");
            return null;
          };
          void r.job(charge).finally(() => this.pump());
        }
      });
    }
  }

  private shed(op: ApiOp, msg: BusMessage, reason: ShedReason): void {
    this.count(op, reason);
    if (!msg.reply || !this.refusals.take()) {
      this.m.metrics?.shedDropped.inc({ subject: op });
      return;
    }
    try {
      msg.respond(this.m.refusal(op, reason));
    } catch {
      /* the connection is closing */
    }
  }

  /** Count a shed request (and log a summary at most every 10 s); returns the reason (for `charge`). */
  private count(op: ApiOp, reason: ShedReason): ShedReason {
    this.m.metrics?.shed.inc({ subject: op, reason });
    this.shedSinceLog++;
    const now = this.m.now();
    if (now - this.lastShedLog >= SHED_LOG_EVERY_MS) {
      this.log.warn({ event: "requests_shed", subject: op, reason, shed: this.shedSinceLog, queued: this.queued }, "shedding node API requests over the limits");
      this.lastShedLog = now;
      this.shedSinceLog = 0;
    }
    return reason;
  }

  close(): void {
    this.closed = true;
  }
}

/** The owning twin of a deploy request, read without checking any signature; undefined when it does not decode. */
export function deployOwner(bytes: Uint8Array, maxBytes: number): number | undefined {
  try {
    const req = decode("DeployRequest", bytes, { maxBytes, maxRepeated: 1024 });
    const d = decode("Deployment", req.deployment, { maxBytes, maxRepeated: 1024 });
    return typeof d.twinId === "number" && d.twinId > 0 ? d.twinId : undefined;
  } catch (err) {
    if (err instanceof WireError) return undefined;
    throw err;
  }
}

/** Check raw api.limits options; an error names the bad field (`api.limits.readRate: ...`). */
export function parseApiLimits(raw: unknown, onError: (field: string, message: string) => Error): ApiLimits {
  const o: ApiLimits = { ...API_LIMITS_DEFAULTS };
  if (raw === undefined) return o;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw onError("api.limits", "expected an object");
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const range = (API_LIMITS_RANGES as Record<string, [number, number] | undefined>)[k];
    if (!range) throw onError(`api.limits.${k}`, `unknown field (known: ${Object.keys(API_LIMITS_RANGES).join(", ")})`);
    const [min, max] = range;
    const r = intInRange(v, min, max);
    if (!r.ok) throw onError(`api.limits.${k}`, r.problem);
    (o as unknown as Record<string, number>)[k] = r.value;
  }
  return o;
}
