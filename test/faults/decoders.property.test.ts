/**
 * Fault suite, "fuzz" part 1: property tests (fast-check) of the pure decoders every untrusted
 * byte goes through. Properties: they never throw anything but the module's typed error (or return
 * a typed refusal), they enforce their limits before work, and they never accept a message whose
 * content differs from what was signed or encoded. FAULT_MODE=full runs 100,000 inputs per
 * property, those that sign and verify included; quick mode (CI) 500, and 300 or fewer for the
 * properties that sign or verify (FAULT_RUNS overrides the 500 and 100,000).
 */
import fc from "fast-check";
import { parseDeployment, specToWire } from "../../agent/admission/spec";
import { decodeAnnouncementPayload, decodeFindRequest, encodeAnnouncement, type Announcement } from "../../agent/gossip/wire";
import { DOMAIN, type Domain } from "../../agent/identity/domains";
import { open, seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { AMOUNT_FIELDS, decodeProofHeader, decodeRecord, encodeProofHeader, type ProofHeader } from "../../agent/proofs/proof";
import { decode, encode, strictEncodingProblem, WireError, type MessageName } from "../../agent/wire/codec";
import { faultMode } from "./mode";
import { recordFigures } from "./report";

const RUNS = Number(process.env.FAULT_RUNS ?? (faultMode() === "full" ? 100_000 : 500));
// properties that sign or verify cost ~ms a run: in quick mode they run fewer (CI time)
const FULL = faultMode() === "full";
const SIGNED_RUNS = FULL ? RUNS : Math.max(300, RUNS / 10);
/** runs of the property that signs with the sr25519 key (~8 ms a run: see that test) */
const SR25519_RUNS = FULL ? RUNS / 10 : Math.max(100, SIGNED_RUNS / 5);
/** quick mode caps some properties further; full mode runs every property RUNS times */
const quickCap = (runs: number): number => (FULL ? RUNS : runs);
// 100,000 runs of a signing property take minutes
if (FULL || process.env.FAULT_RUNS) jest.setTimeout(30 * 60_000);
/** wall and CPU seconds each property test took, in file order (the machine may be shared) */
const seconds: number[] = [];
const cpuSeconds: number[] = [];
let t0 = 0;
let c0 = process.cpuUsage();
beforeEach(() => {
  t0 = Date.now();
  c0 = process.cpuUsage();
});
afterEach(() => {
  const c = process.cpuUsage(c0);
  seconds.push(+((Date.now() - t0) / 1000).toFixed(1));
  cpuSeconds.push(+((c.user + c.system) / 1e6).toFixed(1));
});

let properties = 0;
afterEach(() => void properties++);
afterAll(() => recordFigures("fuzz-decoders", { tests: properties, runsPerProperty: RUNS, runsPerSignedProperty: SIGNED_RUNS, runsSr25519SignVerify: SR25519_RUNS, secondsPerTest: seconds.join(" "), cpuSecondsPerTest: cpuSeconds.join(" "), decoders: "codec.decode, envelope.open, spec.parseDeployment, proof header/record, announcement/find/sync" }));

let signer: Signer;
let other: Signer;
beforeAll(async () => {
  await cryptoReady();
  signer = signerFromSeed("ed25519", new Uint8Array(32).fill(7));
  other = signerFromSeed("sr25519", new Uint8Array(32).fill(9));
});

/** Run `fn`; a WireError is an expected refusal; anything else thrown fails the property. */
function onlyWireError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof WireError) {
      expect(["malformed", "too_large"]).toContain(err.code);
      return;
    }
    throw err;
  }
}

/** A mutation of bytes: bit flips, truncation, extension, a repeated slice. */
const mutated = (base: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.array(fc.nat({ max: base.length * 8 - 1 }), { minLength: 1, maxLength: 4 }).map((bits) => {
      const b = Uint8Array.from(base);
      for (const bit of bits) b[bit >> 3] ^= 1 << (bit & 7);
      return b;
    }),
    fc.nat({ max: base.length - 1 }).map((n) => base.slice(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => Uint8Array.from([...base, ...tail])),
    fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 2, max: 50 })).map(([at, times]) => {
      const slice = base.slice(at, Math.min(base.length, at + 8));
      return Uint8Array.from([...base.slice(0, at), ...Array.from({ length: times }, () => [...slice]).flat(), ...base.slice(at)]);
    }),
  );

const DECODED_TYPES: MessageName[] = ["Signed", "Deployment", "DeployRequest", "DeleteRequest", "StatusRequest", "GetRequest", "CapacityAnnouncement", "FindRequest", "SyncRequest", "UsageProof", "UsageRecord", "UsageAuditRequest"];

test("decode: random bytes give a value or a WireError, never another exception", () => {
  fc.assert(
    fc.property(fc.constantFrom(...DECODED_TYPES), fc.uint8Array({ maxLength: 512 }), (type, bytes) => {
      onlyWireError(() => decode(type, bytes, { maxBytes: 4096, maxRepeated: 16 }));
    }),
    { numRuns: RUNS },
  );
});

test("decode: the size limit is checked before parsing, and repeated fields over the limit are refused", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 65, maxLength: 300 }), (bytes) => {
      expect(() => decode("Signed", bytes, { maxBytes: 64 })).toThrow(expect.objectContaining({ code: "too_large" }));
    }),
    { numRuns: quickCap(Math.min(RUNS, 5000)) },
  );
  // huge repeated fields: n workloads against a limit of 16, every n from 0 to 200 (the whole
  // domain once: sampling it 100,000 times at ~1 ms a run would only repeat these 201 cases)
  for (let n = 0; n <= 200; n++) {
    const bytes = encode("Deployment", { id: 1, twinId: 1, version: 1, workloads: Array.from({ length: n }, (_, i) => ({ name: `w${i}`, type: "network" })) });
    if (n > 16) expect(() => decode("Deployment", bytes, { maxBytes: 1 << 20, maxRepeated: 16 })).toThrow(expect.objectContaining({ code: "too_large" }));
    else expect(decode("Deployment", bytes, { maxBytes: 1 << 20, maxRepeated: 16 }).workloads).toHaveLength(n);
  }
});

test("decode: a strict encoding re-encodes to a message that decodes to the same value", () => {
  fc.assert(
    fc.property(fc.constantFrom("GetRequest", "StatusRequest", "SyncRequest", "UsageAuditRequest", "DeleteRequest"), fc.uint8Array({ maxLength: 64 }), (type, bytes) => {
      let v: object;
      try {
        v = decode(type, bytes, { maxBytes: 4096, maxRepeated: 16 });
      } catch (err) {
        if (err instanceof WireError) return;
        throw err;
      }
      if (strictEncodingProblem(type, bytes) !== undefined) return;
      expect(decode(type, encode(type, v))).toEqual(v);
    }),
    { numRuns: RUNS },
  );
});

const DOMAINS = Object.values(DOMAIN) as Domain[];

test("open: random and mutated envelopes are refused with a code; what opens carries exactly the signed payload and key", () => {
  const payload = encode("Deployment", { id: 42, twinId: 7, version: 3, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: 1 << 30, rootfs: 2 << 30 }] });
  const sealed = seal(signer, DOMAIN.Deployment, payload);
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(sealed)), (bytes) => {
      const r = open(bytes, DOMAIN.Deployment);
      if (!r.ok) {
        expect(["malformed", "too_large", "bad_signature"]).toContain(r.refusal.code);
        return;
      }
      // a flip in an unknown-field tag may still open: then it must be the very message signed
      expect(Buffer.from(r.value.payload).equals(Buffer.from(payload))).toBe(true);
      expect(Buffer.from(r.value.signer).equals(Buffer.from(signer.publicKey))).toBe(true);
    }),
    { numRuns: SIGNED_RUNS },
  );
});

test("open: a signature under one domain tag never opens under another; another key's signature never claims this key", () => {
  // Each run signs once and verifies twice. With the ed25519 key that is ~0.35 ms (node's native
  // crypto); with the sr25519 key ~8 ms (@polkadot/wasm-crypto on this machine: sign 1.5 ms,
  // verify 3.2 ms, and the forgery is verified as sr25519 too): 100,000 sr25519 runs would be
  // ~13 min of CPU, more than every other property here together. So: RUNS with the ed25519 key,
  // a tenth of that with the sr25519 key (10,000 in full mode); the domain check in open() is
  // the same code for both schemes.
  const property = (swapKey: boolean): fc.IPropertyWithHooks<[Uint8Array, Domain, Domain]> =>
    fc.property(fc.uint8Array({ maxLength: 128 }), fc.constantFrom(...DOMAINS), fc.constantFrom(...DOMAINS), (payload, signedAs, openedAs) => {
      const s = swapKey ? other : signer;
      const sealed = seal(s, signedAs, payload);
      const r = open(sealed, openedAs);
      expect(r.ok).toBe(signedAs === openedAs);
      if (r.ok) expect(Buffer.from(r.value.signer).equals(Buffer.from(s.publicKey))).toBe(true);
      // wrong key: replace the signer field with the other key's public key
      const w = decode("Signed", sealed);
      const forged = encode("Signed", { ...w, signer: (swapKey ? signer : other).publicKey });
      expect(open(forged, signedAs).ok).toBe(false);
    });
  fc.assert(property(false), { numRuns: quickCap(Math.max(100, SIGNED_RUNS / 5)) });
  fc.assert(property(true), { numRuns: SR25519_RUNS });
});

test("parseDeployment: any JSON value gives a spec or an invalid_spec with a path, never an exception; an accepted spec re-parses to itself", () => {
  const workload = fc.record(
    {
      name: fc.oneof(fc.string({ maxLength: 12 }), fc.constant("vm")),
      type: fc.constantFrom("zmachine", "zmount", "network", "ipv4", "qsfs", "zdb", "gpu", "bogus"),
      cpu: fc.oneof(fc.integer({ min: -2, max: 40 }), fc.constant("2")),
      memory: fc.oneof(fc.constantFrom("1GiB", "4GiB", "1GB", "1 GiB", "-1GiB"), fc.nat()),
      rootfs: fc.constantFrom("2GiB", "10GiB", "0"),
      size: fc.constantFrom("10GiB", "1TiB", "x"),
    },
    { requiredKeys: ["name", "type"] },
  );
  const deployment = fc.record(
    {
      id: fc.oneof(fc.integer({ min: -1, max: 100 }), fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.string()),
      twinId: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constant(2 ** 32)),
      version: fc.integer({ min: -1, max: 3 }),
      workloads: fc.array(workload, { maxLength: 4 }),
      description: fc.string({ maxLength: 20 }),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(fc.oneof(deployment, fc.anything()), (raw) => {
      const r = parseDeployment(raw);
      if (!r.ok) {
        expect(r.refusal.code).toBe("invalid_spec");
        expect(typeof r.refusal.path).toBe("string");
        return;
      }
      const again = parseDeployment(specToWire(r.value));
      expect(again).toEqual({ ok: true, value: r.value });
    }),
    { numRuns: RUNS },
  );
});

const amounts = fc.record(Object.fromEntries(AMOUNT_FIELDS.map((f) => [f, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })])) as Record<(typeof AMOUNT_FIELDS)[number], fc.Arbitrary<bigint>>);
const safe = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const proofHeader: fc.Arbitrary<ProofHeader> = fc.record({
  nodeId: fc.nat({ max: 2 ** 32 - 1 }),
  farmId: fc.nat({ max: 2 ** 32 - 1 }),
  sequence: safe,
  periodStartMs: safe,
  periodEndMs: safe,
  previousHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  recordCount: fc.nat({ max: 2 ** 32 - 1 }),
  totals: amounts,
  recordsRoot: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  downtimeMs: safe,
});

test("proofs: headers round-trip exactly; random and mutated header and record bytes give a header or a WireError", () => {
  fc.assert(
    fc.property(proofHeader, (h) => {
      expect(decodeProofHeader(encodeProofHeader(h))).toEqual(h);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(proofHeader.chain((h) => fc.oneof(mutated(encodeProofHeader(h)), fc.uint8Array({ maxLength: 1500 }))), (bytes) => {
      onlyWireError(() => {
        const h = decodeProofHeader(bytes);
        // what decodes has the shapes the rules rely on
        expect(h.previousHash).toHaveLength(32);
        expect(h.recordsRoot).toHaveLength(32);
        expect(Number.isSafeInteger(h.sequence)).toBe(true);
      });
      onlyWireError(() => decodeRecord(bytes));
    }),
    { numRuns: RUNS },
  );
});

test("gossip: announcement, find and sync decoders give a value or a WireError on random and mutated bytes", () => {
  const units = { cru: 8, mru: 16 << 30, sru: 512 << 20, hru: 0, ipv4u: 1, gpu: 0 };
  const a: Announcement = { nodeId: 1, farmId: 1, twinId: 3, sequence: 5, timestampMs: Date.now(), total: units, reserved: units, reservable: units, used: units, free: units, deployments: 2, power: "up", heartbeatMs: 30_000, agentVersion: "0.1.0" };
  const base = encodeAnnouncement(a);
  expect(decodeAnnouncementPayload(base, 4096)).toMatchObject({ sequence: 5, nodeId: 1 });
  fc.assert(
    fc.property(fc.oneof(mutated(base), fc.uint8Array({ maxLength: 400 })), (bytes) => {
      onlyWireError(() => {
        const d = decodeAnnouncementPayload(bytes, 4096);
        expect(d.sequence).toBeGreaterThanOrEqual(1);
        expect(d.nodeId).toBeGreaterThanOrEqual(1);
      });
      onlyWireError(() => decodeFindRequest(bytes));
    }),
    { numRuns: RUNS },
  );
});
