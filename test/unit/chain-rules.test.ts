/**
 * The chain's rules (agent/authority/rules.ts) as tables: every refusal rule violated exactly once,
 * and the accepting cases. Pure: no sockets, no store, the clock is a number.
 */
import { GiB, TiB, type Units } from "../../agent/capacity/units";
import { RegistrationLimiter } from "../../agent/authority/limits";
import { CHAIN_POLICY_DEFAULTS, parseChainLimits, parseChainOptions, parseChainPolicy } from "../../agent/authority/options";
import {
  capacityBounds,
  checkProof,
  checkRegisterFarm,
  checkRegisterNode,
  checkRegisterTwin,
  farmAdmits,
  initialNodeState,
  type ChainFarmRecord,
  type ChainNodeRecord,
  type CallerKey,
  type ChainTwinRecord,
  type NodeChainState,
} from "../../agent/authority/rules";
import { encodeProofHeader, proofHash, zeroAmounts, ZERO_HASH, type ProofHeader, type UsageAmounts } from "../../agent/proofs/proof";

const policy = CHAIN_POLICY_DEFAULTS;
const H = 3_600_000; // one period, ms
const T0 = 1_700_000_000_000; // the node registered here
const NOW = T0 + 3 * H + 60_000; // the chain's clock in these tests
const KEY = new Uint8Array(32).fill(7);
const OTHER = new Uint8Array(32).fill(9);

const total: Units = { cru: 8, mru: 16 * GiB, sru: 500 * GiB, hru: 2 * TiB, ipv4u: 1, gpu: 0 };

/** twin 11, bound to KEY: node 5's twin */
const TWIN11: ChainTwinRecord = { twinId: 11, publicKey: KEY, scheme: "ed25519", registeredMs: T0, updatedMs: T0, lastCallMs: T0 };

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
    expect(r.refusal.code).toBe(c.code);
    expect(r.refusal.message.length).toBeGreaterThan(10);
    if (c.unit) expect(r.refusal.unit).toBe(c.unit);
  });

  test("exceeds_capacity says the amount and the limit", () => {
    const h = { ...second, totals: amounts({ cruSeconds: 4n * 8n * 3600n + 1n }) };
    const r = checkProof(after1, node, h, hashOf(h), true, NOW, policy, stored);
    expect(r).toMatchObject({ ok: false, refusal: { code: "exceeds_capacity", unit: "cruSeconds", requested: 115201n, allowed: 115200n } });
    if (!r.ok) expect(r.refusal.message).toContain("cru_seconds 115201");
  });
});

describe("checkProof accepts", () => {
  test("a first proof (sequence 1, zero previous hash) and records its head", () => {
    const r = checkProof(undefined, node, first, H1, true, NOW, policy, stored);
    expect(r).toEqual({ ok: true, value: { lastSequence: 1, lastPeriodEndMs: T0 + H, lastHash: H1, maxCapacity: total } });
  });

  test("a first proof starting a little before the node registered (its period was aligned down)", () => {
    const h = header({ periodStartMs: T0 - 20 * 60_000 });
    expect(checkProof(initialNodeState(total), node, h, hashOf(h), true, NOW, policy).ok).toBe(true);
  });

  test("the next proof: sequence + 1, contiguous, chained by hash", () => {
    const r = checkProof(after1, node, second, H2, true, NOW, policy, stored);
    expect(r).toEqual({ ok: true, value: after2 });
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
    const upd = checkRegisterNode({ twin: TWIN11, mine: { record: node, state: after1 }, farm: undefined, nextId: 6 }, { timestampMs: raisedAt, nodeId: 5, farmId: 2, twinId: 11, total: { ...total, cru: 16 } }, { publicKey: KEY, scheme: "ed25519" }, raisedAt, policy);
    expect(upd).toMatchObject({ ok: true, value: { kind: "updated" } });
    if (!upd.ok) return;
    const h = { ...second, totals: amounts({ cruSeconds: 4n * 16n * 3600n }) };
    // with the old capacity it would not fit
    expect(checkProof(after1, node, h, hashOf(h), true, NOW, policy, stored)).toMatchObject({ ok: false, refusal: { code: "exceeds_capacity" } });
    const r = checkProof(upd.value.state, upd.value.record, h, hashOf(h), true, NOW, policy, stored);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value.maxCapacity.cru).toBe(16);
  });

  test("capacity lowered mid-period: the larger capacity still counts for that period, then the new one", () => {
    const loweredAt = T0 + H + H / 2;
    const upd = checkRegisterNode({ twin: TWIN11, mine: { record: node, state: after1 }, farm: undefined, nextId: 6 }, { timestampMs: loweredAt, nodeId: 5, farmId: 2, twinId: 11, total: { ...total, cru: 2 } }, { publicKey: KEY, scheme: "ed25519" }, loweredAt, policy);
    if (!upd.ok) throw new Error(upd.refusal.message);
    expect(upd.value.state.maxCapacity.cru).toBe(8);
    const h = { ...second, totals: amounts({ cruSeconds: 4n * 8n * 3600n }) };
    const r = checkProof(upd.value.state, upd.value.record, h, hashOf(h), true, NOW, policy, stored);
    if (!r.ok) throw new Error(r.refusal.message);
    expect(r.value.maxCapacity.cru).toBe(2); // the change happened well before the period ended
  });

  test("a capacity change after the period ended keeps the larger capacity for the next proof", () => {
    const rec = { ...node, total: { ...total, cru: 2 }, capacityUpdatedMs: T0 + 2 * H + 1000 };
    const r = checkProof({ ...after1, maxCapacity: total }, rec, second, H2, true, NOW, policy, stored);
    if (!r.ok) throw new Error(r.refusal.message);
    expect(r.value.maxCapacity.cru).toBe(8);
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

describe("checkRegisterTwin / checkRegisterNode: the chain assigns ids and binds them to keys", () => {
  const me: CallerKey = { publicKey: KEY, scheme: "ed25519" };
  const squatter: CallerKey = { publicKey: OTHER, scheme: "ed25519" };
  const twin: ChainTwinRecord = { ...TWIN11, lastCallMs: NOW - 10 };
  const mine = { record: { ...node, lastCallMs: NOW - 10 }, state: after1 };
  const call = { timestampMs: NOW, nodeId: 0, farmId: 2, twinId: 0, total };

  // `mine`: the twin the chain binds to the signer's key (undefined: none); new twins get id 12
  const twinCases: Array<{ name: string; mine?: ChainTwinRecord; call: { timestampMs: number; twinId: number }; signer?: CallerKey; code: string; id?: number }> = [
    { name: "a new key, twin_id 0: the chain assigns the next id", call: { timestampMs: NOW, twinId: 0 }, code: "registered", id: 12 },
    { name: "a key that has a twin, twin_id 0: gets it back", mine: twin, call: { timestampMs: NOW, twinId: 0 }, code: "unchanged", id: 11 },
    { name: "a key that has a twin, naming it", mine: twin, call: { timestampMs: NOW, twinId: 11 }, code: "unchanged", id: 11 },
    { name: "a new key choosing an id (squatting twin 103)", call: { timestampMs: NOW, twinId: 103 }, code: "unauthorized" },
    { name: "a new key naming another key's twin", call: { timestampMs: NOW, twinId: 11 }, signer: squatter, code: "unauthorized" },
    { name: "a key that has a twin naming another id", mine: twin, call: { timestampMs: NOW, twinId: 7 }, code: "unauthorized" },
    { name: "a twin record of another key given (never taken as the signer's)", mine: twin, call: { timestampMs: NOW, twinId: 0 }, signer: squatter, code: "unauthorized" },
    { name: "the same key under another scheme", mine: twin, call: { timestampMs: NOW, twinId: 0 }, signer: { publicKey: KEY, scheme: "sr25519" }, code: "unauthorized" },
    { name: "a replayed call", mine: twin, call: { timestampMs: NOW - 10, twinId: 0 }, code: "stale_request" },
    { name: "a call from a clock far behind", call: { timestampMs: NOW - policy.maxClockSkewMs - 1, twinId: 0 }, code: "stale_request" },
    { name: "a call from a clock far ahead", call: { timestampMs: NOW + policy.maxClockSkewMs + 1, twinId: 0 }, code: "stale_request" },
    { name: "a twin id above u32", call: { timestampMs: NOW, twinId: 2 ** 32 }, code: "malformed" },
  ];
  test.each(twinCases)("twin: $name -> $code", (c) => {
    const r = checkRegisterTwin(c.mine, c.call, c.signer ?? me, NOW, policy, 12);
    expect(r.ok ? r.value.kind : r.refusal.code).toBe(c.code);
    if (r.ok) {
      expect(r.value.record.lastCallMs).toBe(c.call.timestampMs);
      expect(r.value.record.twinId).toBe(c.id);
      expect(r.value.record.publicKey).toEqual((c.signer ?? me).publicKey);
    } else {
      expect(r.refusal.message.length).toBeGreaterThan(10);
    }
  });

  const strict = { ...policy, requireFarm: true };
  const closedOwn: ChainFarmRecord = { farmId: 2, twinId: 11, name: "own", open: false, allowedTwins: [], registeredMs: T0, updatedMs: T0, lastCallMs: T0 };
  const closedOther: ChainFarmRecord = { ...closedOwn, farmId: 3, twinId: 40, name: "other" };
  const openOther: ChainFarmRecord = { ...closedOther, open: true };
  const allowing: ChainFarmRecord = { ...closedOther, allowedTwins: [5, 11] };
  const nodeCases: Array<{
    name: string;
    twin?: ChainTwinRecord;
    mine?: typeof mine;
    farm?: ChainFarmRecord;
    call: Parameters<typeof checkRegisterNode>[1];
    signer?: CallerKey;
    policy?: typeof policy;
    code: string;
    id?: number;
  }> = [
    { name: "first registration, node_id 0: the chain assigns the next id", twin, call, code: "registered", id: 6 },
    { name: "the twin's node again, node_id 0", twin, mine, call, code: "unchanged", id: 5 },
    { name: "the twin's node again, naming its id and twin", twin, mine, call: { ...call, nodeId: 5, twinId: 11 }, code: "unchanged", id: 5 },
    { name: "new capacity", twin, mine, call: { ...call, total: { ...total, cru: 16 } }, code: "updated", id: 5 },
    { name: "a key without a twin", call, code: "unauthorized" },
    { name: "a chosen node id before the chain assigned one (squatting node 3)", twin, call: { ...call, nodeId: 3 }, code: "unauthorized" },
    { name: "another twin's node id", twin, mine, call: { ...call, nodeId: 3 }, code: "unauthorized" },
    { name: "naming another twin (node 3 of farm 1 naming twin 7)", twin, call: { ...call, twinId: 7 }, code: "unauthorized" },
    { name: "a twin record of another key given", twin, call, signer: squatter, code: "unauthorized" },
    { name: "a node record of another key given", twin, mine: { ...mine, record: { ...mine.record, publicKey: OTHER } }, call, code: "unauthorized" },
    { name: "a replayed call", twin, mine, call: { ...call, timestampMs: NOW - 10 }, code: "stale_request" },
    { name: "a stale clock", twin, call: { ...call, timestampMs: NOW - 2 * policy.maxClockSkewMs }, code: "stale_request" },
    { name: "no capacity", twin, call: { ...call, total: undefined }, code: "malformed" },
    { name: "farm id 0", twin, call: { ...call, farmId: 0 }, code: "malformed" },
    // farm admission
    { name: "into the twin's own closed farm", twin, farm: closedOwn, call, code: "registered" },
    { name: "into another twin's closed farm", twin, farm: closedOther, call: { ...call, farmId: 3 }, code: "unauthorized" },
    { name: "into another twin's open farm", twin, farm: openOther, call: { ...call, farmId: 3 }, code: "registered" },
    { name: "into a farm that allows the twin", twin, farm: allowing, call: { ...call, farmId: 3 }, code: "registered" },
    { name: "a move into another twin's closed farm", twin, mine, farm: closedOther, call: { ...call, farmId: 3 }, code: "unauthorized" },
    { name: "a move into an allowing farm", twin, mine, farm: allowing, call: { ...call, farmId: 3 }, code: "updated" },
    { name: "staying in a farm that no longer allows the twin", twin, mine: { ...mine, record: { ...mine.record, farmId: 3 } }, farm: closedOther, call: { ...call, farmId: 3 }, code: "unchanged" },
    // requireFarm
    { name: "a farm that is not registered, requireFarm off (dev grids)", twin, call, code: "registered" },
    { name: "a farm that is not registered, requireFarm on", twin, call, policy: strict, code: "unknown_farm" },
    { name: "a registered farm, requireFarm on", twin, call, policy: strict, farm: closedOwn, code: "registered" },
    { name: "a move to a farm that is not registered, requireFarm on", twin, mine, call: { ...call, farmId: 4 }, policy: strict, code: "unknown_farm" },
    { name: "another farm's record given for the call's farm, requireFarm on", twin, call: { ...call, farmId: 4 }, policy: strict, farm: closedOwn, code: "unknown_farm" },
    { name: "a replay in a farm that is not registered, requireFarm on (the timestamp is judged first)", twin, mine, call: { ...call, timestampMs: NOW - 10 }, policy: strict, code: "stale_request" },
  ];
  test.each(nodeCases)("node: $name -> $code", (c) => {
    const r = checkRegisterNode({ twin: c.twin, mine: c.mine, farm: c.farm, nextId: 6 }, c.call, c.signer ?? me, NOW, c.policy ?? policy);
    expect(r.ok ? r.value.kind : r.refusal.code).toBe(c.code);
    if (r.ok) {
      expect(r.value.record.nodeId).toBe(c.id ?? (c.mine ? 5 : 6));
      expect(r.value.record.twinId).toBe(11);
    } else {
      expect(r.refusal.message.length).toBeGreaterThan(10);
    }
  });

  test("a first registration binds the key and the twin and starts an empty proof chain", () => {
    const r = checkRegisterNode({ twin, mine: undefined, farm: undefined, nextId: 6 }, call, me, NOW, policy);
    expect(r).toMatchObject({ ok: true, value: { kind: "registered", record: { nodeId: 6, farmId: 2, twinId: 11, publicKey: KEY, registeredMs: NOW, capacityUpdatedMs: NOW, lastCallMs: NOW }, state: { lastSequence: 0, lastHash: ZERO_HASH, maxCapacity: total } } });
  });
});

describe("checkRegisterFarm", () => {
  const me: CallerKey = { publicKey: KEY, scheme: "ed25519" };
  const other: CallerKey = { publicKey: OTHER, scheme: "ed25519" };
  /** the owner twin 11, registered with KEY; twin 12 with OTHER */
  const owner: ChainTwinRecord = TWIN11;
  const otherTwin: ChainTwinRecord = { twinId: 12, publicKey: OTHER, scheme: "ed25519", registeredMs: T0, updatedMs: T0, lastCallMs: T0 };
  const farm: ChainFarmRecord = { farmId: 2, twinId: 11, name: "freefarm", open: false, allowedTwins: [], registeredMs: T0, updatedMs: T0, lastCallMs: NOW - 10 };
  const create = { timestampMs: NOW, farmId: 0, twinId: 0, name: "freefarm", access: 0 as const, allowTwins: [], disallowTwins: [] };
  const change = { ...create, farmId: 2 };
  type Ctx = Parameters<typeof checkRegisterFarm>[0];
  const none: Ctx = { existing: undefined, twin: owner, named: undefined, farmsOfTwin: 0, nextId: 3 };
  const mineCtx: Ctx = { ...none, existing: farm, named: farm, farmsOfTwin: 1 };

  const cases: Array<{ name: string; ctx: Ctx; call: Parameters<typeof checkRegisterFarm>[1]; signer?: CallerKey; code: string }> = [
    // accepted
    { name: "farm_id 0 by a twin: a new farm with the next id", ctx: none, call: create, code: "registered" },
    { name: "a new farm without a name (farm-<id>)", ctx: none, call: { ...create, name: "" }, code: "registered" },
    { name: "a new farm naming its owner twin", ctx: none, call: { ...create, twinId: 11 }, code: "registered" },
    { name: "a name of 64 characters (multi-byte ones count once)", ctx: none, call: { ...create, name: "ферма-".repeat(10) + "🌱🌱🌱🌱" }, code: "registered" },
    { name: "the same call again, later", ctx: mineCtx, call: change, code: "unchanged" },
    { name: "a later call without a name (keeps the name)", ctx: mineCtx, call: { ...change, name: "" }, code: "unchanged" },
    { name: "a rename by the owner", ctx: { ...mineCtx, named: undefined }, call: { ...change, name: "freefarm 2" }, code: "renamed" },
    { name: "the owner opens the farm", ctx: mineCtx, call: { ...change, access: 1 }, code: "updated" },
    { name: "the owner allows a twin", ctx: mineCtx, call: { ...change, allowTwins: [40] }, code: "updated" },
    { name: "an sr25519 owner twin", ctx: { ...none, twin: { ...owner, scheme: "sr25519" } }, call: create, signer: { publicKey: KEY, scheme: "sr25519" }, code: "registered" },
    // refused
    { name: "a key without a twin", ctx: { ...none, twin: undefined }, call: create, code: "unauthorized" },
    { name: "naming another twin as the owner", ctx: none, call: { ...create, twinId: 12 }, code: "unauthorized" },
    { name: "another key's twin record given", ctx: none, call: create, signer: other, code: "unauthorized" },
    { name: "a chosen farm id that does not exist (squatting)", ctx: none, call: { ...create, farmId: 9 }, code: "unauthorized" },
    { name: "a rename by another twin", ctx: { ...mineCtx, twin: otherTwin }, call: { ...change, name: "mine now" }, signer: other, code: "unauthorized" },
    { name: "another twin opening the farm", ctx: { ...mineCtx, twin: otherTwin }, call: { ...change, access: 1 }, signer: other, code: "unauthorized" },
    { name: "a name another farm has", ctx: { ...none, named: farm }, call: create, code: "name_taken" },
    { name: "more farms than a twin may own", ctx: { ...none, farmsOfTwin: policy.maxFarmsPerTwin }, call: create, code: "quota_exceeded" },
    { name: "more allowed twins than a farm keeps", ctx: none, call: { ...create, allowTwins: Array.from({ length: policy.maxAllowedTwinsPerFarm + 1 }, (_, i) => i + 1) }, code: "quota_exceeded" },
    { name: "an allowed twin id 0", ctx: none, call: { ...create, allowTwins: [0] }, code: "malformed" },
    { name: "an unknown access", ctx: none, call: { ...create, access: 7 as 0 }, code: "malformed" },
    { name: "a replayed call", ctx: mineCtx, call: { ...change, timestampMs: NOW - 10 }, code: "stale_request" },
    { name: "a call from a clock far behind", ctx: none, call: { ...create, timestampMs: NOW - policy.maxClockSkewMs - 1 }, code: "stale_request" },
    { name: "a call from a clock far ahead", ctx: none, call: { ...create, timestampMs: NOW + policy.maxClockSkewMs + 1 }, code: "stale_request" },
    { name: "a name of 65 characters", ctx: none, call: { ...create, name: "f".repeat(65) }, code: "malformed" },
    { name: "a name with a newline", ctx: none, call: { ...create, name: "free\nfarm" }, code: "malformed" },
    { name: "a name with a NUL", ctx: none, call: { ...create, name: "free\u0000farm" }, code: "malformed" },
    { name: "a name with a zero-width (format) character", ctx: none, call: { ...create, name: "free\u200bfarm" }, code: "malformed" },
    { name: "a rename to a name that is not printable", ctx: mineCtx, call: { ...change, name: "\u001b[31mred" }, code: "malformed" },
  ];
  test.each(cases)("$name -> $code", (c) => {
    const r = checkRegisterFarm(c.ctx, c.call, c.signer ?? me, NOW, policy);
    expect(r.ok ? r.value.kind : r.refusal.code).toBe(c.code);
    if (r.ok) expect(r.value.record.lastCallMs).toBe(c.call.timestampMs);
    else expect(r.refusal.message.length).toBeGreaterThan(10);
  });

  test("a new farm is bound to the signer's twin and closed; a rename keeps owner and registration time", () => {
    const r = checkRegisterFarm(none, create, me, NOW, policy);
    expect(r).toEqual({ ok: true, value: { kind: "registered", record: { farmId: 3, twinId: 11, name: "freefarm", open: false, allowedTwins: [], registeredMs: NOW, updatedMs: NOW, lastCallMs: NOW } } });
    expect(checkRegisterFarm(none, { ...create, name: "" }, me, NOW, policy)).toMatchObject({ ok: true, value: { record: { name: "farm-3" } } });
    const later = NOW + 1000;
    const renamed = checkRegisterFarm({ ...mineCtx, named: undefined }, { ...change, timestampMs: later, name: "greenfarm" }, me, later, policy);
    expect(renamed).toEqual({ ok: true, value: { kind: "renamed", record: { ...farm, name: "greenfarm", updatedMs: later, lastCallMs: later } } });
    const allowed = checkRegisterFarm(mineCtx, { ...change, timestampMs: later, name: "", allowTwins: [40, 5] }, me, later, policy);
    expect(allowed).toMatchObject({ ok: true, value: { kind: "updated", record: { allowedTwins: [5, 40], open: false } } });
    if (!allowed.ok) return;
    const removed = checkRegisterFarm({ ...mineCtx, existing: allowed.value.record }, { ...change, timestampMs: later + 1, disallowTwins: [5] }, me, later + 1, policy);
    expect(removed).toMatchObject({ ok: true, value: { record: { allowedTwins: [40] } } });
  });

  test("a key without a twin is told to register the twin first", () => {
    const r = checkRegisterFarm({ ...none, twin: undefined }, create, me, NOW, policy);
    expect(r).toMatchObject({ ok: false, refusal: { code: "unauthorized" } });
    if (!r.ok) expect(r.refusal.message).toMatch(/register its twin first/);
  });
});

describe("farmAdmits", () => {
  const f: ChainFarmRecord = { farmId: 3, twinId: 40, name: "f", open: false, allowedTwins: [5], registeredMs: T0, updatedMs: T0, lastCallMs: T0 };
  test.each([
    [f, 40, true],
    [f, 5, true],
    [f, 6, false],
    [{ ...f, open: true }, 6, true],
  ])("farm %#: twin %i -> %s", (farm, twinId, admits) => {
    expect(farmAdmits(farm, twinId)).toBe(admits);
  });
});

describe("RegistrationLimiter", () => {
  const limits = parseChainLimits({ perKeyPerSecond: 1, perKeyBurst: 3, globalPerSecond: 10, globalBurst: 5, newTwinsPerSecond: 1, newTwinsBurst: 2, maxTrackedKeys: 4 });

  test("per key: a burst, then one per second; other keys are not affected", () => {
    const l = new RegistrationLimiter({ ...limits, globalBurst: 100 });
    const t = 1000;
    expect([1, 2, 3, 4].map(() => l.take("a", t).ok)).toEqual([true, true, true, false]);
    expect(l.take("a", t)).toMatchObject({ ok: false, code: "rate_limited" });
    expect(l.take("b", t).ok).toBe(true);
    expect(l.take("a", t + 999).ok).toBe(false);
    expect(l.take("a", t + 1000).ok).toBe(true);
  });

  test("global: many keys share one budget", () => {
    const l = new RegistrationLimiter(limits);
    const r = Array.from({ length: 8 }, (_, i) => l.take(`k${i}`, 0).ok);
    expect(r).toEqual([true, true, true, true, true, false, false, false]);
    expect(l.take("k9", 100).ok).toBe(true); // 10/s: one token after 100 ms
  });

  test("new twins: a budget of their own, on top of the call budgets", () => {
    const l = new RegistrationLimiter({ ...limits, globalBurst: 100 });
    expect([0, 1, 2].map((i) => l.take(`n${i}`, 0, true).ok)).toEqual([true, true, false]);
    expect(l.take("n3", 0, false).ok).toBe(true);
    expect(l.take("n4", 1000, true).ok).toBe(true);
  });

  test("a flood of new keys keeps at most maxTrackedKeys buckets in memory", () => {
    const l = new RegistrationLimiter({ ...limits, globalBurst: 1_000_000, globalPerSecond: 1_000_000 });
    for (let i = 0; i < 10_000; i++) l.take(`flood${i}`, i);
    expect(l.trackedKeys).toBe(4);
  });

  test("sweep forgets buckets that refilled, oldest first, and stops at the first that has not", () => {
    const l = new RegistrationLimiter({ ...limits, globalBurst: 100, maxTrackedKeys: 100 });
    for (let i = 0; i < 10; i++) l.take(`k${i}`, i * 1000); // each used one token at second i
    // at second 10, the buckets used at seconds 0..9 are full again (1 token/s, burst 3)
    l.take("busy", 10_000);
    l.take("busy", 10_000);
    l.take("busy", 10_000);
    expect(l.sweep(10_000)).toBe(10);
    expect(l.trackedKeys).toBe(1);
    expect(l.take("busy", 10_000).ok).toBe(false); // not forgotten: still empty
    expect(l.sweep(13_000)).toBe(1);
    expect(l.trackedKeys).toBe(0);
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
    [{ policy: { maxFarmsPerTwin: 0 } }, "chain.policy.maxFarmsPerTwin"],
    [{ limits: { perKeyPerSecond: 0 } }, "chain.limits.perKeyPerSecond"],
    [{ limits: { maxTrackedKeys: 0 } }, "chain.limits.maxTrackedKeys"],
  ])("a bad option names its field: %j", (raw, field) => {
    expect(() => parseChainOptions(raw as Parameters<typeof parseChainOptions>[0])).toThrow(expect.objectContaining({ code: "invalid_options", field }));
  });
});
