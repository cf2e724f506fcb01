import { GiB, TiB, type Units } from "../../agent/capacity/units";
import { addAmounts, decodeRecord, encodeRecord, UINT64_MAX, zeroAmounts, type UsageAmounts, type UsageRecord } from "../../agent/proofs/proof";
import { alignPeriod, cu, meterPeriod, periodBoundariesBetween, su, type MeterEvent, type MeterInput, type MeterReservation } from "../../agent/usage/meter";
import { WireError } from "../../agent/wire/codec";

const u = (p: Partial<Units>): Units => ({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...p });
const amounts = (p: Partial<UsageAmounts>): UsageAmounts => ({ ...zeroAmounts(), ...p });

const HOUR = 3_600_000;
const S = 472_222 * HOUR; // 2023-11-14T22:00:00Z, an hour boundary
const E = S + HOUR;

/** 2 CPU, 4 GiB memory, 100 GiB SSD, 1 IPv4: CU = min(max(1,1), max(0.5,2), max(2,0.5)) = 1; SU = 100/200 = 0.5 */
const A = u({ cru: 2, mru: 4 * GiB, sru: 100 * GiB, ipv4u: 1 });
/** 4 CPU, 8 GiB memory, 200 GiB SSD, 1 IPv4: CU = min(max(2,2), max(1,4), max(4,1)) = 2; SU = 1 */
const B = u({ cru: 4, mru: 8 * GiB, sru: 200 * GiB, ipv4u: 1 });

/** exact amounts of A reserved and served for `ms` (every field is linear in ms) */
const ofA = (ms: number): UsageAmounts =>
  amounts({
    cruSeconds: (2n * BigInt(ms)) / 1000n,
    mruByteSeconds: (BigInt(4 * GiB) * BigInt(ms)) / 1000n,
    sruByteSeconds: (BigInt(100 * GiB) * BigInt(ms)) / 1000n,
    ipv4Seconds: BigInt(ms) / 1000n,
    cuMicroHours: (1_000_000n * BigInt(ms)) / BigInt(HOUR),
    suMicroHours: (500_000n * BigInt(ms)) / BigInt(HOUR),
  });

const res = (deploymentId: number, version: number, units: Units, twinId = 7): MeterReservation => ({ deploymentId, twinId, version, units });
const ev = (atMs: number, kind: MeterEvent["kind"], deploymentId: number, version: number, units: Units = u({}), twinId = 7): MeterEvent => ({ atMs, kind, deploymentId, twinId, version, units });
const rec = (deploymentId: number, firstVersion: number, lastVersion: number, servedMs: number, a: UsageAmounts, twinId = 7): UsageRecord => ({ deploymentId, twinId, firstVersion, lastVersion, servedMs, amounts: a });
const UP: Array<[number, number]> = [[S, E]];

interface Case {
  input: Partial<MeterInput>;
  records: UsageRecord[];
  downtimeMs: number;
}

const run = (i: Partial<MeterInput>) => meterPeriod({ periodStartMs: S, periodEndMs: E, initial: [], events: [], uptime: UP, ...i });

describe("meterPeriod", () => {
  const cases: Array<[string, Case]> = [
    ["reserved the whole period", { input: { initial: [res(1, 1, A)], uptime: [[S - 1000, E + 1000]] }, records: [rec(1, 1, 1, HOUR, ofA(HOUR))], downtimeMs: 0 }],
    [
      "reserved the whole period: exact amounts",
      {
        input: { initial: [res(1, 1, A)] },
        records: [rec(1, 1, 1, HOUR, amounts({ cruSeconds: 7200n, mruByteSeconds: 15_461_882_265_600n, sruByteSeconds: 386_547_056_640_000n, ipv4Seconds: 3600n, cuMicroHours: 1_000_000n, suMicroHours: 500_000n }))],
        downtimeMs: 0,
      },
    ],
    ["created mid-period", { input: { events: [ev(S + 1_800_000, "create", 1, 1, A)] }, records: [rec(1, 1, 1, 1_800_000, ofA(1_800_000))], downtimeMs: 0 }],
    [
      // A for 1_234_567 ms then B for 2_365_433 ms; cru = (2 x 1234567 + 4 x 2365433) / 1000 = 11930.866 -> 11930;
      // CU-ms = 1 x 1234567 + 2 x 2365433 = 5965433 -> 5965433 / 3600000 h x 1e6 = 1657064.7 -> 1657064
      "updated mid-period: the units change at the exact ms",
      {
        input: { initial: [res(1, 1, A)], events: [ev(S + 1_234_567, "update", 1, 2, B)] },
        records: [rec(1, 1, 2, HOUR, amounts({ cruSeconds: 11_930n, mruByteSeconds: 25_621_339_641_479n, sruByteSeconds: 640_533_491_036_979n, ipv4Seconds: 3600n, cuMicroHours: 1_657_064n, suMicroHours: 828_532n }))],
        downtimeMs: 0,
      },
    ],
    ["deleted mid-period", { input: { initial: [res(1, 1, A)], events: [ev(S + 2_000_000, "delete", 1, 1)] }, records: [rec(1, 1, 1, 2_000_000, ofA(2_000_000))], downtimeMs: 0 }],
    ["created and deleted inside the period", { input: { events: [ev(S + 600_000, "create", 1, 1, A), ev(S + 1_500_000, "delete", 1, 1)] }, records: [rec(1, 1, 1, 900_000, ofA(900_000))], downtimeMs: 0 }],
    [
      "deleted, then re-created with a new version",
      {
        input: { initial: [res(1, 1, A)], events: [ev(S + 1_000_000, "delete", 1, 1), ev(S + 2_000_000, "create", 1, 2, A)] },
        records: [rec(1, 1, 2, 2_600_000, ofA(2_600_000))],
        downtimeMs: 0,
      },
    ],
    ["an update of a deployment not in force counts as a create", { input: { events: [ev(S + 600_000, "update", 1, 3, A)] }, records: [rec(1, 3, 3, 3_000_000, ofA(3_000_000))], downtimeMs: 0 }],
    [
      "created and updated at the same ms: the first version is the one served",
      { input: { events: [ev(S + 600_000, "create", 1, 1, B), ev(S + 600_000, "update", 1, 2, A)] }, records: [rec(1, 2, 2, 3_000_000, ofA(3_000_000))], downtimeMs: 0 },
    ],
    ["created and deleted at the same ms: never reserved, no record", { input: { events: [ev(S + 600_000, "create", 1, 1, A), ev(S + 600_000, "delete", 1, 1)] }, records: [], downtimeMs: 0 }],
    ["a delete of a deployment not in force changes nothing", { input: { initial: [res(2, 1, A)], events: [ev(S + 5, "delete", 1, 1)] }, records: [rec(2, 1, 1, HOUR, ofA(HOUR))], downtimeMs: 0 }],
    [
      "down in the middle: not billed, stated as downtime",
      { input: { initial: [res(1, 1, A)], uptime: [[S, S + 1_000_000], [S + 1_500_000, E]] }, records: [rec(1, 1, 1, 3_100_000, ofA(3_100_000))], downtimeMs: 500_000 },
    ],
    [
      "versions are those at the start and end of the SERVED time",
      {
        input: { initial: [res(1, 1, A)], events: [ev(S + 1_000_000, "update", 1, 2, A), ev(S + 2_000_000, "update", 1, 3, A), ev(S + 3_000_000, "update", 1, 4, A)], uptime: [[S + 1_200_000, S + 2_500_000]] },
        records: [rec(1, 2, 3, 1_300_000, ofA(1_300_000))],
        downtimeMs: HOUR - 1_300_000,
      },
    ],
    ["down the whole period: no records", { input: { initial: [res(1, 1, A), res(2, 1, B)], uptime: [] }, records: [], downtimeMs: HOUR }],
    ["up only outside the period: no records", { input: { initial: [res(1, 1, A)], uptime: [[S - HOUR, S], [E, E + HOUR]] }, records: [], downtimeMs: HOUR }],
    [
      // merged inside the period: [S, S+1.2e6) and [S+2e6, E) -> 2.8e6 ms up
      "up-time unsorted, overlapping each other and the edges",
      {
        input: { initial: [res(1, 1, A)], uptime: [[S + 3_000_000, E + 10_000], [S - 10_000, S + 1_000_000], [S + 500_000, S + 1_200_000], [S + 2_000_000, S + 3_200_000], [S + 100, S + 200], [S + 7, S + 7]] },
        records: [rec(1, 1, 1, 2_800_000, ofA(2_800_000))],
        downtimeMs: 800_000,
      },
    ],
    ["up-time intervals that touch merge", { input: { initial: [res(1, 1, A)], uptime: [[S + 1_800_000, E], [S, S + 1_800_000]] }, records: [rec(1, 1, 1, HOUR, ofA(HOUR))], downtimeMs: 0 }],
    [
      "records sorted by deployment id",
      {
        input: { initial: [res(30, 1, A), res(4, 1, A), res(100, 1, A)], events: [ev(S, "create", 7, 1, A)] },
        records: [rec(4, 1, 1, HOUR, ofA(HOUR)), rec(7, 1, 1, HOUR, ofA(HOUR)), rec(30, 1, 1, HOUR, ofA(HOUR)), rec(100, 1, 1, HOUR, ofA(HOUR))],
        downtimeMs: 0,
      },
    ],
    [
      "network bytes are included, also for a deployment never served",
      {
        input: { initial: [res(1, 1, A), res(2, 5, A, 9), res(3, 1, A)], uptime: [[S, S + 1_000_000]], events: [ev(S + 2_000_000, "update", 2, 6, B, 9)], network: (id) => (id === 1 ? 12_345n : id === 2 ? 10n ** 15n : 0n) },
        records: [rec(1, 1, 1, 1_000_000, { ...ofA(1_000_000), nuBytes: 12_345n }), rec(2, 5, 5, 1_000_000, { ...ofA(1_000_000), nuBytes: 10n ** 15n }, 9), rec(3, 1, 1, 1_000_000, ofA(1_000_000))],
        downtimeMs: 2_600_000,
      },
    ],
    [
      "traffic while down: a record with servedMs 0 and the versions it was reserved with",
      { input: { initial: [res(2, 5, A)], events: [ev(S + 10, "update", 2, 6, B)], uptime: [], network: () => 99n }, records: [rec(2, 5, 6, 0, amounts({ nuBytes: 99n }))], downtimeMs: HOUR },
    ],
  ];

  test.each(cases)("%s", (_name, c) => {
    const r = run(c.input);
    expect(r.records).toEqual(c.records);
    expect(r.downtimeMs).toBe(c.downtimeMs);
    expect(r.totals).toEqual(c.records.reduce((t, x) => addAmounts(t, x.amounts), zeroAmounts()));
  });

  test("totals add up the records' rounded amounts (never more than the records)", () => {
    // three deployments of 1 CPU for 1 ms each: every record rounds to 0 seconds, so totals are 0 too
    const r = run({ initial: [1, 2, 3].map((id) => res(id, 1, u({ cru: 1 }))), uptime: [[S, S + 1]] });
    expect(r.records.map((x) => x.amounts.cruSeconds)).toEqual([0n, 0n, 0n]);
    expect(r.totals.cruSeconds).toBe(0n);
  });

  test("the network source is asked once per deployment seen in the period", () => {
    const asked: number[] = [];
    run({ initial: [res(5, 1, A)], events: [ev(S + 1, "create", 3, 1, A), ev(S + 2, "delete", 3, 1)], uptime: [], network: (id) => (asked.push(id), 0n) });
    expect(asked).toEqual([3, 5]);
  });

  describe("a large node: 1 PiB of HDD", () => {
    const PiB = 1024 * TiB;
    test("24 h: byte-seconds pass 2^53 and stay exact as bigint", () => {
      const day = 24 * HOUR;
      const r = meterPeriod({ periodStartMs: S, periodEndMs: S + day, initial: [res(1, 1, u({ hru: PiB }))], events: [], uptime: [[S, S + day]] });
      const hru = r.records[0].amounts.hruByteSeconds;
      expect(hru).toBe(97_277_751_951_202_713_600n); // 2^50 x 86400
      expect(hru > 2n ** 53n).toBe(true);
      // SU = 2^50 / (1200 x 2^30) = 2^20 / 1200 per hour; x 24 h x 1e6 = 20_971_520_000 exactly
      expect(r.records[0].amounts.suMicroHours).toBe(20_971_520_000n);
      // NOTE: this is more than a uint64 holds, so such a record cannot be encoded: periods must be
      // short enough for the node's capacity (1 PiB fits 4.5 h).
      expect(hru > UINT64_MAX).toBe(true);
      expect(() => encodeRecord(r.records[0])).toThrow(WireError);
    });

    test("1 h: exact through encodeRecord/decodeRecord", () => {
      const r = run({ initial: [res(1, 1, u({ hru: PiB, sru: 64 * TiB }))] });
      const a = r.records[0].amounts;
      expect(a.hruByteSeconds).toBe(4_053_239_664_633_446_400n); // 2^50 x 3600
      expect(a.sruByteSeconds).toBe(BigInt(64 * TiB) * 3600n);
      expect(decodeRecord(encodeRecord(r.records[0]))).toEqual(r.records[0]);
    });
  });

  test.each<[string, Partial<MeterInput>, RegExp]>([
    ["period end before start", { periodStartMs: E, periodEndMs: S }, /must be after its start/],
    ["empty period", { periodEndMs: S }, /must be after its start/],
    ["fractional period bound", { periodEndMs: E + 0.5 }, /integers of ms/],
    ["event before the period", { events: [ev(S - 1, "create", 1, 1, A)] }, /outside the period/],
    ["event at the period end", { events: [ev(E, "create", 1, 1, A)] }, /outside the period/],
    ["events out of order", { events: [ev(S + 10, "create", 1, 1, A), ev(S + 5, "delete", 1, 1)] }, /must be in order/],
    ["unknown event kind", { events: [{ ...ev(S, "create", 1, 1, A), kind: "resize" as MeterEvent["kind"] }] }, /unknown kind/],
    ["negative units", { initial: [res(1, 1, u({ cru: -1 }))] }, /units\.cru/],
    ["fractional units", { events: [ev(S, "create", 1, 1, u({ mru: 1.5 }))] }, /units\.mru/],
    ["version beyond uint32", { initial: [res(1, 2 ** 32, A)] }, /version/],
    ["a deployment twice in initial", { initial: [res(1, 1, A), res(1, 2, A)] }, /twice in initial/],
    ["up-time ending before it starts", { uptime: [[S + 10, S + 5]] }, /ends before it starts/],
    ["up-time that is not integers", { uptime: [[S, Number.NaN]] }, /integers of ms/],
    ["negative network bytes", { initial: [res(1, 1, A)], network: () => -1n }, /non-negative bigint/],
  ])("throws on a bug: %s", (_what, input, message) => {
    expect(() => run(input)).toThrow(message);
  });
});

describe("cu and su (micro-units per hour)", () => {
  test.each<[string, Units, bigint, bigint]>([
    // [workload, units, CU x 1e6, SU x 1e6]
    ["2 CPU, 4 GiB: CU = min(max(1,1), max(0.5,2), max(2,0.5)) = 1", u({ cru: 2, mru: 4 * GiB }), 1_000_000n, 0n],
    ["1 CPU, no memory: CU = min(0.5, 1, 0.25) = 0.25", u({ cru: 1 }), 250_000n, 0n],
    ["8 GiB, no CPU: CU = min(2, 1, 4) = 1", u({ mru: 8 * GiB }), 1_000_000n, 0n],
    ["4 CPU, 2 GiB: CU = min(max(0.5,2), max(0.25,4), max(1,1)) = 1", u({ cru: 4, mru: 2 * GiB }), 1_000_000n, 0n],
    ["1 CPU, 3 GiB: CU = min(max(0.75,0.5), max(0.375,1), max(1.5,0.25)) = 0.75", u({ cru: 1, mru: 3 * GiB }), 750_000n, 0n],
    ["1200 GiB HDD: SU = 1", u({ hru: 1200 * GiB }), 0n, 1_000_000n],
    ["200 GiB SSD: SU = 1", u({ sru: 200 * GiB }), 0n, 1_000_000n],
    ["1 GiB SSD + 1 GiB HDD: SU = 1/200 + 1/1200 = 0.0058333", u({ sru: GiB, hru: GiB }), 0n, 5_833n],
    ["nothing", u({}), 0n, 0n],
  ])("%s", (_what, units, wantCu, wantSu) => {
    expect(cu(units)).toBe(wantCu);
    expect(su(units)).toBe(wantSu);
  });

  test("one hour of a known workload meters its CU x 1e6 micro-hours", () => {
    const r = run({ initial: [res(1, 1, u({ cru: 2, mru: 4 * GiB }))] });
    expect(r.records[0].amounts.cuMicroHours).toBe(1_000_000n);
  });
});

describe("periods", () => {
  test.each([
    // [ms, periodMs, startMs, endMs]
    [0, HOUR, 0, HOUR],
    [HOUR - 1, HOUR, 0, HOUR],
    [HOUR, HOUR, HOUR, 2 * HOUR],
    [S + 1_234_567, HOUR, S, E],
    [-1, HOUR, -HOUR, 0],
    [1_700_000_000_123, 1000, 1_700_000_000_000, 1_700_000_001_000],
    [Number.MAX_SAFE_INTEGER - HOUR, HOUR, Math.floor((Number.MAX_SAFE_INTEGER - HOUR) / HOUR) * HOUR, Math.floor((Number.MAX_SAFE_INTEGER - HOUR) / HOUR) * HOUR + HOUR],
  ])("alignPeriod(%i, %i) = [%i, %i)", (ms, p, startMs, endMs) => {
    expect(alignPeriod(ms, p)).toEqual({ startMs, endMs });
  });

  test.each([
    // [fromMs, toMs, periodMs, ends in (from, to]]
    [0, HOUR, HOUR, [HOUR]],
    [0, HOUR - 1, HOUR, []],
    [1, 3 * HOUR, HOUR, [HOUR, 2 * HOUR, 3 * HOUR]],
    [HOUR, HOUR, HOUR, []],
    [HOUR, 2 * HOUR - 1, HOUR, []],
    [HOUR, 2 * HOUR, HOUR, [2 * HOUR]],
    [5 * HOUR, HOUR, HOUR, []],
    [S - 1, E, HOUR, [S, E]],
  ])("periodBoundariesBetween(%i, %i, %i) = %p", (from, to, p, ends) => {
    expect(periodBoundariesBetween(from, to, p)).toEqual(ends);
  });

  test.each([0, -HOUR, 1.5, Number.NaN])("a period of %p ms throws", (p) => {
    expect(() => alignPeriod(0, p)).toThrow(/period length/);
    expect(() => periodBoundariesBetween(0, HOUR, p)).toThrow(/period length/);
  });
});
