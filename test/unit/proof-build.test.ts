import fc from "fast-check";
import { decodeTwinSubtotal, twinsTree } from "../../agent/billing/twins";
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { buildProof, headAfter, proofTwins, type MeteredPeriod, type ProofHead } from "../../agent/proofs/build";
import { inclusionPath, leafHash, merkleRoot, verifyInclusion } from "../../agent/proofs/merkle";
import { addAmounts, AMOUNT_FIELDS, decodeProofHeader, decodeRecord, encodeRecord, proofHash, ZERO_HASH, zeroAmounts, type UsageAmounts, type UsageRecord } from "../../agent/proofs/proof";
import { meterPeriod, type MeterEvent, type MeterReservation } from "../../agent/usage/meter";
import fixture from "./fixtures/proofs-before-buildproof.json";

/**
 * buildProof (agent/proofs/build.ts): pure, so every case is a table row or a generated input.
 * The bytes of the proofs the agent built before buildProof existed are the first check: the
 * same input must still give the same header, envelope, hash, records and twin subtotals.
 */

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const HOUR = 3_600_000;
const S = 472_222 * HOUR;

let signer: Signer;
let other: Signer;
beforeAll(async () => {
  await cryptoReady();
  signer = signerFromSeed("ed25519", new Uint8Array(32).map((_, i) => i + 1));
  other = signerFromSeed("ed25519", new Uint8Array(32).fill(9));
});

function amounts(p: Partial<UsageAmounts>): UsageAmounts {
  return { ...zeroAmounts(), ...p };
}
function record(deploymentId: number, twinId: number, a: Partial<UsageAmounts>, servedMs = 1000): UsageRecord {
  return { deploymentId, twinId, firstVersion: 1, lastVersion: 1, servedMs, amounts: amounts(a) };
}
const sum = (rs: readonly UsageRecord[]): UsageAmounts => rs.reduce((a, r) => addAmounts(a, r.amounts), zeroAmounts());
function period(records: UsageRecord[], p: Partial<MeteredPeriod> = {}): MeteredPeriod {
  return { nodeId: 17, farmId: 3, periodEndMs: S + HOUR, records, totals: sum(records), downtimeMs: 0, ...p };
}
const HEAD: ProofHead = { sequence: 41, periodEndMs: S, hash: new Uint8Array(32).fill(0xab) };

// ---- the bytes of before ---------------------------------------------------------------------------

describe("buildProof gives the bytes UsageService built before it existed", () => {
  type Fx = (typeof fixture.proofs)[number];
  test.each(fixture.proofs.map((p) => [p.head.sequence + 1, p] as [number, Fx]))("proof %i", (_seq, p) => {
    const head: ProofHead = { sequence: p.head.sequence, periodEndMs: p.head.periodEndMs, hash: unhex(p.head.hash) };
    const network = new Map(p.input.network.map(([id, n]) => [id as number, BigInt(n as string)]));
    const metered = meterPeriod({
      periodStartMs: p.periodStartMs,
      periodEndMs: p.periodEndMs,
      initial: p.input.initial as MeterReservation[],
      events: p.input.events as MeterEvent[],
      uptime: p.input.uptime as Array<[number, number]>,
      network: (id) => network.get(id) ?? 0n,
    });
    const built = buildProof(head, { nodeId: fixture.nodeId, farmId: fixture.farmId, periodEndMs: p.periodEndMs, ...metered }, signer);
    expect(hex(built.headerBytes)).toBe(p.header);
    expect(hex(built.envelope)).toBe(p.envelope);
    expect(hex(built.hash)).toBe(p.hash);
    expect(built.records.map((r) => ({ deploymentId: r.deploymentId, bytes: hex(r.bytes) }))).toEqual(p.records);
    expect(built.twins.map(hex)).toEqual(p.twins);
  });

  test("the fixture's proofs chain: each head is the one headAfter gives", () => {
    for (let i = 1; i < fixture.proofs.length; i++) {
      const prev = fixture.proofs[i - 1];
      expect(fixture.proofs[i].head).toEqual({ sequence: prev.head.sequence + 1, periodEndMs: prev.periodEndMs, hash: prev.hash });
    }
  });
});

// ---- tables -------------------------------------------------------------------------------------

describe("buildProof: the header", () => {
  const cases: Array<[string, ProofHead, MeteredPeriod, { sequence: number; periodStartMs: number; recordCount: number; twinCount: number; downtimeMs: number }]> = [
    ["no records (an idle node): empty roots", HEAD, period([]), { sequence: 42, periodStartMs: S, recordCount: 0, twinCount: 0, downtimeMs: 0 }],
    ["the first proof (head 0, zero hash), mid-period start", { sequence: 0, periodEndMs: S + 1234, hash: ZERO_HASH }, period([record(5, 7, { cruSeconds: 9n })]), { sequence: 1, periodStartMs: S + 1234, recordCount: 1, twinCount: 1, downtimeMs: 0 }],
    ["three records of two twins", HEAD, period([record(1, 9, { cruSeconds: 1n }), record(2, 7, { mruByteSeconds: 2n }), record(8, 9, { nuBytes: 3n })]), { sequence: 42, periodStartMs: S, recordCount: 3, twinCount: 2, downtimeMs: 0 }],
    ["a period that was all downtime", HEAD, period([], { downtimeMs: HOUR }), { sequence: 42, periodStartMs: S, recordCount: 0, twinCount: 0, downtimeMs: HOUR }],
    ["a period over several hours (closed after the agent was down)", HEAD, period([record(3, 7, { suMicroHours: 5n })], { periodEndMs: S + 3 * HOUR, downtimeMs: 2 * HOUR }), { sequence: 42, periodStartMs: S, recordCount: 1, twinCount: 1, downtimeMs: 2 * HOUR }],
  ];
  test.each(cases)("%s", (_name, head, p, want) => {
    const b = buildProof(head, p, signer);
    const h = decodeProofHeader(b.headerBytes);
    expect(h).toEqual(b.header);
    expect(h).toMatchObject({ nodeId: 17, farmId: 3, periodEndMs: p.periodEndMs, ...want });
    expect(hex(h.previousHash)).toBe(hex(head.hash));
    expect(h.totals).toEqual(p.totals);
    expect(hex(h.recordsRoot)).toBe(hex(merkleRoot(p.records.map((r) => leafHash(encodeRecord(r))))));
    expect(hex(h.twinsRoot!)).toBe(hex(twinsTree(b.twins).root));
    if (p.records.length === 0) {
      expect(hex(h.recordsRoot)).toBe(hex(ZERO_HASH));
      expect(hex(h.twinsRoot!)).toBe(hex(ZERO_HASH));
    }
    expect(headAfter(b)).toEqual({ sequence: want.sequence, periodEndMs: p.periodEndMs, hash: proofHash(b.headerBytes) });
  });

  test("twin subtotals: one per twin, sorted by twin id, each the sum of its records", () => {
    const rs = [record(1, 9, { cruSeconds: 1n }), record(2, 7, { cruSeconds: 10n }), record(3, 9, { cruSeconds: 100n, nuBytes: 4n }), record(4, 2, { gpuSeconds: 5n })];
    const twins = buildProof(HEAD, period(rs), signer).twins.map(decodeTwinSubtotal);
    expect(twins).toEqual([
      { twinId: 2, recordCount: 1, amounts: amounts({ gpuSeconds: 5n }) },
      { twinId: 7, recordCount: 1, amounts: amounts({ cruSeconds: 10n }) },
      { twinId: 9, recordCount: 2, amounts: amounts({ cruSeconds: 101n, nuBytes: 4n }) },
    ]);
    expect(proofTwins(rs).map(hex)).toEqual(buildProof(HEAD, period(rs), signer).twins.map(hex));
  });

  test("the envelope is the header signed by the given key in the UsageProof domain, and nothing else opens it", () => {
    const b = buildProof(HEAD, period([record(1, 7, { cruSeconds: 1n })]), signer);
    const o = open(b.envelope, DOMAIN.UsageProof);
    expect(o.ok).toBe(true);
    if (!o.ok) return;
    expect(hex(o.value.signer)).toBe(hex(signer.publicKey));
    expect(hex(o.value.payload)).toBe(hex(b.headerBytes));
    expect(open(b.envelope, DOMAIN.UsageAuditReply).ok).toBe(false);
    expect(hex(buildProof(HEAD, period([record(1, 7, { cruSeconds: 1n })]), other).headerBytes)).toBe(hex(b.headerBytes));
    expect(hex(buildProof(HEAD, period([record(1, 7, { cruSeconds: 1n })]), other).envelope)).not.toBe(hex(b.envelope));
  });

  test("the same input gives the same bytes (ed25519 is deterministic), a different head different ones", () => {
    const p = period([record(1, 7, { cruSeconds: 1n }), record(4, 8, { sruByteSeconds: 1n << 60n })]);
    const a = buildProof(HEAD, p, signer);
    expect(hex(buildProof(HEAD, p, signer).envelope)).toBe(hex(a.envelope));
    expect(hex(buildProof({ ...HEAD, hash: new Uint8Array(32).fill(1) }, p, signer).hash)).not.toBe(hex(a.hash));
  });
});

describe("buildProof refuses input no meter gives", () => {
  const r1 = record(1, 7, { cruSeconds: 1n });
  const r2 = record(2, 7, { cruSeconds: 2n });
  const cases: Array<[string, ProofHead, MeteredPeriod, RegExp]> = [
    ["a period ending at the head's end", HEAD, period([], { periodEndMs: S }), /must end after/],
    ["a period ending before the head's end", HEAD, period([], { periodEndMs: S - 1 }), /must end after/],
    ["records out of order", HEAD, period([r2, r1]), /sorted by deployment id/],
    ["a deployment twice", HEAD, period([r1, { ...r1 }]), /sorted by deployment id/],
    ["totals that are not the records' sum", HEAD, period([r1, r2], { totals: amounts({ cruSeconds: 4n }) }), /totals\.cruSeconds 4 is not the records' sum 3/],
    ["downtime longer than the period", HEAD, period([], { downtimeMs: HOUR + 1 }), /downtime/],
    ["negative downtime", HEAD, period([], { downtimeMs: -1 }), /downtime/],
    ["a head hash that is not 32 bytes", { ...HEAD, hash: new Uint8Array(31) }, period([]), /32 bytes/],
    ["a negative head sequence", { ...HEAD, sequence: -1 }, period([]), /sequence/],
  ];
  test.each(cases)("%s", (_name, head, p, message) => {
    expect(() => buildProof(head, p, signer)).toThrow(message);
  });
});

// ---- properties -------------------------------------------------------------------------------------

const u64 = fc.bigInt({ min: 0n, max: (1n << 59n) - 1n }); // sums of up to 12 stay under 2^64
const amountsArb: fc.Arbitrary<UsageAmounts> = fc.record(Object.fromEntries(AMOUNT_FIELDS.map((f) => [f, u64])) as Record<keyof UsageAmounts, fc.Arbitrary<bigint>>);
const recordsArb: fc.Arbitrary<UsageRecord[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 2 ** 40 }), { maxLength: 12 })
  .chain((ids) =>
    fc.tuple(
      fc.constant([...ids].sort((a, b) => a - b)),
      fc.array(fc.record({ twinId: fc.integer({ min: 1, max: 6 }), firstVersion: fc.integer({ min: 1, max: 5 }), servedMs: fc.integer({ min: 0, max: HOUR }), amounts: amountsArb }), { minLength: ids.length, maxLength: ids.length }),
    ),
  )
  .map(([ids, rest]) => ids.map((deploymentId, i) => ({ deploymentId, twinId: rest[i].twinId, firstVersion: rest[i].firstVersion, lastVersion: rest[i].firstVersion + 1, servedMs: rest[i].servedMs, amounts: rest[i].amounts })));

describe("buildProof (properties, seeded)", () => {
  test("the header commits to exactly the records and the twin subtotals, and every record proves its inclusion", () => {
    fc.assert(
      fc.property(recordsArb, fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 5 }), (records, sequence, hours) => {
        const head: ProofHead = { sequence, periodEndMs: S, hash: proofHash(new Uint8Array([sequence & 0xff])) };
        const b = buildProof(head, period(records, { periodEndMs: S + hours * HOUR }), signer);
        const h = decodeProofHeader(b.headerBytes);
        expect(h.sequence).toBe(sequence + 1);
        expect(h.recordCount).toBe(records.length);
        expect(b.records.map((r) => r.deploymentId)).toEqual(records.map((r) => r.deploymentId));
        expect(b.records.map((r) => decodeRecord(r.bytes))).toEqual(records);
        b.records.forEach((r, i) => expect(verifyInclusion(r.bytes, inclusionPath(b.records.map((x) => leafHash(x.bytes)), i), h.recordsRoot)).toBe(true));
        const twins = b.twins.map(decodeTwinSubtotal);
        expect(twins.map((t) => t.twinId)).toEqual([...new Set(records.map((r) => r.twinId))].sort((x, y) => x - y));
        expect(twins.reduce((n, t) => n + t.recordCount, 0)).toBe(records.length);
        expect(twins.reduce((a, t) => addAmounts(a, t.amounts), zeroAmounts())).toEqual(h.totals);
        expect(h.twinCount).toBe(twins.length);
        expect(hex(h.twinsRoot!)).toBe(hex(twinsTree(b.twins).root));
        expect(hex(b.hash)).toBe(hex(proofHash(b.headerBytes)));
      }),
      { seed: 9002, numRuns: 150 },
    );
  });

  test("a series built head after head is contiguous and hash-chained", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(recordsArb, fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 6 }), (periods) => {
        let head: ProofHead = { sequence: 0, periodEndMs: S + 77, hash: ZERO_HASH };
        for (const [records, hours] of periods) {
          const end = (Math.floor(head.periodEndMs / HOUR) + hours) * HOUR;
          const b = buildProof(head, period(records, { periodEndMs: end }), signer);
          expect([b.header.sequence, b.header.periodStartMs, hex(b.header.previousHash)]).toEqual([head.sequence + 1, head.periodEndMs, hex(head.hash)]);
          head = headAfter(b);
        }
        expect(head.sequence).toBe(periods.length);
      }),
      { seed: 9003, numRuns: 60 },
    );
  });
});
