import { GiB, type Units } from "../../agent/capacity/units";
import { price, PRICING_DEFAULTS } from "../../agent/billing/pricing";
import { encodeTwinSubtotal, twinSubtotals, twinsTree } from "../../agent/billing/twins";
import { checkBill } from "../../agent/billing/verify";
import { checkSettlement } from "../../agent/authority/billing";
import { addAmounts, AMOUNT_FIELDS, decodeProofHeader, encodeProofHeader, encodeRecord, zeroAmounts, ZERO_HASH, type ProofHeader, type UsageRecord } from "../../agent/proofs/proof";
import { signerFromSeed } from "../../agent/identity/keys";
import { buildProof } from "../../agent/proofs/build";
import type { ListingResult } from "../../agent/usage/audit";
import { meterPeriod, type MeterEvent, type MeterReservation } from "../../agent/usage/meter";
import { rng } from "../utils/rng";

const NODE_KEY = signerFromSeed("ed25519", new Uint8Array(32).fill(3));

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const u = (p: Partial<Units>): Units => ({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...p });

function randomRecords(r: () => number): UsageRecord[] {
  const n = 1 + int(r, 40);
  const out: UsageRecord[] = [];
  for (let i = 0; i < n; i++) {
    const a = zeroAmounts();
    for (const f of AMOUNT_FIELDS) a[f] = BigInt(int(r, 1e9)) * BigInt(1 + int(r, 1000));
    out.push({ deploymentId: i + 1, twinId: 1 + int(r, 6), firstVersion: 1, lastVersion: 1, servedMs: int(r, 3_600_000), amounts: a });
  }
  return out;
}

/** The header a node builds for `records` (proof 5 of node 3, farm 1, the hour from 0), made by buildProof. */
function headerOf(records: UsageRecord[]): ProofHeader {
  const totals = records.reduce((t, x) => addAmounts(t, x.amounts), zeroAmounts());
  return buildProof({ sequence: 4, periodEndMs: 0, hash: ZERO_HASH }, { nodeId: 3, farmId: 1, periodEndMs: 3_600_000, records, totals, downtimeMs: 0 }, NODE_KEY).header;
}

describe("twin subtotals (property, 200 seeded cases)", () => {
  test("the subtotals add up to the header totals and record count, sorted by twin, and the chain accepts them", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const records = randomRecords(rng(seed));
      const subs = twinSubtotals(records);
      const sum = subs.reduce((t, s) => addAmounts(t, s.amounts), zeroAmounts());
      const h = headerOf(records);
      expect({ seed, sum }).toEqual({ seed, sum: h.totals });
      expect(subs.reduce((n, s) => n + s.recordCount, 0)).toBe(records.length);
      expect(subs.map((s) => s.twinId)).toEqual([...new Set(records.map((x) => x.twinId))].sort((a, b) => a - b));
      // the header round-trips with its new fields
      expect(decodeProofHeader(encodeProofHeader(h))).toEqual(h);
      const s = checkSettlement(h, subs.map(encodeTwinSubtotal), PRICING_DEFAULTS);
      expect(s.ok).toBe(true);
      if (s.ok) expect(s.value.map((c) => c.amount)).toEqual(subs.map((t) => price(t.amounts, PRICING_DEFAULTS)));
    }
  });

  test("a node that inflates one twin's subtotal (totals as metered) is refused: subtotal_mismatch", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const records = randomRecords(rng(seed));
      if (records.length === 0) continue;
      const subs = twinSubtotals(records);
      const honest = headerOf(records);
      subs[0] = { ...subs[0], amounts: { ...subs[0].amounts, cuMicroHours: subs[0].amounts.cuMicroHours + 1_000_000n } };
      const inflated = subs.map(encodeTwinSubtotal);
      // the header commits to the inflated list (a consistent root), but its totals are the records'
      const h = { ...honest, twinsRoot: twinsTree(inflated).root };
      const r = checkSettlement(h, inflated, PRICING_DEFAULTS);
      expect(r).toMatchObject({ ok: false, refusal: { code: "subtotal_mismatch" } });
    }
  });
});

/** the first seeded record list with at least `n` twins */
function withTwins(n: number): UsageRecord[] {
  for (let seed = 1; ; seed++) {
    const records = randomRecords(rng(seed));
    if (twinSubtotals(records).length >= n) return records;
  }
}

describe("checkSettlement refusals", () => {
  const records = withTwins(3);
  const twins = twinSubtotals(records).map(encodeTwinSubtotal);
  const h = headerOf(records);
  const cases: Array<[string, ProofHeader, Uint8Array[] | undefined, string]> = [
    ["sent on proof.submit without subtotals", h, undefined, "twins_missing"],
    ["one subtotal left out", h, twins.slice(1), "twin_count_mismatch"],
    ["another root", { ...h, twinsRoot: new Uint8Array(32).fill(9) }, twins, "twins_root_mismatch"],
    ["out of order", { ...h, twinsRoot: twinsTree([...twins].reverse()).root }, [...twins].reverse(), "malformed"],
    ["padded bytes", h, [new Uint8Array([...twins[0], 0x78, 0x01]), ...twins.slice(1)], "malformed"],
    ["subtotals on a header from before billing", { ...h, twinsRoot: undefined, twinCount: undefined }, twins, "malformed"],
  ];
  test.each(cases.map(([n, h2, t, c]) => ({ n, h2, t, c })))("$n: $c", ({ h2: header, t, c: code }) => expect(checkSettlement(header, t, PRICING_DEFAULTS)).toMatchObject({ ok: false, refusal: { code } }));
  test("a header from before billing bills nobody", () => expect(checkSettlement({ ...h, twinsRoot: undefined, twinCount: undefined }, undefined, PRICING_DEFAULTS)).toEqual({ ok: true, value: [] }));
});

describe("no deployment is billed twice across periods (property, 50 seeded cases)", () => {
  const HOUR = 3_600_000;
  const S = 472_222 * HOUR;
  test("three consecutive periods bill each twin exactly what one period over the same span bills", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const r = rng(seed);
      const deps = Array.from({ length: 1 + int(r, 8) }, (_, i) => {
        const from = S + int(r, 3 * 3600) * 1000 - 1800_000; // some start before the span
        const to = r() < 0.5 ? undefined : from + int(r, 3 * 3600) * 1000;
        return { id: i + 1, twinId: 1 + int(r, 3), units: u({ cru: 1 + int(r, 8), mru: (1 + int(r, 16)) * GiB, sru: int(r, 100) * GiB, ipv4u: int(r, 2) }), from, to };
      });
      const meter = (start: number, end: number) => {
        const initial: MeterReservation[] = deps.filter((d) => d.from < start && !(d.to !== undefined && d.to < start)).map((d) => ({ deploymentId: d.id, twinId: d.twinId, version: 1, units: d.units }));
        const events: MeterEvent[] = [];
        for (const d of deps) {
          if (d.from >= start && d.from < end) events.push({ atMs: d.from, kind: "create", deploymentId: d.id, twinId: d.twinId, version: 1, units: d.units });
          if (d.to !== undefined && d.to >= start && d.to < end) events.push({ atMs: d.to, kind: "delete", deploymentId: d.id, twinId: d.twinId, version: 1, units: u({}) });
        }
        events.sort((a, b) => a.atMs - b.atMs || (a.kind === "create" ? -1 : 1));
        return twinSubtotals(meterPeriod({ periodStartMs: start, periodEndMs: end, initial, events, uptime: [[start, end]] }).records);
      };
      const perPeriod = [0, 1, 2].flatMap((p) => meter(S + p * HOUR, S + (p + 1) * HOUR));
      const whole = meter(S, S + 3 * HOUR);
      for (const t of whole) {
        const mine = perPeriod.filter((x) => x.twinId === t.twinId).reduce((a, x) => addAmounts(a, x.amounts), zeroAmounts());
        // linear fields are exact at whole seconds; CU/SU micro-hours may only lose rounding, never gain
        for (const f of ["cruSeconds", "mruByteSeconds", "sruByteSeconds", "ipv4Seconds"] as const) expect({ seed, twin: t.twinId, f, v: mine[f] }).toEqual({ seed, twin: t.twinId, f, v: t.amounts[f] });
        expect(mine.cuMicroHours <= t.amounts.cuMicroHours && t.amounts.cuMicroHours - mine.cuMicroHours <= 3n).toBe(true);
      }
      expect(new Set(perPeriod.map((x) => x.twinId)).size).toBeLessThanOrEqual(whole.length);
    }
  });
});

describe("checkBill (the twin's check, bills verify)", () => {
  const records = withTwins(2);
  const listing = (h: ProofHeader): ListingResult => ({ sequence: h.sequence, code: "holds", message: "", header: h, records: records.map((record, index) => ({ index, record, bytes: encodeRecord(record) })) });
  const subs = twinSubtotals(records);
  const mine = subs[0];
  const bill = { recordCount: mine.recordCount, amounts: mine.amounts, amount: price(mine.amounts, PRICING_DEFAULTS) };
  test("an honest bill holds", () => expect(checkBill({ twinId: mine.twinId, bill, listing: listing(headerOf(records)), pricing: PRICING_DEFAULTS }).code).toBe("holds"));
  test("a bill charged from an inflated subtotal: the records' subtotals do not hash up to the chain's twins root", () => {
    const inflated = subs.map((s, i) => (i === 0 ? { ...s, amounts: { ...s.amounts, suMicroHours: s.amounts.suMicroHours + 5n } } : s)).map(encodeTwinSubtotal);
    const h = { ...headerOf(records), twinsRoot: twinsTree(inflated).root };
    expect(checkBill({ twinId: mine.twinId, bill: { ...bill, amounts: { ...bill.amounts, suMicroHours: bill.amounts.suMicroHours + 5n } }, listing: listing(h), pricing: PRICING_DEFAULTS }).code).toBe("twins_root_mismatch");
  });
  test("a bill whose amounts are not the twin's subtotal", () => expect(checkBill({ twinId: mine.twinId, bill: { ...bill, recordCount: bill.recordCount + 1 }, listing: listing(headerOf(records)), pricing: PRICING_DEFAULTS }).code).toBe("subtotal_mismatch"));
  test("an amount that is not the price", () => expect(checkBill({ twinId: mine.twinId, bill: { ...bill, amount: bill.amount + 1n }, listing: listing(headerOf(records)), pricing: PRICING_DEFAULTS }).code).toBe("amount_mismatch"));
  test("a listing that does not hold", () => expect(checkBill({ twinId: mine.twinId, bill, listing: { sequence: 5, code: "totals_mismatch", message: "x" }, pricing: PRICING_DEFAULTS }).code).toBe("listing_failed"));
});
