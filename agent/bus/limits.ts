/**
 * Limits on what an unauthenticated sender on the bus can make the agent do or hold.
 *
 *   - `take` (pure): a token bucket; the clock is passed in.
 *   - `KeyedBuckets`: one bucket per requester, at most `maxKeys` of them (least recently used
 *     go first), so the table itself cannot grow without bound.
 *   - `BoundedQueue`: a FIFO with a hard length; a full queue refuses instead of growing.
 *   - `requesterOf`: who sent a request, from its reply subject.
 *
 * Requesters are identified best effort. The bus carries no authenticated sender, so anonymous
 * requests (get, status, find, sync, peers) are keyed by the reply inbox prefix nats.js gives each
 * connection (`_INBOX.<prefix>.<token>` -> `_INBOX.<prefix>`): one connection, one key. A client
 * that picks a fresh reply subject per request gets a fresh bucket each time; the global budgets
 * and bounded queues still hold it, and the real boundary is NATS authentication and per-subject
 * permissions (DESIGN.md). Signed writes are keyed by their twin id as well, after cheap checks.
 */

/** A token bucket's rule: `rate` tokens per second, at most `burst` held. */
export interface BucketRule {
  rate: number;
  burst: number;
}

export interface BucketState {
  tokens: number;
  atMs: number;
}

export interface Taken {
  ok: boolean;
  state: BucketState;
}

/** Refill `state` to `now` and take `cost` tokens when there are enough. Pure. */
export function take(state: BucketState | undefined, rule: BucketRule, cost: number, now: number): Taken {
  const prev = state ?? { tokens: rule.burst, atMs: now };
  const elapsed = Math.max(0, now - prev.atMs);
  const tokens = Math.min(rule.burst, prev.tokens + (elapsed * rule.rate) / 1000);
  if (tokens >= cost) return { ok: true, state: { tokens: tokens - cost, atMs: now } };
  return { ok: false, state: { tokens, atMs: now } };
}

/** One token bucket per key, at most `maxKeys` keys (the least recently used is forgotten). */
export class KeyedBuckets {
  private readonly buckets = new Map<string, BucketState>();

  constructor(
    readonly rule: BucketRule,
    readonly maxKeys: number,
    private readonly now: () => number,
  ) {}

  /** Take `cost` tokens from `key`'s bucket; false when it does not hold enough (nothing is taken). */
  take(key: string, cost = 1): boolean {
    const now = this.now();
    const r = take(this.buckets.get(key), this.rule, cost, now);
    this.buckets.delete(key); // re-insert: Map order is the eviction order (least recently used first)
    // a full bucket is the state of a key never seen: keep only keys that owe tokens
    if (r.state.tokens < this.rule.burst) this.buckets.set(key, r.state);
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    return r.ok;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** One global token bucket. */
export class Budget {
  private state: BucketState | undefined;
  constructor(
    readonly rule: BucketRule,
    private readonly now: () => number,
  ) {}
  take(cost = 1): boolean {
    const r = take(this.state, this.rule, cost, this.now());
    this.state = r.state;
    return r.ok;
  }
}

/** A FIFO queue with a hard length. */
export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;
  constructor(readonly max: number) {}
  /** false (and nothing queued) when the queue is full */
  push(item: T): boolean {
    if (this.length >= this.max) return false;
    this.items.push(item);
    return true;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as unknown as T;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  get length(): number {
    return this.items.length - this.head;
  }
}

/**
 * The requester of a request, from its reply subject: `_INBOX.<prefix>` for nats.js inboxes
 * (muxed `_INBOX.<prefix>.<token>` or plain `_INBOX.<prefix>`), else the subject without its last
 * token (bounded to 128 characters); "-" when there is no reply subject.
 */
export function requesterOf(reply: string | undefined): string {
  if (!reply) return "-";
  const parts = reply.split(".", 3);
  if (parts[0] === "_INBOX" && parts.length >= 2) return `_INBOX.${parts[1]}`.slice(0, 128);
  const i = reply.lastIndexOf(".");
  return (i > 0 ? reply.slice(0, i) : reply).slice(0, 128);
}

/** Why a request was shed. Stable: the metric label and the log `reason`. */
export const SHED_REASONS = ["requester_rate", "twin_rate", "queue_full", "reply_bytes", "global_rate"] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

/**
 * Admission for requests that are answered with no reply when refused (gossip's find, sync and
 * peers: a `rate_limited` answer there would read as a malformed announcement): a bucket per
 * requester and one global budget of answers per second.
 */
export class RequestLimiter {
  private readonly requesters: KeyedBuckets;
  private readonly global: Budget;
  constructor(
    rule: BucketRule,
    answersPerSecond: number,
    maxRequesters: number,
    now: () => number,
  ) {
    this.requesters = new KeyedBuckets(rule, maxRequesters, now);
    this.global = new Budget({ rate: answersPerSecond, burst: answersPerSecond }, now);
  }

  /** null: answer it; else why it is shed. */
  check(reply: string | undefined): ShedReason | null {
    if (!this.requesters.take(requesterOf(reply))) return "requester_rate";
    if (!this.global.take()) return "global_rate";
    return null;
  }
}
