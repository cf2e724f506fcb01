import { GiB, type Units } from "../../agent/capacity/units";
import { parsePricing, price, PRICING_DEFAULTS, PricingError, type PricingPolicy } from "../../agent/billing/pricing";
import { zeroAmounts, type UsageAmounts } from "../../agent/proofs/proof";
import { cu, meterPeriod, su } from "../../agent/usage/meter";

const u = (p: Partial<Units>): Units => ({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...p });
const amounts = (p: Partial<UsageAmounts>): UsageAmounts => ({ ...zeroAmounts(), ...p });
const HOUR = 3_600_000;
const S = 472_222 * HOUR;
const E = S + HOUR;
/** 1 CU and 1 SU and 1 IPv4 at 1/unit/hour, 1/GiB: the price is the sum of the units, exactly */
const ONES: PricingPolicy = { cuPerHour: 1n, suPerHour: 1n, ipv4PerHour: 1n, nuPerGib: 1n };

describe("CU formula (GRID.md): min(max(MRU/4, CRU/2), max(MRU/8, CRU), max(MRU/2, CRU/4)), in micro-CU", () => {
  const cases: Array<[string, Partial<Units>, bigint]> = [
    ["nothing", {}, 0n],
    ["memory only, 4 GiB: min(1, 0.5, 2) = 0.5", { mru: 4 * GiB }, 500_000n],
    ["CPU only, 2 cores: min(1, 2, 0.5) = 0.5", { cru: 2 }, 500_000n],
    ["balanced 2 CPU / 4 GiB: min(1, 2, 2) = 1", { cru: 2, mru: 4 * GiB }, 1_000_000n],
    ["memory-heavy 1 CPU / 16 GiB: min(4, 2, 8) = 2", { cru: 1, mru: 16 * GiB }, 2_000_000n],
    ["CPU-heavy 16 CPU / 2 GiB: min(8, 16, 4) = 4", { cru: 16, mru: 2 * GiB }, 4_000_000n],
    ["the second term wins: 4 CPU / 32 GiB: min(8, 4, 16) = 4", { cru: 4, mru: 32 * GiB }, 4_000_000n],
    ["a fraction rounds down: 1 CPU / 1 byte over 2 GiB", { cru: 1, mru: 2 * GiB + 1 }, 500_000n],
  ];
  test.each(cases)("%s", (_name, units, want) => expect(cu(u(units))).toBe(want));
  test("SU = HRU/1200 + SRU/200: 1200 GiB HDD + 200 GiB SSD = 2 SU", () => expect(su(u({ hru: 1200 * GiB, sru: 200 * GiB }))).toBe(2_000_000n));
});

describe("price: integers, rounded down once per twin and period", () => {
  const cases: Array<[string, Partial<UsageAmounts>, PricingPolicy, bigint]> = [
    ["a zero period costs nothing", {}, PRICING_DEFAULTS, 0n],
    ["1 CU-hour at the default 100000", { cuMicroHours: 1_000_000n }, PRICING_DEFAULTS, 100_000n],
    ["1 SU-hour at the default 50000", { suMicroHours: 1_000_000n }, PRICING_DEFAULTS, 50_000n],
    ["1 IPv4-hour at the default 40000", { ipv4Seconds: 3600n }, PRICING_DEFAULTS, 40_000n],
    ["1 GiB of traffic at the default 15000", { nuBytes: BigInt(GiB) }, PRICING_DEFAULTS, 15_000n],
    ["every unit at 1: the sum", { cuMicroHours: 2_000_000n, suMicroHours: 3_000_000n, ipv4Seconds: 7200n, nuBytes: BigInt(4 * GiB) }, ONES, 11n],
    ["0.999999 CU-hour at 1 rounds down to 0", { cuMicroHours: 999_999n }, ONES, 0n],
    ["halves add up before rounding: 0.5 CU-h + 0.5 SU-h at 1 = 1", { cuMicroHours: 500_000n, suMicroHours: 500_000n }, ONES, 1n],
    ["one IPv4-second at 3600/hour = 1", { ipv4Seconds: 1n }, { ...ONES, ipv4PerHour: 3600n }, 1n],
    ["one byte of traffic is below the smallest unit", { nuBytes: 1n }, PRICING_DEFAULTS, 0n],
    ["byte-seconds alone are not priced (CU and SU are)", { cruSeconds: 10n ** 12n, mruByteSeconds: 10n ** 18n, sruByteSeconds: 10n ** 18n }, PRICING_DEFAULTS, 0n],
    ["large amounts stay exact (no floats)", { cuMicroHours: 10n ** 15n + 1n }, PRICING_DEFAULTS, (10n ** 15n + 1n) / 10n],
  ];
  test.each(cases)("%s", (_n, a, p, want) => expect(price(amounts(a), p)).toBe(want));

  test("downtime is not billed: the same reservation costs in proportion to up-time", () => {
    const initial = [{ deploymentId: 1, twinId: 7, version: 1, units: u({ cru: 2, mru: 4 * GiB, sru: 200 * GiB, ipv4u: 1 }) }];
    const full = meterPeriod({ periodStartMs: S, periodEndMs: E, initial, events: [], uptime: [[S, E]] });
    const half = meterPeriod({ periodStartMs: S, periodEndMs: E, initial, events: [], uptime: [[S, S + HOUR / 2]] });
    expect(half.downtimeMs).toBe(HOUR / 2);
    // 1 CU + 1 SU + 1 IPv4 for an hour: 100000 + 50000 + 40000
    expect(price(full.totals, PRICING_DEFAULTS)).toBe(190_000n);
    expect(price(half.totals, PRICING_DEFAULTS)).toBe(95_000n);
    const down = meterPeriod({ periodStartMs: S, periodEndMs: E, initial, events: [], uptime: [] });
    expect(price(down.totals, PRICING_DEFAULTS)).toBe(0n);
  });
});

describe("parsePricing", () => {
  test("defaults, numbers and decimal strings", () => {
    expect(parsePricing()).toEqual(PRICING_DEFAULTS);
    expect(parsePricing({ cuPerHour: 7, nuPerGib: "9" })).toEqual({ ...PRICING_DEFAULTS, cuPerHour: 7n, nuPerGib: 9n });
  });
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ["a float", { cuPerHour: 1.5 }, "chain.pricing.cuPerHour"],
    ["negative", { suPerHour: -1 }, "chain.pricing.suPerHour"],
    ["not a number", { ipv4PerHour: "ten" }, "chain.pricing.ipv4PerHour"],
    ["too large", { nuPerGib: String(2n ** 48n) }, "chain.pricing.nuPerGib"],
    ["unknown", { gpuPerHour: 1 }, "chain.pricing.gpuPerHour"],
  ];
  test.each(bad)("refuses %s, naming the field", (_n, raw, field) => {
    let err: unknown;
    try {
      parsePricing(raw as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PricingError);
    expect((err as PricingError).field).toBe(field);
  });
});
