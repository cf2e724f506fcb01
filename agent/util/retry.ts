/**
 * A retry timer with jittered exponential backoff, for a background loop that must keep trying
 * (registering with the chain, delivering usage proofs) without hammering a peer that is away.
 * One pending retry at a time; each failure doubles the delay up to maxMs; success resets it.
 */
export interface BackoffOptions {
  /** the first delay after a failure, ms */
  minMs: number;
  /** the longest delay, ms */
  maxMs: number;
  /** a delay is the current step x a factor in [1 - jitter, 1 + jitter] (default 0.2) */
  jitter?: number;
  /** a number in [0, 1): Math.random by default (tests pass their own) */
  random?: () => number;
}

export class RetryTimer {
  private stepMs: number;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly options: BackoffOptions,
    private readonly run: () => void,
  ) {
    if (!(options.minMs > 0) || !(options.maxMs >= options.minMs)) throw new RangeError(`retry: expected 0 < minMs <= maxMs, got ${options.minMs} and ${options.maxMs}`);
    this.stepMs = options.minMs;
  }

  /** Whether a retry is scheduled. */
  get pending(): boolean {
    return this.timer !== null;
  }

  /**
   * Schedule `run` after the current delay (jittered), and double the next one; nothing when a
   * retry is already scheduled or the timer is closed. Returns the delay, ms (undefined: none).
   */
  schedule(): number | undefined {
    if (this.closed || this.timer) return undefined;
    const jitter = this.options.jitter ?? 0.2;
    const delay = Math.round(this.stepMs * (1 - jitter + (this.options.random ?? Math.random)() * 2 * jitter));
    this.stepMs = Math.min(this.options.maxMs, this.stepMs * 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run();
    }, delay);
    this.timer.unref?.();
    return delay;
  }

  /** A success: the next failure waits minMs again. A scheduled retry stays. */
  reset(): void {
    this.stepMs = this.options.minMs;
  }

  /** Cancel a scheduled retry and reset the delay (e.g. to try at once on a reconnect). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stepMs = this.options.minMs;
  }

  /** Cancel for good: schedule() does nothing afterwards. */
  close(): void {
    this.cancel();
    this.closed = true;
  }
}
