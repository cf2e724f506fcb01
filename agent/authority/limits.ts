/**
 * How much a caller can make the chain stand-in do and keep (DESIGN.md "Identity, registry,
 * chain": bounds). Pure: token buckets with the clock passed in, no I/O.
 *
 * - every registration call (twin, node, farm) takes a token from its key's bucket and from the
 *   global bucket; an empty bucket is `rate_limited`;
 * - a call that would create a twin (a new account: permanent state) also takes one from the
 *   new-twins bucket, so the chain's store grows by at most newTwinsBurst + newTwinsPerSecond x t
 *   twins (and as many nodes: one per twin) however many keys a flood uses;
 * - the per-key buckets live in a Map of at most maxTrackedKeys entries (the least recently used
 *   key is forgotten first; a forgotten key starts again with a full burst, which the global
 *   buckets still bound), so memory does not grow with the number of keys a flood uses; sweep()
 *   forgets buckets that refilled (the chain calls it every second), so it shrinks back after one.
 */
import type { ChainLimits } from "./options";

interface Bucket {
  tokens: number;
  atMs: number;
}

function refill(b: Bucket, ratePerSecond: number, burst: number, nowMs: number): void {
  const dt = Math.max(0, nowMs - b.atMs);
  b.tokens = Math.min(burst, b.tokens + (dt * ratePerSecond) / 1000);
  b.atMs = nowMs;
}

export type LimitVerdict = { ok: true } | { ok: false; code: "rate_limited"; message: string };

export class RegistrationLimiter {
  private readonly keys = new Map<string, Bucket>();
  private readonly global: Bucket;
  private readonly newTwins: Bucket;

  constructor(private readonly limits: ChainLimits) {
    this.global = { tokens: limits.globalBurst, atMs: 0 };
    this.newTwins = { tokens: limits.newTwinsBurst, atMs: 0 };
  }

  /** Keys whose buckets are remembered now (at most maxTrackedKeys). */
  get trackedKeys(): number {
    return this.keys.size;
  }

  /**
   * Forget the buckets that have refilled to a full burst by `nowMs` (a forgotten key starts with a
   * full burst: the same), so the map shrinks back after a flood. The map is in least-recently-used
   * order, so it stops at the first bucket that is not full yet. Returns how many were forgotten.
   */
  sweep(nowMs: number): number {
    const l = this.limits;
    let n = 0;
    for (const [key, b] of this.keys) {
      if (b.tokens + (Math.max(0, nowMs - b.atMs) * l.perKeyPerSecond) / 1000 < l.perKeyBurst) break;
      this.keys.delete(key);
      n++;
    }
    return n;
  }

  /**
   * Take one registration from `key`'s bucket and the global one (and, when `newTwin`, from the
   * new-twins bucket). Nothing is taken when any of them is empty.
   */
  take(key: string, nowMs: number, newTwin = false): LimitVerdict {
    const l = this.limits;
    let b = this.keys.get(key);
    if (b) {
      this.keys.delete(key); // re-insert: Map order is the eviction order
    } else {
      b = { tokens: l.perKeyBurst, atMs: nowMs };
    }
    this.keys.set(key, b);
    while (this.keys.size > l.maxTrackedKeys) this.keys.delete(this.keys.keys().next().value as string);
    refill(b, l.perKeyPerSecond, l.perKeyBurst, nowMs);
    refill(this.global, l.globalPerSecond, l.globalBurst, nowMs);
    refill(this.newTwins, l.newTwinsPerSecond, l.newTwinsBurst, nowMs);
    if (b.tokens < 1) {
      return { ok: false, code: "rate_limited", message: `this key sent more than ${l.perKeyBurst} registration calls in a burst (allowed ${l.perKeyPerSecond} per second); wait ${Math.ceil(((1 - b.tokens) * 1000) / l.perKeyPerSecond)} ms and send it again` };
    }
    if (this.global.tokens < 1) {
      return { ok: false, code: "rate_limited", message: `the chain takes at most ${l.globalPerSecond} registration calls per second; it is busy, send it again in a second` };
    }
    if (newTwin && this.newTwins.tokens < 1) {
      return { ok: false, code: "rate_limited", message: `the chain registers at most ${l.newTwinsPerSecond} new twins per second; send it again in a few seconds` };
    }
    b.tokens -= 1;
    this.global.tokens -= 1;
    if (newTwin) this.newTwins.tokens -= 1;
    return { ok: true };
  }
}
