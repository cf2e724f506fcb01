import type { Store } from "../store/store";

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
 */
export class SequenceSource {
  private next: number;
  private end: number;

  constructor(
    private readonly store: Store,
    private readonly block: number,
    nowMs: number,
  ) {
    const stored = store.counter(SEQUENCE_COUNTER);
    const start = Math.max(stored, clockFloor(nowMs));
    this.end = store.advanceCounter(SEQUENCE_COUNTER, start + block - stored);
    this.next = start + 1;
  }

  /** The next sequence number (durably reserved before it is returned). */
  take(): number {
    if (this.next > this.end) this.end = this.store.advanceCounter(SEQUENCE_COUNTER, Math.max(this.block, this.next - this.end));
    return this.next++;
  }

  /** the highest number reserved in the store */
  get reservedUpTo(): number {
    return this.end;
  }
}
