import { UNIT_NAMES, type Units } from "../capacity/units";
import { addAmounts, zeroAmounts, type UsageAmounts, type UsageRecord } from "../proofs/proof";

/**
 * Usage metering of one period (DESIGN.md, "Usage proofs"; GRID.md, "Billing formulas"). Pure:
 * no I/O and no clock; the caller passes the period, the reservations in force at its start, the
 * changes during it, the agent's up-time intervals and a network byte source.
 *
 * Exact to the millisecond and deterministic on every platform: every product and sum is a
 * bigint; CU and SU are scaled to integers (see CU_SCALE, SU_SCALE) so no floating point is used.
 *
 * Rounding: each amount of a record is the exact rational sum over the deployment's served
 * segments, rounded DOWN ONCE at the end (per record, per field). Totals are the sums of the
 * rounded record amounts, so a verifier can add up the leaves and get the header's totals exactly.
 */

/** A reservation in force (the store's ReservationAt, agent/store/store.ts, has this shape). */
export interface MeterReservation {
  deploymentId: number;
  twinId: number;
  version: number;
  units: Units;
}

/** A change of reservations (the store's ReservationEvent has this shape); units are those after the change. */
export interface MeterEvent extends MeterReservation {
  atMs: number;
  kind: "create" | "update" | "delete";
}

export interface MeterInput {
  /** the period is [periodStartMs, periodEndMs) */
  periodStartMs: number;
  periodEndMs: number;
  /** reservations in force at periodStartMs (one per deployment) */
  initial: readonly MeterReservation[];
  /** changes with periodStartMs <= atMs < periodEndMs, in the order they happened (atMs never decreases) */
  events: readonly MeterEvent[];
  /** [startMs, endMs) intervals the agent was running; may be unsorted, overlap each other or the period's edges */
  uptime: ReadonlyArray<readonly [number, number]>;
  /** public traffic bytes of a deployment in the period (default: 0); called once per deployment seen in the period */
  network?: (deploymentId: number) => bigint;
}

export interface MeterResult {
  /** sorted by deploymentId; only deployments served > 0 ms or with network bytes > 0 */
  records: UsageRecord[];
  /** period length minus the merged up-time inside the period */
  downtimeMs: number;
  /** sums of the records' amounts */
  totals: UsageAmounts;
}

/** CU x 2^33 is an integer for integer CRU and MRU in bytes (MRU/8 GiB = bytes / 2^33). */
export const CU_SCALE = 1n << 33n;
/** SU x 1200 x 2^30 = HRU bytes + 6 x SRU bytes, an integer. */
export const SU_SCALE = 1200n << 30n;

const MICRO = 1_000_000n;
const MS_PER_SECOND = 1000n;
const MS_PER_HOUR = 3_600_000n;
const CU_DIVISOR = CU_SCALE * MS_PER_HOUR;
const SU_DIVISOR = SU_SCALE * MS_PER_HOUR;

const KINDS = new Set(["create", "update", "delete"]);

const bmax = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const bmin = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/**
 * CU x CU_SCALE, exactly: CU = min(max(MRU/4, CRU/2), max(MRU/8, CRU), max(MRU/2, CRU/4)), MRU in
 * GiB. Multiplied by 2^33 with m = MRU bytes: min(max(2m, CRU.2^32), max(m, CRU.2^33), max(4m, CRU.2^31)).
 */
export function cuScaled(units: Units): bigint {
  const m = BigInt(units.mru);
  const c = BigInt(units.cru);
  return bmin(bmin(bmax(2n * m, c << 32n), bmax(m, c << 33n)), bmax(4n * m, c << 31n));
}

/** SU x SU_SCALE, exactly: SU = HRU/1200 + SRU/200 (GiB), so SU x 1200 x 2^30 = hru + 6 sru (bytes). */
export function suScaled(units: Units): bigint {
  return BigInt(units.hru) + 6n * BigInt(units.sru);
}

/** CU of `units` in micro-units (CU x 1e6, rounded down): the micro-CU-hours one hour of it adds. */
export function cu(units: Units): bigint {
  return (cuScaled(units) * MICRO) / CU_SCALE;
}

/** SU of `units` in micro-units (SU x 1e6, rounded down): the micro-SU-hours one hour of it adds. */
export function su(units: Units): bigint {
  return (suScaled(units) * MICRO) / SU_SCALE;
}

function checkPeriodMs(periodMs: number): void {
  if (!Number.isSafeInteger(periodMs) || periodMs <= 0) throw new Error(`usage: period length must be a positive integer of ms, got ${periodMs}`);
}

/** The period [startMs, endMs) containing `ms`; periods are aligned to the Unix epoch. */
export function alignPeriod(ms: number, periodMs: number): { startMs: number; endMs: number } {
  checkPeriodMs(periodMs);
  if (!Number.isSafeInteger(ms)) throw new Error(`usage: time must be an integer of ms, got ${ms}`);
  const r = ms % periodMs; // exact for integers; negative for negative ms
  const startMs = r < 0 ? ms - r - periodMs : ms - r;
  return { startMs, endMs: startMs + periodMs };
}

/** The period ends e (multiples of periodMs) with fromMs < e <= toMs, ascending; [] when toMs <= fromMs. */
export function periodBoundariesBetween(fromMs: number, toMs: number, periodMs: number): number[] {
  checkPeriodMs(periodMs);
  if (!Number.isSafeInteger(toMs)) throw new Error(`usage: time must be an integer of ms, got ${toMs}`);
  const out: number[] = [];
  for (let e = alignPeriod(fromMs, periodMs).endMs; e <= toMs; e += periodMs) out.push(e);
  return out;
}

// ---- validation (a failure is a bug in the caller, so it throws) -----------------------------

function checkInt(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) throw new Error(`usage meter: ${what} must be an integer in [0, ${max}], got ${String(v)}`);
}

function checkReservation(r: MeterReservation, what: string): void {
  checkInt(r.deploymentId, `${what} deploymentId`);
  checkInt(r.twinId, `${what} twinId`, 0xffffffff);
  checkInt(r.version, `${what} version`, 0xffffffff);
  if (!r.units || typeof r.units !== "object") throw new Error(`usage meter: ${what} has no units`);
  for (const u of UNIT_NAMES) checkInt(r.units[u], `${what} units.${u}`);
}

// ---- up-time ------------------------------------------------------------------------------------

/** Merged up-time inside the period, with prefix sums: served(a, b) in O(log n). */
class UpTime {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** up-time before interval i */
  private readonly before: number[] = [];
  readonly totalMs: number;

  constructor(intervals: MeterInput["uptime"], startMs: number, endMs: number) {
    const clipped: Array<[number, number]> = [];
    intervals.forEach((iv, i) => {
      if (!Array.isArray(iv) || iv.length !== 2) throw new Error(`usage meter: uptime[${i}] must be a [startMs, endMs] pair`);
      const [s, e] = iv;
      if (!Number.isSafeInteger(s) || !Number.isSafeInteger(e)) throw new Error(`usage meter: uptime[${i}] must hold integers of ms, got [${s}, ${e}]`);
      if (e < s) throw new Error(`usage meter: uptime[${i}] ends before it starts: [${s}, ${e}]`);
      const a = Math.max(s, startMs);
      const b = Math.min(e, endMs);
      if (b > a) clipped.push([a, b]);
    });
    clipped.sort((x, y) => x[0] - y[0]);
    let total = 0;
    for (const [a, b] of clipped) {
      const last = this.ends.length - 1;
      if (last >= 0 && a <= this.ends[last]) {
        if (b > this.ends[last]) {
          total += b - this.ends[last];
          this.ends[last] = b;
        }
        continue;
      }
      this.before.push(total);
      this.starts.push(a);
      this.ends.push(b);
      total += b - a;
    }
    this.totalMs = total;
  }

  /** up-time in [periodStart, t) */
  private upTo(t: number): number {
    // the last interval starting before t
    let lo = 0;
    let hi = this.starts.length - 1;
    let k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] < t) {
        k = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (k < 0) return 0;
    return this.before[k] + Math.min(this.ends[k], t) - this.starts[k];
  }

  /** up-time in [a, b) */
  served(a: number, b: number): number {
    return b > a ? this.upTo(b) - this.upTo(a) : 0;
  }
}

// ---- metering ------------------------------------------------------------------------------------

interface Segment {
  fromMs: number;
  toMs: number;
  version: number;
  twinId: number;
  units: Units;
}

interface Timeline {
  id: number;
  current: (Omit<Segment, "toMs">) | null;
  segments: Segment[];
  /** every version and twin seen, for records of deployments never reserved > 0 ms */
  firstSeen: { version: number; twinId: number };
  lastSeen: { version: number; twinId: number };
}

function close(t: Timeline, atMs: number): void {
  if (t.current && atMs > t.current.fromMs) t.segments.push({ ...t.current, toMs: atMs });
  t.current = null;
}

/** Meter one period: one record per deployment served (or with traffic), downtime and totals. */
export function meterPeriod(input: MeterInput): MeterResult {
  const { periodStartMs: start, periodEndMs: end } = input;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) throw new Error(`usage meter: period bounds must be integers of ms, got [${start}, ${end})`);
  if (end <= start) throw new Error(`usage meter: period end ${end} must be after its start ${start}`);

  const timelines = new Map<number, Timeline>();
  input.initial.forEach((r, i) => {
    checkReservation(r, `initial[${i}]`);
    if (timelines.has(r.deploymentId)) throw new Error(`usage meter: deployment ${r.deploymentId} is twice in initial`);
    const seen = { version: r.version, twinId: r.twinId };
    timelines.set(r.deploymentId, { id: r.deploymentId, current: { fromMs: start, version: r.version, twinId: r.twinId, units: r.units }, segments: [], firstSeen: seen, lastSeen: seen });
  });

  let prevAt = start;
  input.events.forEach((e, i) => {
    checkReservation(e, `events[${i}]`);
    if (!KINDS.has(e.kind)) throw new Error(`usage meter: events[${i}] has unknown kind "${String(e.kind)}"`);
    if (!Number.isSafeInteger(e.atMs) || e.atMs < start || e.atMs >= end) throw new Error(`usage meter: events[${i}] at ${e.atMs} is outside the period [${start}, ${end})`);
    if (e.atMs < prevAt) throw new Error(`usage meter: events[${i}] at ${e.atMs} is before the event before it (${prevAt}); events must be in order`);
    prevAt = e.atMs;
    const seen = { version: e.version, twinId: e.twinId };
    let t = timelines.get(e.deploymentId);
    if (!t) {
      t = { id: e.deploymentId, current: null, segments: [], firstSeen: seen, lastSeen: seen };
      timelines.set(e.deploymentId, t);
    }
    t.lastSeen = seen;
    close(t, e.atMs);
    // create, or update (of a reservation not in force: same as create), replaces the units from atMs; delete ends it
    if (e.kind !== "delete") t.current = { fromMs: e.atMs, version: e.version, twinId: e.twinId, units: e.units };
  });

  const up = new UpTime(input.uptime, start, end);
  const network = input.network ?? (() => 0n);
  const records: UsageRecord[] = [];
  let totals = zeroAmounts();

  const ids = [...timelines.keys()].sort((a, b) => a - b);
  for (const id of ids) {
    const t = timelines.get(id)!;
    close(t, end);

    let servedMs = 0;
    let first: Segment | undefined;
    let last: Segment | undefined;
    const sums: Record<(typeof UNIT_NAMES)[number], bigint> = { cru: 0n, mru: 0n, sru: 0n, hru: 0n, ipv4u: 0n, gpu: 0n };
    let cuSum = 0n;
    let suSum = 0n;
    for (const seg of t.segments) {
      const ms = up.served(seg.fromMs, seg.toMs);
      if (ms <= 0) continue;
      servedMs += ms;
      first ??= seg;
      last = seg;
      const bms = BigInt(ms);
      for (const u of UNIT_NAMES) sums[u] += BigInt(seg.units[u]) * bms;
      cuSum += cuScaled(seg.units) * bms;
      suSum += suScaled(seg.units) * bms;
    }

    const nuBytes = network(id);
    if (typeof nuBytes !== "bigint" || nuBytes < 0n) throw new Error(`usage meter: network bytes of deployment ${id} must be a non-negative bigint, got ${String(nuBytes)}`);
    if (servedMs === 0 && nuBytes === 0n) continue;

    // versions of its served time; without any, of its reserved time; without any, the ones seen
    const from = first ?? t.segments[0] ?? t.firstSeen;
    const to = last ?? t.segments[t.segments.length - 1] ?? t.lastSeen;
    const amounts: UsageAmounts = {
      cruSeconds: sums.cru / MS_PER_SECOND,
      mruByteSeconds: sums.mru / MS_PER_SECOND,
      sruByteSeconds: sums.sru / MS_PER_SECOND,
      hruByteSeconds: sums.hru / MS_PER_SECOND,
      ipv4Seconds: sums.ipv4u / MS_PER_SECOND,
      gpuSeconds: sums.gpu / MS_PER_SECOND,
      nuBytes,
      cuMicroHours: (cuSum * MICRO) / CU_DIVISOR,
      suMicroHours: (suSum * MICRO) / SU_DIVISOR,
    };
    records.push({ deploymentId: id, twinId: to.twinId, firstVersion: from.version, lastVersion: to.version, servedMs, amounts });
    totals = addAmounts(totals, amounts);
  }

  return { records, downtimeMs: end - start - up.totalMs, totals };
}
