import { StoreError } from "../store/errors";

/** What the sequence source needs of the store: durable counters (the Store is one). */
export interface CounterStore {
  counter(name: string): number;
  /** add `step` to the counter durably; returns the new value */
  advanceCounter(name: string, step?: number): number;
}

/** The store counter holding the highest announcement sequence reserved so far. */
export const SEQUENCE_COUNTER = "gossip.announcement_sequence";

/** A sequence floor from the clock: ms x 1000 (below 2^53 until the year 2255). */
export function clockFloor(nowMs: number): number {
  const f = Math.floor(nowMs) * 1000;
  return Number.isSafeInteger(f) ? f : 0;
}

/**
 * Announcement sequence numbers that only grow, also across restarts, with one durable write per
 * `block` numbers instead of one per announcement:
 *   - the store counter always holds the END of the block in use (`store.advanceCounter`, an
 *     fsync'd SQLite transaction), so after a crash the next start begins above anything used;
 *   - at start the sequence also jumps to the clock floor (ms x 1000) when that is higher, so a
 *     node whose store was wiped still outnumbers its old announcements (unless its clock went
 *     back), and peers that remember its old sequence accept it again.
 * A restart skips at most `block` numbers; peers only compare, so gaps are harmless.
 * On a full disk (StoreError store_full) no block can be reserved: numbers are then taken in
 * memory above both the block and the clock floor, so gossip goes on; after a restart the clock
 * floor (1000 numbers per ms) is above them unless the clock went back.
 */
export class SequenceSource {
  private next: number;
  private end: number;

  constructor(
    private readonly store: CounterStore,
    private readonly block: number,
    nowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    const stored = store.counter(SEQUENCE_COUNTER);
    const start = Math.max(stored, clockFloor(nowMs));
    this.next = start + 1;
    this.end = this.reserve(() => store.advanceCounter(SEQUENCE_COUNTER, start + block - stored), start);
  }

  private reserve(advance: () => number, fallback: number): number {
    try {
      return advance();
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== "store_full") throw err;
      return fallback; // nothing reserved: take() goes on in memory
    }
  }

  /** The next sequence number (durably reserved before it is returned, unless the disk is full). */
  take(): number {
    if (this.next > this.end) {
      const stored = this.store.counter(SEQUENCE_COUNTER);
      const blockEnd = Math.max(this.next - 1, stored) + this.block; // above anything handed out, even in memory
      this.end = this.reserve(() => this.store.advanceCounter(SEQUENCE_COUNTER, blockEnd - stored), stored);
      if (this.next > this.end) {
        // the disk is full: a number above the clock floor, one at a time
        this.next = Math.max(this.next, clockFloor(this.now()) + 1);
        this.end = this.next;
      }
    }
    return this.next++;
  }

  /** the highest number reserved in the store */
  get reservedUpTo(): number {
    return this.end;
  }
}
