/**
 * The chain's rules (agent/chain/rules.ts) as tables: every refusal rule violated exactly once,
 * and the accepting cases. Pure: no sockets, no store, the clock is a number.
 */
import { GiB, TiB, type Units } from "../../agent/capacity/units";
import { CHAIN_POLICY_DEFAULTS, parseChainOptions, parseChainPolicy } from "../../agent/chain/options";
import {
  capacityBounds,
  checkProof,
  checkRegisterFarm,
  checkRegisterNode,
  checkRegisterTwin,
  initialNodeState,
  type ChainFarmRecord,
  type ChainNodeRecord,
  type CallerKey,
  type ChainTwinRecord,
  type NodeChainState,
} from "../../agent/chain/rules";
import { encodeProofHeader, proofHash, zeroAmounts, ZERO_HASH, type ProofHeader, type UsageAmounts } from "../../agent/proofs/proof";

const policy = CHAIN_POLICY_DEFAULTS;
const H = 3_600_000; // one period, ms
const T0 = 1_700_000_000_000; // the node registered here
const NOW = T0 + 3 * H + 60_000; // the chain's clock in these tests
const KEY = new Uint8Array(32).fill(7);
const OTHER = new Uint8Array(32).fill(9);

const total: Units = { cru: 8, mru: 16 * GiB, sru: 500 * GiB, hru: 2 * TiB, ipv4u: 1, gpu: 0 };

const node: ChainNodeRecord = {
  nodeId: 5,
  farmId: 2,
  twinId: 11,
  publicKey: KEY,
  scheme: "ed25519",
  total,
  registeredMs: T0,
  updatedMs: T0,
  capacityUpdatedMs: T0,
  lastCallMs: T0,
};

function amounts(p: Partial<UsageAmounts>): UsageAmounts {
  return { ...zeroAmounts(), ...p };
}

/** 2 CRU and 4 GiB for the whole hour */
const modest = amounts({ cruSeconds: 2n * 3600n, mruByteSeconds: 4n * BigInt(GiB) * 3600n });

function header(p: Partial<ProofHeader>): ProofHeader {
  return { nodeId: 5, farmId: 2, sequence: 1, periodStartMs: T0, periodEndMs: T0 + H, previousHash: ZERO_HASH, recordCount: 1, totals: modest, recordsRoot: new Uint8Array(32).fill(1), downtimeMs: 0, ...p };
}

const hashOf = (h: ProofHeader): Uint8Array => proofHash(encodeProofHeader(h));

const first = header({});
const H1 = hashOf(first);
/** the node's state after proof 1 was accepted */
const after1: NodeChainState = { lastSequence: 1, lastPeriodEndMs: T0 + H, lastHash: H1, maxCapacity: total };
const second = header({ sequence: 2, periodStartMs: T0 + H, periodEndMs: T0 + 2 * H, previousHash: H1 });
const H2 = hashOf(second);
const after2: NodeChainState = { lastSequence: 2, lastPeriodEndMs: T0 + 2 * H, lastHash: H2, maxCapacity: total };
const stored = (seq: number): Uint8Array | undefined => (seq === 1 ? H1 : seq === 2 ? H2 : undefined);

interface ProofCase {
  name: string;
  state?: NodeChainState;
  node?: ChainNodeRecord;
  header: ProofHeader;
  signerOk?: boolean;
  code: string;
  unit?: string;
}

describe("checkProof refuses", () => {
  const cases: ProofCase[] = [
    { name: "a proof not signed by the node's registered key", state: after1, header: second, signerOk: false, code: "bad_signature" },
    { name: "a proof of a node the chain does not know", state: undefined, node: undefined, header: second, code: "unknown_node" },
    { name: "a sequence beyond last + 1 (gap, sequence)", state: after1, header: { ...second, sequence: 3 }, code: "gap" },
    { name: "a period starting after the last one ended (gap, period)", state: after1, header: { ...second, periodStartMs: T0 + H + 1000 }, code: "gap" },
    { name: "a different proof for a used sequence (overlap, sequence)", state: after1, header: { ...first, totals: amounts({ cruSeconds: 1n }) }, code: "overlap" },
    { name: "a period starting before the last one ended (overlap, period)", state: after1, header: { ...second, periodStartMs: T0 + H - 1000 }, code: "overlap" },
    { name: "the last accepted proof sent again", state: after1, header: first, code: "duplicate" },
    { name: "an older accepted proof sent again", state: after2, header: first, code: "duplicate" },
    { name: "a previous hash that is not the last proof's", state: after1, header: { ...second, previousHash: new Uint8Array(32).fill(3) }, code: "hash_mismatch" },
    { name: "a first proof whose previous hash is not zero", state: undefined, header: { ...first, previousHash: H2 }, code: "hash_mismatch" },
    {
      name: "CRU beyond 4 x capacity over the period",
      state: after1,
      header: { ...second, totals: amounts({ cruSeconds: 4n * 8n * 3600n + 1n }) },
      code: "exceeds_capacity",
      unit: "cruSeconds",
    },
    {
      name: "MRU beyond 1 x capacity over the period",
      state: after1,
      header: { ...second, totals: amounts({ mruByteSeconds: 16n * BigInt(GiB) * 3600n + 1n }) },
      code: "exceeds_capacity",
      unit: "mruByteSeconds",
    },
    { name: "totals without records (malformed)", state: after1, header: { ...second, recordCount: 0 }, code: "malformed" },
    { name: "a period that ends before it starts", state: after1, header: { ...second, periodEndMs: T0 + H }, code: "malformed" },
    { name: "a period ending in the future beyond the skew", state: after1, header: { ...second, periodEndMs: NOW + policy.maxClockSkewMs + 1 }, code: "malformed" },
    { name: "a first proof starting long before the node registered", state: undefined, header: { ...first, periodStartMs: T0 - policy.firstProofLookbackMs - 1 }, code: "malformed" },
    { name: "sequence 0", state: undefined, header: { ...first, sequence: 0 }, code: "malformed" },
    { name: "a header naming another node than the record", state: after1, node: { ...node, nodeId: 6 }, header: second, code: "malformed" },
  ];
  test.each(cases)("$name -> $code", (c) => {
    const n = "node" in c ? c.node : node;
    const r = checkProof(c.state, n, c.header, hashOf(c.header), c.signerOk ?? true, NOW, policy, stored);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe(c.code);
    expect(r.message.length).toBeGreaterThan(10);
    if (c.unit) expect(r.unit).toBe(c.unit);
  });

  test("exceeds_capacity says the amount and the limit", () => {
    const h = { ...second, totals: amounts({ cruSeconds: 4n * 8n * 3600n + 1n }) };
    const r = checkProof(after1, node, h, hashOf(h), true, NOW, policy, stored);
    expect(r).toMatchObject({ ok: false, code: "exceeds_capacity", unit: "cruSeconds", requested: 115201n, allowed: 115200n });
    if (!r.ok) expect(r.message).toContain("cru_seconds 115201");
  });
});

describe("checkProof accepts", () => {
  test("a first proof (sequence 1, zero previous hash) and records its head", () => {
    const r = checkProof(undefined, node, first, H1, true, NOW, policy, stored);
    expect(r).toEqual({ ok: true, next: { lastSequence: 1, lastPeriodEndMs: T0 + H, lastHash: H1, maxCapacity: total } });
  });

  test("a first proof starting a little before the node registered (its period was aligned down)", () => {
    const h = header({ periodStartMs: T0 - 20 * 60_000 });
    expect(checkProof(initialNodeState(total), node, h, hashOf(h), true, NOW, policy).ok).toBe(true);
  });

  test("the next proof: sequence + 1, contiguous, chained by hash", () => {
    const r = checkProof(after1, node, second, H2, true, NOW, policy, stored);
    expect(r).toEqual({ ok: true, next: after2 });
  });

  test("totals exactly at the limits (CRU 4x, every other unit 1x, CU and SU bounds)", () => {
    const b = capacityBounds(total, H, policy);
    const h = { ...second, totals: amounts({ ...b, nuBytes: 1n << 50n }) };
    expect(checkProof(after1, node, h, hashOf(h), true, NOW, policy, stored).ok).toBe(true);
  });

  test("an empty period (no records, zero totals)", () => {
    const h = { ...second, recordCount: 0, totals: zeroAmounts(), recordsRoot: ZERO_HASH };
    expect(checkProof(after1, node, h, hashOf(h), true, NOW, policy, stored).ok).toBe(true);
  });

  test("capacity raised mid-period: the proof is judged against the larger capacity", () => {
    const raisedAt = T0 + H + H / 2;
    const upd = checkRegisterNode({ record: node, state: after1 }, { timestampMs: raisedAt, nodeId: 5, farmId: 2, twinId: 11, total: { ...total, cru: 16 } }, { publicKey: KEY, scheme: "ed25519" }, true, raisedAt, policy);
    expect(upd).toMatchObject({ ok: true, kind: "updated" });
    if (!upd.ok) return;
    const h = { ...second, totals: amounts({ cruSeconds: 4n * 16n * 3600n }) };
    // with the old capacity it would not fit
    expect(checkProof(after1, node, h, hashOf(h), true, NOW, policy, stored)).toMatchObject({ ok: false, code: "exceeds_capacity" });
    const r = checkProof(upd.state, upd.record, h, hashOf(h), true, NOW, policy, stored);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.next.maxCapacity.cru).toBe(16);
  });

  test("capacity lowered mid-period: the larger capacity still counts for that period, then the new one", () => {
    const loweredAt = T0 + H + H / 2;
    const upd = checkRegisterNode({ record: node, state: after1 }, { timestampMs: loweredAt, nodeId: 5, farmId: 2, twinId: 11, total: { ...total, cru: 2 } }, { publicKey: KEY, scheme: "ed25519" }, true, loweredAt, policy);
    if (!upd.ok) throw new Error(upd.message);
    expect(upd.state.maxCapacity.cru).toBe(8);
    const h = { ...second, totals: amounts({ cruSeconds: 4n * 8n * 3600n }) };
    const r = checkProof(upd.state, upd.record, h, hashOf(h), true, NOW, policy, stored);
    if (!r.ok) throw new Error(r.message);
    expect(r.next.maxCapacity.cru).toBe(2); // the change happened well before the period ended
  });

  test("a capacity change after the period ended keeps the larger capacity for the next proof", () => {
    const rec = { ...node, total: { ...total, cru: 2 }, capacityUpdatedMs: T0 + 2 * H + 1000 };
    const r = checkProof({ ...after1, maxCapacity: total }, rec, second, H2, true, NOW, policy, stored);
    if (!r.ok) throw new Error(r.message);
    expect(r.next.maxCapacity.cru).toBe(8);
  });
});

describe("capacityBounds", () => {
  test("CU bound is never below the CU of the full (overprovisioned) capacity", () => {
    // CU = min(max(MRU/4, CRU/2), max(MRU/8, CRU), max(MRU/2, CRU/4)), MRU in GB (GRID.md)
    const cu = (c: number, m: number): number => Math.min(Math.max(m / 4, c / 2), Math.max(m / 8, c), Math.max(m / 2, c / 4));
    for (const [c, m] of [[8, 16], [1, 64], [64, 1], [0, 0], [32, 256], [4, 4]]) {
      const b = capacityBounds({ cru: c, mru: m * GiB, sru: 0, hru: 0, ipv4u: 0, gpu: 0 }, H, policy);
      expect(Number(b.cuMicroHours)).toBeGreaterThanOrEqual(Math.floor(cu(4 * c, m) * 1e6));
    }
  });

  test("SU bound is the SU of the capacity: HRU/1200 + SRU/200 per hour", () => {
    const b = capacityBounds({ cru: 0, mru: 0, sru: 200 * GiB, hru: 1200 * GiB, ipv4u: 0, gpu: 0 }, H, policy);
    expect(b.suMicroHours).toBe(2_000_000n);
  });
});

describe("checkRegisterTwin / checkRegisterNode", () => {
  const me: CallerKey = { publicKey: KEY, scheme: "ed25519" };
  const twin: ChainTwinRecord = { twinId: 11, publicKey: KEY, scheme: "ed25519", registeredMs: T0, updatedMs: T0, lastCallMs: NOW - 10 };
  const existing = { record: { ...node, lastCallMs: NOW - 10 }, state: after1 };
  const call = { timestampMs: NOW, nodeId: 5, farmId: 2, twinId: 11, total };

  const twinCases: Array<{ name: string; existing?: ChainTwinRecord; call: { timestampMs: number; twinId: number }; signer?: typeof me; signerOk?: boolean; code: string }> = [
    { name: "first registration", existing: undefined, call: { timestampMs: NOW, twinId: 11 }, code: "registered" },
    { name: "the same key again", existing: twin, call: { timestampMs: NOW, twinId: 11 }, code: "unchanged" },
    { name: "another key", existing: twin, call: { timestampMs: NOW, twinId: 11 }, signer: { publicKey: OTHER, scheme: "ed25519" }, code: "unauthorized" },
    { name: "the same key under another scheme", existing: twin, call: { timestampMs: NOW, twinId: 11 }, signer: { publicKey: KEY, scheme: "sr25519" }, code: "unauthorized" },
    { name: "a replayed call", existing: twin, call: { timestampMs: NOW - 10, twinId: 11 }, code: "stale_request" },
    { name: "a call from a clock far behind", existing: undefined, call: { timestampMs: NOW - policy.maxClockSkewMs - 1, twinId: 11 }, code: "stale_request" },
    { name: "a call from a clock far ahead", existing: undefined, call: { timestampMs: NOW + policy.maxClockSkewMs + 1, twinId: 11 }, code: "stale_request" },
    { name: "twin id 0", existing: undefined, call: { timestampMs: NOW, twinId: 0 }, code: "malformed" },
    { name: "a bad signature", existing: undefined, call: { timestampMs: NOW, twinId: 11 }, signerOk: false, code: "bad_signature" },
  ];
  test.each(twinCases)("twin: $name -> $code", (c) => {
    const r = checkRegisterTwin(c.existing, c.call, c.signer ?? me, c.signerOk ?? true, NOW, policy);
    expect(r.ok ? r.kind : r.code).toBe(c.code);
    if (r.ok) expect(r.record.lastCallMs).toBe(c.call.timestampMs);
  });

  const strict = { ...policy, requireFarm: true };
  const farm2: ChainFarmRecord = { farmId: 2, twinId: 11, name: "", registeredMs: T0, updatedMs: T0, lastCallMs: T0 };
  const nodeCases: Array<{
    name: string;
    existing?: typeof existing;
    call: Parameters<typeof checkRegisterNode>[1];
    signer?: typeof me;
    signerOk?: boolean;
    policy?: typeof policy;
    farm?: ChainFarmRecord;
    code: string;
  }> = [
    { name: "first registration", existing: undefined, call, code: "registered" },
    { name: "the same record again", existing, call, code: "unchanged" },
    { name: "a new farm", existing, call: { ...call, farmId: 3 }, code: "updated" },
    { name: "a twin that is not registered (lenient)", existing: undefined, call: { ...call, twinId: 999 }, code: "registered" },
    { name: "another key", existing, call, signer: { publicKey: OTHER, scheme: "ed25519" }, code: "unauthorized" },
    { name: "a replayed call", existing, call: { ...call, timestampMs: NOW - 10 }, code: "stale_request" },
    { name: "a stale clock", existing: undefined, call: { ...call, timestampMs: NOW - 2 * policy.maxClockSkewMs }, code: "stale_request" },
    { name: "no capacity", existing: undefined, call: { ...call, total: undefined }, code: "malformed" },
    { name: "node id 0", existing: undefined, call: { ...call, nodeId: 0 }, code: "malformed" },
    { name: "farm id 0", existing: undefined, call: { ...call, farmId: 0 }, code: "malformed" },
    { name: "a bad signature", existing: undefined, call, signerOk: false, code: "bad_signature" },
    // requireFarm
    { name: "a farm that is not registered, requireFarm off (the default)", existing: undefined, call, farm: undefined, code: "registered" },
    { name: "a farm that is not registered, requireFarm on", existing: undefined, call, policy: strict, farm: undefined, code: "unknown_farm" },
    { name: "a registered farm, requireFarm on", existing: undefined, call, policy: strict, farm: farm2, code: "registered" },
    { name: "a move to a farm that is not registered, requireFarm on", existing, call: { ...call, farmId: 3 }, policy: strict, farm: undefined, code: "unknown_farm" },
    { name: "a re-registration in a farm that is not registered, requireFarm on", existing, call, policy: strict, farm: undefined, code: "unknown_farm" },
    { name: "a re-registration in a registered farm, requireFarm on", existing, call, policy: strict, farm: farm2, code: "unchanged" },
    { name: "another farm's record given for the call's farm, requireFarm on", existing: undefined, call: { ...call, farmId: 3 }, policy: strict, farm: farm2, code: "unknown_farm" },
    { name: "another key in a farm that is not registered, requireFarm on (the key is judged first)", existing, call, signer: { publicKey: OTHER, scheme: "ed25519" }, policy: strict, code: "unauthorized" },
    { name: "a replay in a farm that is not registered, requireFarm on (the timestamp is judged first)", existing, call: { ...call, timestampMs: NOW - 10 }, policy: strict, code: "stale_request" },
  ];
  test.each(nodeCases)("node: $name -> $code", (c) => {
    const r = checkRegisterNode(c.existing, c.call, c.signer ?? me, c.signerOk ?? true, NOW, c.policy ?? policy, c.farm);
    expect(r.ok ? r.kind : r.code).toBe(c.code);
  });

  test("a first registration binds the key and starts an empty proof chain", () => {
    const r = checkRegisterNode(undefined, call, me, true, NOW, policy);
    expect(r).toMatchObject({ ok: true, kind: "registered", record: { nodeId: 5, farmId: 2, twinId: 11, publicKey: KEY, registeredMs: NOW, capacityUpdatedMs: NOW, lastCallMs: NOW }, state: { lastSequence: 0, lastHash: ZERO_HASH, maxCapacity: total } });
  });
});

describe("checkRegisterFarm", () => {
  const me: CallerKey = { publicKey: KEY, scheme: "ed25519" };
  /** the owner twin 11, registered with KEY; twin 12 with OTHER */
  const owner: ChainTwinRecord = { twinId: 11, publicKey: KEY, scheme: "ed25519", registeredMs: T0, updatedMs: T0, lastCallMs: T0 };
  const otherTwin: ChainTwinRecord = { twinId: 12, publicKey: OTHER, scheme: "ed25519", registeredMs: T0, updatedMs: T0, lastCallMs: T0 };
  const farm: ChainFarmRecord = { farmId: 2, twinId: 11, name: "freefarm", registeredMs: T0, updatedMs: T0, lastCallMs: NOW - 10 };
  const call = { timestampMs: NOW, farmId: 2, twinId: 11, name: "freefarm" };

  const cases: Array<{ name: string; existing?: ChainFarmRecord; twin?: ChainTwinRecord; call: Parameters<typeof checkRegisterFarm>[2]; signer?: CallerKey; signerOk?: boolean; code: string }> = [
    // accepted
    { name: "first registration by the owner twin's key", existing: undefined, twin: owner, call, code: "registered" },
    { name: "first registration without a name", existing: undefined, twin: owner, call: { ...call, name: "" }, code: "registered" },
    { name: "a name of 64 characters (multi-byte ones count once)", existing: undefined, twin: owner, call: { ...call, name: "ферма-".repeat(10) + "🌱🌱🌱🌱" }, code: "registered" },
    { name: "the same call again, later", existing: farm, twin: owner, call, code: "unchanged" },
    { name: "a later call without a name (keeps the name)", existing: farm, twin: owner, call: { ...call, name: "" }, code: "unchanged" },
    { name: "a rename by the owner", existing: farm, twin: owner, call: { ...call, name: "freefarm 2" }, code: "renamed" },
    { name: "an sr25519 owner twin", existing: undefined, twin: { ...owner, scheme: "sr25519" }, call, signer: { publicKey: KEY, scheme: "sr25519" }, code: "registered" },
    // refused
    { name: "an envelope whose signature does not verify", existing: undefined, twin: owner, call, signerOk: false, code: "bad_signature" },
    { name: "a twin that is not registered", existing: undefined, twin: undefined, call, code: "unauthorized" },
    { name: "another twin's record given for the call's twin", existing: undefined, twin: otherTwin, call, code: "unauthorized" },
    { name: "signed by another key than the twin's", existing: undefined, twin: owner, call, signer: { publicKey: OTHER, scheme: "ed25519" }, code: "bad_signature" },
    { name: "signed by the twin's key under another scheme", existing: undefined, twin: owner, call, signer: { publicKey: KEY, scheme: "sr25519" }, code: "bad_signature" },
    { name: "a rename by another (registered) twin", existing: farm, twin: otherTwin, call: { ...call, twinId: 12, name: "mine now" }, signer: { publicKey: OTHER, scheme: "ed25519" }, code: "unauthorized" },
    { name: "a re-registration naming another owner", existing: farm, twin: otherTwin, call: { ...call, twinId: 12 }, signer: { publicKey: OTHER, scheme: "ed25519" }, code: "unauthorized" },
    { name: "a replayed call", existing: farm, twin: owner, call: { ...call, timestampMs: NOW - 10 }, code: "stale_request" },
    { name: "a call from a clock far behind", existing: undefined, twin: owner, call: { ...call, timestampMs: NOW - policy.maxClockSkewMs - 1 }, code: "stale_request" },
    { name: "a call from a clock far ahead", existing: undefined, twin: owner, call: { ...call, timestampMs: NOW + policy.maxClockSkewMs + 1 }, code: "stale_request" },
    { name: "a name of 65 characters", existing: undefined, twin: owner, call: { ...call, name: "f".repeat(65) }, code: "malformed" },
    { name: "a name with a newline", existing: undefined, twin: owner, call: { ...call, name: "free\nfarm" }, code: "malformed" },
    { name: "a name with a NUL", existing: undefined, twin: owner, call: { ...call, name: "free\u0000farm" }, code: "malformed" },
    { name: "a name with a zero-width (format) character", existing: undefined, twin: owner, call: { ...call, name: "free\u200bfarm" }, code: "malformed" },
    { name: "a rename to a name that is not printable", existing: farm, twin: owner, call: { ...call, name: "\u001b[31mred" }, code: "malformed" },
    { name: "farm id 0", existing: undefined, twin: owner, call: { ...call, farmId: 0 }, code: "malformed" },
    { name: "twin id 0", existing: undefined, twin: owner, call: { ...call, twinId: 0 }, code: "malformed" },
  ];
  test.each(cases)("$name -> $code", (c) => {
    const r = checkRegisterFarm(c.existing, c.twin, c.call, c.signer ?? me, c.signerOk ?? true, NOW, policy);
    expect(r.ok ? r.kind : r.code).toBe(c.code);
    if (r.ok) expect(r.record.lastCallMs).toBe(c.call.timestampMs);
    else expect(r.message.length).toBeGreaterThan(10);
  });

  test("a first registration binds the farm to the twin; a rename keeps owner and registration time", () => {
    const r = checkRegisterFarm(undefined, owner, call, me, true, NOW, policy);
    expect(r).toEqual({ ok: true, kind: "registered", record: { farmId: 2, twinId: 11, name: "freefarm", registeredMs: NOW, updatedMs: NOW, lastCallMs: NOW } });
    const later = NOW + 1000;
    const renamed = checkRegisterFarm(farm, owner, { ...call, timestampMs: later, name: "greenfarm" }, me, true, later, policy);
    expect(renamed).toEqual({ ok: true, kind: "renamed", record: { ...farm, name: "greenfarm", updatedMs: later, lastCallMs: later } });
    const kept = checkRegisterFarm(farm, owner, { ...call, timestampMs: later, name: "" }, me, true, later, policy);
    expect(kept).toEqual({ ok: true, kind: "unchanged", record: { ...farm, lastCallMs: later } });
  });

  test("an unknown twin is told to register the twin first", () => {
    const r = checkRegisterFarm(undefined, undefined, call, me, true, NOW, policy);
    expect(r).toMatchObject({ ok: false, code: "unauthorized" });
    if (!r.ok) expect(r.message).toMatch(/register the twin first/);
  });
});

describe("options", () => {
  test("defaults: CRU overprovision 4, others 1", () => {
    expect(parseChainPolicy().overprovision).toEqual({ cru: 4, mru: 1, sru: 1, hru: 1, ipv4u: 1, gpu: 1 });
    expect(parseChainOptions().maxProofsPerQuery).toBe(1000);
    expect(parseChainPolicy().requireFarm).toBe(false);
    expect(parseChainOptions({ policy: { requireFarm: true } }).policy.requireFarm).toBe(true);
  });
  test.each([
    [{ policy: { maxClockSkewMs: -1 } }, "chain.policy.maxClockSkewMs"],
    [{ policy: { overprovision: { cru: 0 } } }, "chain.policy.overprovision.cru"],
    [{ maxProofsPerQuery: 1001 }, "chain.maxProofsPerQuery"],
    [{ maxRequestBytes: 10 }, "chain.maxRequestBytes"],
    [{ policy: { requireFarm: "yes" } }, "chain.policy.requireFarm"],
  ])("a bad option names its field: %j", (raw, field) => {
    expect(() => parseChainOptions(raw as Parameters<typeof parseChainOptions>[0])).toThrow(expect.objectContaining({ code: "invalid_options", field }));
  });
});
