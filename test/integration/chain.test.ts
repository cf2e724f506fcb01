/**
 * The chain stand-in over a real nats-server: a ChainServer with a real store on disk and a real
 * ed25519 key, real signatures from node, twin and forger keys, ChainClient and ChainRegistry.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, TiB, type Units } from "../../agent/capacity/units";
import { ChainClient } from "../../agent/chain/client";
import { createChainMetrics, type ChainMetrics } from "../../agent/authority/metrics";
import { parseChainOptions } from "../../agent/authority/options";
import { ChainRegistry, CompositeRegistry } from "../../agent/chain/registry";
import { CHAIN_MIGRATIONS, ChainStore } from "../../agent/authority/store";
import { ensureSchema, openDatabase } from "../../agent/store/store";
import type { WireChainEvent, WireChainReply } from "../../agent/wire/generated";
import { DOMAIN } from "../../agent/identity/domains";
import { open, seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { MetricsRegistry } from "../../agent/metrics/metrics";
import { encodeProofHeader, proofHash, zeroAmounts, ZERO_HASH, type ProofHeader } from "../../agent/proofs/proof";
import { decode, encode, unitsToWire } from "../../agent/wire/codec";
import { eventually } from "../utils/grid";
import { InProcessChain } from "../utils/chain-server";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

const H = 3_600_000;
/** the node's farm: not registered on this chain (taken as given: requireFarm is off) */
const FARM = 2;
/** ids the chain assigns in the first test */
let NODE = 0;
let TWIN = 0;
let NODE_TWIN = 0;
const total: Units = { cru: 8, mru: 16 * GiB, sru: 500 * GiB, hru: 2 * TiB, ipv4u: 1, gpu: 0 };

let nats: NatsServerHandle;
let standin: InProcessChain;
let nc: NatsConnection;
let metrics: ChainMetrics;
let client: ChainClient;
let chainKey: Signer;
let nodeKey: Signer;
let twinKey: Signer;
let forger: Signer;
let eventSub: Subscription;
const events: Array<{ subject: string; event: WireChainEvent; signer: Uint8Array }> = [];
const subjects = new Subjects();

const key = (): Signer => signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32)));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** A raw request to a chain subject; the reply opened and decoded (it must be signed by the chain key). */
async function raw(call: string, data: Uint8Array): Promise<WireChainReply> {
  const m = await nc.request(subjects.chain(call), data, { timeout: 5000 });
  const o = open(m.data, DOMAIN.ChainReply, { maxBytes: 2 * 1024 * 1024 });
  if (!o.ok) throw new Error(o.refusal.message);
  expect(hex(o.value.signer)).toBe(hex(chainKey.publicKey));
  return decode("ChainReply", o.value.payload, { maxBytes: 2 * 1024 * 1024, maxRepeated: 1000 });
}

// three contiguous hour-long periods that ended in the past, and room for a fourth before now
const base = Math.floor(Date.now() / H) * H - 4 * H;
const headers: ProofHeader[] = [];
const proofs: Uint8Array[] = [];

function header(sequence: number, previousHash: Uint8Array, p: Partial<ProofHeader> = {}): ProofHeader {
  const start = base + (sequence - 1) * H;
  return {
    nodeId: NODE,
    farmId: FARM,
    sequence,
    periodStartMs: start,
    periodEndMs: start + H,
    previousHash,
    recordCount: 2,
    totals: { ...zeroAmounts(), cruSeconds: 3n * 3600n, mruByteSeconds: 4n * BigInt(GiB) * 3600n, ipv4Seconds: 3600n },
    recordsRoot: new Uint8Array(32).fill(sequence),
    downtimeMs: 0,
    ...p,
  };
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  chainKey = key();
  nodeKey = key();
  twinKey = signerFromSeed("sr25519", new Uint8Array(crypto.randomBytes(32)));
  forger = key();
  nc = await connect({ servers: nats.url });
  metrics = createChainMetrics(new MetricsRegistry());
  eventSub = nc.subscribe(subjects.chain("events.>"), {
    callback: (err, msg) => {
      if (err) return;
      const o = open(msg.data, DOMAIN.ChainEvent);
      if (!o.ok) throw new Error(`an event does not verify: ${o.refusal.message}`);
      events.push({ subject: msg.subject, event: decode("ChainEvent", o.value.payload), signer: o.value.signer });
    },
  });
  await nc.flush();
  // generous per-key limits: these tests send many calls with one key (the limits have their own test)
  standin = await InProcessChain.start(nats.url, { options: { limits: { perKeyBurst: 1000 } }, metrics, key: chainKey, subjects });
  client = new ChainClient(natsBus(nc), subjects, { chainKey: chainKey.publicKey, timeoutMs: 3000 });
});

/** Three hash-chained proofs of node NODE (once the chain assigned it). */
function buildProofs(): void {
  let prev: Uint8Array = ZERO_HASH;
  for (let s = 1; s <= 3; s++) {
    const h = header(s, prev);
    const bytes = encodeProofHeader(h);
    headers.push(h);
    proofs.push(seal(nodeKey, DOMAIN.UsageProof, bytes));
    prev = proofHash(bytes);
  }
}

afterAll(async () => {
  eventSub?.unsubscribe();
  await nc?.close();
  await standin?.stop();
  await nats?.stop();
});

test("the chain assigns twin and node ids and binds them to the registering keys, and says so", async () => {
  expect(await client.twin(1)).toBeUndefined();
  const t = await client.registerTwin(twinKey);
  expect(t).toEqual({ ok: true, id: 1, kind: "registered" });
  TWIN = 1;
  // the same key again, with or without its id: the same twin back, nothing changes
  expect(await client.registerTwin(twinKey)).toEqual({ ok: true, id: TWIN, kind: "unchanged" });
  expect(await client.registerTwin(twinKey, TWIN)).toEqual({ ok: true, id: TWIN, kind: "unchanged" });
  const tw = await client.twin(TWIN);
  expect(tw).toMatchObject({ twinId: TWIN, scheme: "sr25519" });
  expect(hex(tw!.publicKey)).toBe(hex(twinKey.publicKey));

  // a node key needs its twin first (the node's twin: the node key is its key)
  const early = await client.registerNode(nodeKey, { farmId: FARM, total });
  expect(early).toMatchObject({ ok: false, code: "unauthorized" });
  if (!early.ok) expect(early.message).toContain("register its twin first");
  const nt = await client.registerTwin(nodeKey);
  expect(nt).toEqual({ ok: true, id: 2, kind: "registered" });
  NODE_TWIN = 2;

  expect(await client.registerNode(nodeKey, { farmId: FARM, total })).toEqual({ ok: true, id: 1, kind: "registered" });
  NODE = 1;
  buildProofs();
  const n = await client.node(NODE);
  expect(n).toMatchObject({ nodeId: NODE, farmId: FARM, twinId: NODE_TWIN, scheme: "ed25519", total, lastSequence: 0, lastPeriodEndMs: 0 });
  expect(hex(n!.lastHash)).toBe(hex(ZERO_HASH));
  expect(hex(n!.publicKey)).toBe(hex(nodeKey.publicKey));
  // registering again (an agent restart) is fine, with or without the id; a changed capacity is an update
  expect(await client.registerNode(nodeKey, { farmId: FARM, total })).toEqual({ ok: true, id: NODE, kind: "unchanged" });
  expect(await client.registerNode(nodeKey, { farmId: FARM, total: { ...total, cru: 12 } })).toEqual({ ok: true, id: NODE, kind: "updated" });
  expect(await client.registerNode(nodeKey, { nodeId: NODE, twinId: NODE_TWIN, farmId: FARM, total })).toEqual({ ok: true, id: NODE, kind: "updated" });

  await waitFor(() => events.filter((e) => e.event.kind === "node_updated").length === 2, 5000, "node events");
  expect(events.map((e) => [e.subject, e.event.kind, e.event.twinId])).toEqual([
    ["tfgrid.v1.chain.events.twin_registered", "twin_registered", TWIN],
    ["tfgrid.v1.chain.events.twin_registered", "twin_registered", NODE_TWIN],
    ["tfgrid.v1.chain.events.node_registered", "node_registered", NODE_TWIN],
    ["tfgrid.v1.chain.events.node_updated", "node_updated", NODE_TWIN],
    ["tfgrid.v1.chain.events.node_updated", "node_updated", NODE_TWIN],
  ]);
  expect(events.every((e) => hex(e.signer) === hex(chainKey.publicKey))).toBe(true);
  expect(metrics.accepted.get({ call: "node.register" })).toBe(4);
  expect(metrics.refusals.get({ code: "unauthorized" })).toBe(1);
});

test("a squatter cannot take a twin, node or farm id, nor change another key's records", async () => {
  const squatter = key();
  const before = await client.node(NODE);
  // twin 103 before its owner does; another key's twin
  for (const id of [103, TWIN, NODE_TWIN]) {
    const r = await client.registerTwin(squatter, id);
    expect(r).toMatchObject({ ok: false, code: "unauthorized" });
  }
  expect(await client.twin(103)).toBeUndefined();
  expect(hex((await client.twin(TWIN))!.publicKey)).toBe(hex(twinKey.publicKey));
  // with a twin of its own (the chain picks the id) it still cannot name other ids
  const own = await client.registerTwin(squatter);
  expect(own).toMatchObject({ ok: true, kind: "registered" });
  const squatTwin = own.ok ? own.id : 0;
  expect(squatTwin).toBe(3);
  const big = { ...total, cru: 64, mru: 1024 * GiB };
  // node NODE (another twin's), node 3 of farm 1 naming twin 7, and a node naming the real node's twin
  expect(await client.registerNode(squatter, { nodeId: NODE, farmId: FARM, total: big })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.registerNode(squatter, { nodeId: 3, farmId: 1, twinId: 7, total: big })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.registerNode(squatter, { nodeId: 3, farmId: 1, total: big })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.registerNode(squatter, { farmId: FARM, twinId: NODE_TWIN, total: big })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.node(3)).toBeUndefined();
  // a farm id nobody created
  expect(await client.registerFarm(squatter, { farmId: 9, name: "mine" })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.farm(9)).toBeUndefined();
  // node NODE is as it was: its key, its capacity, its twin
  const after = await client.node(NODE);
  expect(after).toEqual(before);
  // its owner goes on registering it
  expect(await client.registerNode(nodeKey, { farmId: FARM, total })).toEqual({ ok: true, id: NODE, kind: "unchanged" });
  // the squatter's own node gets the next id, bound to its twin
  expect(await client.registerNode(squatter, { farmId: FARM, total: big })).toEqual({ ok: true, id: 2, kind: "registered" });
  expect(await client.node(2)).toMatchObject({ nodeId: 2, twinId: squatTwin });
});

test("a replayed registration call is refused as stale_request", async () => {
  const call = seal(nodeKey, DOMAIN.ChainCall, encode("ChainCall", { timestampMs: Date.now() + 1000, registerNode: { nodeId: 0, farmId: FARM, twinId: 0, total: unitsToWire(total) } }));
  expect((await raw("node.register", call)).ok).toBe(true);
  const again = await raw("node.register", call);
  expect(again).toMatchObject({ ok: false, rejection: { code: "stale_request" } });
  // a call signed for node.register sent as a twin registration is malformed, not accepted
  expect(await raw("twin.register", call)).toMatchObject({ ok: false, rejection: { code: "malformed" } });
});

test("a hash-chained series of three proofs is accepted and read back in order", async () => {
  for (let i = 0; i < 3; i++) {
    const r = await client.submitProof(proofs[i]);
    expect(r).toEqual({ ok: true, code: "ok", proofHash: proofHash(encodeProofHeader(headers[i])) });
  }
  const back = await client.proofs(NODE, 1, 10);
  expect(back.map((p) => p.header.sequence)).toEqual([1, 2, 3]);
  expect(back.map((p) => hex(p.proof))).toEqual(proofs.map(hex));
  expect(back.map((p) => p.header)).toEqual(headers);
  expect(back.every((p) => p.acceptedMs > 0)).toBe(true);
  const last = await client.proofs(NODE, 0, 0);
  expect(last.map((p) => p.header.sequence)).toEqual([3]);
  expect((await client.proofs(NODE, 2, 1)).map((p) => p.header.sequence)).toEqual([2]);
  expect(await client.proofs(999, 1, 10)).toEqual([]);
  const n = await client.node(NODE);
  expect(n).toMatchObject({ lastSequence: 3, lastPeriodEndMs: headers[2].periodEndMs });
  expect(hex(n!.lastHash)).toBe(hex(proofHash(encodeProofHeader(headers[2]))));
  expect(await client.head(NODE)).toEqual({ sequence: 3, periodEndMs: headers[2].periodEndMs, hash: proofHash(encodeProofHeader(headers[2])) });
  await waitFor(() => events.filter((e) => e.event.kind === "proof_accepted").length === 3, 5000, "proof events");
  expect(events.filter((e) => e.event.kind === "proof_accepted").map((e) => [e.event.nodeId, Number(e.event.sequence)])).toEqual([
    [NODE, 1],
    [NODE, 2],
    [NODE, 3],
  ]);
  expect(metrics.accepted.get({ call: "proof.submit" })).toBe(3);
});

test("forged, replayed, out-of-order and over-capacity proofs are refused with their codes and counted", async () => {
  const prev = proofHash(encodeProofHeader(headers[2]));
  const next = header(4, prev);
  const before = { ...Object.fromEntries(["bad_signature", "duplicate", "gap", "exceeds_capacity"].map((c) => [c, metrics.refusals.get({ code: c })])) };

  expect(await client.submitProof(seal(forger, DOMAIN.UsageProof, encodeProofHeader(next)))).toMatchObject({ ok: false, code: "bad_signature" });
  // the same proof again: acknowledged as a duplicate with its hash, not stored twice
  expect(await client.submitProof(proofs[2])).toEqual({ ok: true, code: "duplicate", proofHash: proofHash(encodeProofHeader(headers[2])) });
  expect(await client.submitProof(proofs[0])).toMatchObject({ ok: true, code: "duplicate" });
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, encodeProofHeader({ ...next, sequence: 6 })))).toMatchObject({ ok: false, code: "gap" });
  // memory is not overprovisioned: more byte-seconds than 16 GiB for an hour do not fit
  const over = await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, encodeProofHeader({ ...next, totals: { ...next.totals, mruByteSeconds: 16n * BigInt(GiB) * 3600n + 1n } })));
  expect(over).toMatchObject({ ok: false, code: "exceeds_capacity" });
  if (!over.ok) expect(over.message).toContain("mru_byte_seconds");
  // CPU may be overprovisioned up to 4x the largest capacity registered since the last proof
  // (12 CRU for a moment during registration): 4 x 12 CRU for an hour fits, one second more does not
  const cpu = await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, encodeProofHeader({ ...next, totals: { ...next.totals, cruSeconds: 4n * 12n * 3600n + 1n } })));
  expect(cpu).toMatchObject({ ok: false, code: "exceeds_capacity" });
  // a proof that differs from the accepted one with the same sequence
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, encodeProofHeader({ ...headers[2], downtimeMs: 5 })))).toMatchObject({ ok: false, code: "overlap" });

  expect(metrics.refusals.get({ code: "bad_signature" })).toBe(before.bad_signature + 1);
  expect(metrics.refusals.get({ code: "duplicate" })).toBe(before.duplicate + 2);
  expect(metrics.refusals.get({ code: "gap" })).toBe(before.gap + 1);
  expect(metrics.refusals.get({ code: "exceeds_capacity" })).toBe(before.exceeds_capacity + 2);
  expect(standin.store.proofCount(NODE)).toBe(3);
  expect((await client.proofs(NODE, 1, 10)).map((p) => hex(p.proof))).toEqual(proofs.map(hex));
});

test("garbage bytes are malformed (or too_large) on every subject and the chain keeps answering", async () => {
  const garbage = new Uint8Array(crypto.randomBytes(300));
  garbage[0] = 0xff; // an invalid protobuf tag
  for (const call of ["twin.register", "node.register", "proof.submit", "query"]) {
    expect(await raw(call, garbage)).toMatchObject({ ok: false, rejection: { code: "malformed" } });
    expect(await raw(call, new Uint8Array(64 * 1024))).toMatchObject({ ok: false, rejection: { code: "too_large" } });
  }
  // a Signed envelope whose signature does not verify
  const env = decode("Signed", proofs[0]);
  env.signature = Uint8Array.from(env.signature); // decode may share the input's memory
  env.signature[0] ^= 1;
  expect(await raw("proof.submit", encode("Signed", env))).toMatchObject({ ok: false, rejection: { code: "bad_signature" } });
  // a valid envelope around a payload that is not a proof header
  expect(await raw("proof.submit", seal(nodeKey, DOMAIN.UsageProof, new Uint8Array([0xff, 0xff, 0xff])))).toMatchObject({ ok: false, rejection: { code: "malformed" } });
  // an empty query
  expect(await raw("query", new Uint8Array(0))).toMatchObject({ ok: false, rejection: { code: "malformed" } });
  expect(metrics.refusals.get({ code: "malformed" })).toBeGreaterThanOrEqual(6);
  expect((await client.node(NODE))?.lastSequence).toBe(3);
});

test("replies not signed by the pinned chain key are bad_reply; no chain is chain_unavailable", async () => {
  const pinnedElsewhere = new ChainClient(natsBus(nc), subjects, { chainKey: forger.publicKey });
  await expect(pinnedElsewhere.node(NODE)).rejects.toMatchObject({ code: "bad_reply" });
  const nowhere = new ChainClient(natsBus(nc), new Subjects("nochain.v1"), { timeoutMs: 500 });
  await expect(nowhere.node(NODE)).rejects.toMatchObject({ code: "chain_unavailable" });
  await expect(nowhere.submitProof(proofs[0])).rejects.toMatchObject({ code: "chain_unavailable" });
});

test("ChainRegistry resolves through the chain, caches, shares concurrent lookups; CompositeRegistry takes the first hit", async () => {
  const reg = new ChainRegistry({}, { client, logger: silentLogger() });
  const [a, b] = await Promise.all([reg.node(NODE), reg.node(NODE)]);
  expect(a).toBe(b);
  expect(a).toMatchObject({ id: NODE, farmId: FARM, twinId: NODE_TWIN, scheme: "ed25519" });
  expect(await reg.twin(TWIN)).toMatchObject({ id: TWIN, scheme: "sr25519" });
  expect(await reg.node(4242)).toBeUndefined();
  const down = new ChainRegistry({}, { client: new ChainClient(natsBus(nc), new Subjects("nochain.v1"), { timeoutMs: 300 }), logger: silentLogger() });
  expect(await down.node(NODE)).toBeUndefined();
  const composite = new CompositeRegistry([down, reg]);
  expect(await composite.node(NODE)).toMatchObject({ id: NODE });
  expect(await composite.twin(999)).toBeUndefined();
});

test("the chain's state survives a close and reopen of its store; a stale registry entry is served meanwhile", async () => {
  const reg = new ChainRegistry({ ttlMs: 0, negativeTtlMs: 0 }, { client: new ChainClient(natsBus(nc), subjects, { timeoutMs: 500 }), logger: silentLogger() });
  expect(await reg.node(NODE)).toMatchObject({ id: NODE });
  const footprint = standin.store.footprint();
  expect(footprint.proofs.rows).toBe(3);
  expect(footprint.nodes.rows).toBe(2);
  expect(footprint.twins.rows).toBe(3);
  expect(footprint.total.bytes).toBeGreaterThan(0);

  await standin.close();
  // the chain is away: the registry serves what it knew
  expect(await reg.node(NODE)).toMatchObject({ id: NODE });
  expect(await reg.node(4243)).toBeUndefined();

  await standin.open();
  expect(standin.store.refusals()).toMatchObject({ bad_signature: expect.any(Number), duplicate: 2, gap: 1, exceeds_capacity: 2 });
  const n = await client.node(NODE);
  expect(n).toMatchObject({ lastSequence: 3, lastPeriodEndMs: headers[2].periodEndMs, total });
  expect((await client.proofs(NODE, 1, 10)).map((p) => hex(p.proof))).toEqual(proofs.map(hex));
  expect(hex((await client.twin(TWIN))!.publicKey)).toBe(hex(twinKey.publicKey));
  // the series goes on where it was
  const fourth = encodeProofHeader(header(4, proofHash(encodeProofHeader(headers[2]))));
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, fourth))).toEqual({ ok: true, code: "ok", proofHash: proofHash(fourth) });
  expect(await client.submitProof(proofs[2])).toMatchObject({ ok: true, code: "duplicate" });
  expect(standin.store.proofCount(NODE)).toBe(4);
  expect(standin.store.events().map((e) => e.kind)).toEqual([
    "twin_registered",
    "twin_registered",
    "node_registered",
    "node_updated",
    "node_updated",
    "twin_registered",
    "node_registered",
    "proof_accepted",
    "proof_accepted",
    "proof_accepted",
    "proof_accepted",
  ]);
});

test("a corrupt chain store is refused, not reset", () => {
  const bad = fs.mkdtempSync(path.join(os.tmpdir(), "chain-bad-"));
  fs.writeFileSync(path.join(bad, "chain.db"), Buffer.alloc(8192, 0x41));
  expect(() => ChainStore.open(bad)).toThrow(expect.objectContaining({ name: "StoreError", code: "corrupt" }));
  expect(fs.readFileSync(path.join(bad, "chain.db")).every((b) => b === 0x41)).toBe(true);
  fs.rmSync(bad, { recursive: true, force: true });
});

test("the chain keeps only what was signed: padding outside the signature is dropped, unknown header fields are refused", async () => {
  // the next period: from where the chain's head ends, one second long (it ended in the past)
  const head = (await client.head(NODE))!;
  const next = header(head.sequence + 1, head.hash, { periodStartMs: head.periodEndMs, periodEndMs: head.periodEndMs + 1000, recordCount: 0, totals: zeroAmounts() });
  const headerBytes = encodeProofHeader(next);
  // an unknown field (number 15, length-delimited, 100 bytes) inside the signed header
  const small = Buffer.concat([Buffer.from([0x7a, 0x64]), Buffer.alloc(100, 1)]);
  const paddedHeader = seal(nodeKey, DOMAIN.UsageProof, Buffer.concat([Buffer.from(headerBytes), small]));
  expect(await client.submitProof(paddedHeader)).toMatchObject({ ok: false, code: "malformed" });
  // 4000 bytes of it: refused before parsing
  const extra = Buffer.concat([Buffer.from([0x7a, 0xa0, 0x1f]), Buffer.alloc(4000, 1)]);
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, Buffer.concat([Buffer.from(headerBytes), extra])))).toMatchObject({ ok: false, code: "too_large" });
  // the same bytes appended to the envelope, outside the signature: accepted, stored without them
  const proof = seal(nodeKey, DOMAIN.UsageProof, headerBytes);
  const padded = Buffer.concat([Buffer.from(proof), extra]);
  expect(await client.submitProof(padded)).toMatchObject({ ok: true, code: "ok" });
  const [stored] = await client.proofs(NODE, next.sequence, 1);
  expect(hex(stored.proof)).toBe(hex(proof));
  // the unpadded original is then a duplicate of what the chain holds
  expect(await client.submitProof(proof)).toMatchObject({ ok: true, code: "duplicate" });
});

/** A new key with a twin of its own on `c`; returns the key and the twin id the chain assigned. */
async function newTwin(c: ChainClient = client): Promise<{ k: Signer; twinId: number }> {
  const k = key();
  const r = await c.registerTwin(k);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return { k, twinId: r.id };
}

test("farms: created by a twin (the chain assigns the id), changed by their owner only, unique names; nodes join only farms that admit their twin", async () => {
  const created = await client.registerFarm(twinKey, { farmId: 0, name: "freefarm" });
  expect(created).toEqual({ ok: true, id: 1, kind: "registered" });
  const F = 1;
  expect(await client.farm(F)).toMatchObject({ farmId: F, twinId: TWIN, name: "freefarm", nodeCount: 0, open: false, allowedTwins: [] });
  // naming the owner twin explicitly is the same; naming another twin is refused
  expect(await client.registerFarm(twinKey, { farmId: F, twinId: TWIN })).toEqual({ ok: true, id: F, kind: "unchanged" });
  expect(await client.registerFarm(twinKey, { farmId: 0, twinId: NODE_TWIN, name: "not mine" })).toMatchObject({ ok: false, code: "unauthorized" });

  // a node of another twin cannot join the closed farm
  const a = await newTwin();
  const refused = await client.registerNode(a.k, { farmId: F, total });
  expect(refused).toMatchObject({ ok: false, code: "unauthorized" });
  if (!refused.ok) expect(refused.message).toContain(`--allow ${a.twinId}`);
  // the owner allows twin a: it joins
  expect(await client.registerFarm(twinKey, { farmId: F, allowTwins: [a.twinId] })).toEqual({ ok: true, id: F, kind: "updated" });
  const joined = await client.registerNode(a.k, { farmId: F, total });
  expect(joined).toMatchObject({ ok: true, kind: "registered" });
  // twin b cannot, until the owner opens the farm
  const b = await newTwin();
  expect(await client.registerNode(b.k, { farmId: F, total })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.registerFarm(twinKey, { farmId: F, access: "open" })).toMatchObject({ ok: true, kind: "updated" });
  expect(await client.registerNode(b.k, { farmId: F, total })).toMatchObject({ ok: true, kind: "registered" });
  expect(await client.farm(F)).toMatchObject({ nodeCount: 2, open: true, allowedTwins: [a.twinId] });
  // closing it keeps the nodes in it
  expect(await client.registerFarm(twinKey, { farmId: F, access: "closed", disallowTwins: [a.twinId] })).toMatchObject({ ok: true, kind: "updated" });
  expect(await client.registerNode(b.k, { farmId: F, total: { ...total, cru: 2 } })).toMatchObject({ ok: true, kind: "updated" });
  expect(await client.farm(F)).toMatchObject({ nodeCount: 2, open: false, allowedTwins: [] });

  // rename by the owner; another twin may not rename it, open it or take its name
  expect(await client.registerFarm(twinKey, { farmId: F, name: "greenfarm" })).toEqual({ ok: true, id: F, kind: "updated" });
  expect(await client.registerFarm(twinKey, { farmId: F })).toEqual({ ok: true, id: F, kind: "unchanged" });
  expect((await client.farm(F))?.name).toBe("greenfarm");
  expect(await client.registerFarm(b.k, { farmId: F, name: "stolen" })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.registerFarm(b.k, { farmId: F, access: "open" })).toMatchObject({ ok: false, code: "unauthorized" });
  expect(await client.registerFarm(b.k, { farmId: 0, name: "greenfarm" })).toMatchObject({ ok: false, code: "name_taken" });
  const bFarm = await client.registerFarm(b.k, { farmId: 0 });
  expect(bFarm).toEqual({ ok: true, id: 2, kind: "registered" });
  expect(await client.farm(2)).toMatchObject({ twinId: b.twinId, name: "farm-2" });
  // a key without a twin is told to register one first
  const unknown = await client.registerFarm(key(), { farmId: 0, name: "nobody" });
  expect(unknown).toMatchObject({ ok: false, code: "unauthorized" });
  if (!unknown.ok) expect(unknown.message).toContain("register its twin first");
  expect((await client.farm(F))?.name).toBe("greenfarm");
  // a farm call sent to the twin subject is malformed; replayed on its own subject, stale
  const farmCall = seal(twinKey, DOMAIN.ChainCall, encode("ChainCall", { timestampMs: Date.now() + 2000, registerFarm: { farmId: F, twinId: 0, name: "x" } }));
  expect(await raw("twin.register", farmCall)).toMatchObject({ ok: false, rejection: { code: "malformed" } });
  expect(await raw("farm.register", farmCall)).toMatchObject({ ok: true, outcome: "renamed", farm: { farmId: F, name: "x" } });
  expect(await raw("farm.register", farmCall)).toMatchObject({ ok: false, rejection: { code: "stale_request" } });
  expect(await raw("query", encode("ChainQuery", { farmId: F }))).toMatchObject({ ok: true, farm: { farmId: F, twinId: TWIN, name: "x", nodeCount: 2 } });

  await waitFor(() => events.filter((e) => e.event.kind === "farm_registered").length === 2, 5000, "farm events");
  expect(events.filter((e) => e.event.kind === "farm_registered").map((e) => [e.subject, e.event.farmId, e.event.twinId])).toEqual([
    ["tfgrid.v1.chain.events.farm_registered", F, TWIN],
    ["tfgrid.v1.chain.events.farm_registered", 2, b.twinId],
  ]);
  expect(standin.store.footprint().farms.rows).toBe(2);

  // a second chain, on a fresh store, that registers nodes only into registered farms
  const strictSubjects = new Subjects("strict.v1");
  const strictChain = await InProcessChain.start(nats.url, { options: { policy: { requireFarm: true } }, key: chainKey, subjects: strictSubjects, dirPrefix: "chain-strict-" });
  try {
    const strict = new ChainClient(natsBus(nc), strictSubjects, { chainKey: chainKey.publicKey, timeoutMs: 3000 });
    expect(await strict.registerTwin(twinKey)).toEqual({ ok: true, id: 1, kind: "registered" });
    const refused = await strict.registerNode(twinKey, { farmId: 9, total });
    expect(refused).toMatchObject({ ok: false, code: "unknown_farm" });
    if (!refused.ok) expect(refused.message).toContain("farm 9");
    expect(await strict.registerFarm(twinKey, { farmId: 0, name: "strict farm" })).toEqual({ ok: true, id: 1, kind: "registered" });
    expect(await strict.farm(1)).toMatchObject({ farmId: 1, twinId: 1, name: "strict farm", nodeCount: 0 });
    // the owner's own node (twin 1's) joins its closed farm
    expect(await strict.registerNode(twinKey, { farmId: 1, total })).toEqual({ ok: true, id: 1, kind: "registered" });
    expect((await strict.farm(1))?.nodeCount).toBe(1);
    // and a move to a farm that is not registered is refused, the node stays where it was
    expect(await strict.registerNode(twinKey, { farmId: 10, total })).toMatchObject({ ok: false, code: "unknown_farm" });
    expect((await strict.node(1))?.farmId).toBe(1);
  } finally {
    await strictChain.stop();
  }
  // the first chain was not involved
  expect(await client.farm(9)).toBeUndefined();
});

test("a registration flood is rate_limited (per key, and new twins over all keys); the chain keeps a bounded state and answers its owners", async () => {
  const floodSubjects = new Subjects("flood.v1");
  // the defaults, but remembering at most 500 keys' buckets
  const raw = { limits: { maxTrackedKeys: 500 } };
  const options = parseChainOptions(raw);
  const floodMetrics = createChainMetrics(new MetricsRegistry());
  const floodChain = await InProcessChain.start(nats.url, { options: raw, metrics: floodMetrics, key: chainKey, subjects: floodSubjects, dirPrefix: "chain-flood-" });
  try {
    const flood = new ChainClient(natsBus(nc), floodSubjects, { chainKey: chainKey.publicKey, timeoutMs: 10_000 });
    // one key, many calls: a burst, then rate_limited
    const one = key();
    const burst = [];
    for (let i = 0; i < options.limits.perKeyBurst + 5; i++) burst.push(await flood.registerTwin(one));
    expect(burst.filter((r) => r.ok).length).toBeLessThanOrEqual(options.limits.perKeyBurst + 1);
    const limited = burst.find((r) => !r.ok);
    expect(limited).toMatchObject({ ok: false, code: "rate_limited" });
    if (limited && !limited.ok) expect(limited.message).toMatch(/send it again/);

    // 2000 new keys as fast as they can: at most the new-twins burst plus its rate over the time taken
    const t0 = Date.now();
    const N = 2000;
    const results = [];
    for (let i = 0; i < N; i += 100) results.push(...(await Promise.all(Array.from({ length: 100 }, () => flood.registerTwin(key())))));
    const seconds = (Date.now() - t0) / 1000;
    const ok = results.filter((r) => r.ok).length;
    const allowed = options.limits.newTwinsBurst + Math.ceil(seconds * options.limits.newTwinsPerSecond) + 1;
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThanOrEqual(allowed);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.code === "rate_limited")).toBe(true);
    expect(floodChain.store.footprint().twins.rows).toBe(ok + 1);
    // the limiter remembers a bounded number of keys, and forgets them once their buckets refilled
    expect(floodChain.server.limiter.trackedKeys).toBeLessThanOrEqual(500);
    await eventually(() => floodChain.server.limiter.trackedKeys <= 1, 10_000, "the flood's buckets to be forgotten");
    expect(floodMetrics.refusals.get({ code: "rate_limited" })).toBe(N - ok + burst.filter((r) => !r.ok).length);
    // an existing twin, calling at its own pace, is still answered
    await new Promise((r) => setTimeout(r, 600));
    expect(await flood.registerTwin(one)).toMatchObject({ ok: true, kind: "unchanged" });
  } finally {
    await floodChain.stop();
  }
});

test("a chain store from before the chain assigned ids (schema 2) is migrated in place: its records keep their keys, its farms are closed", () => {
  const oldDir = fs.mkdtempSync(path.join(os.tmpdir(), "chain-v2-"));
  try {
    const file = path.join(oldDir, "chain.db");
    const db = openDatabase(file, "chain store", 1);
    ensureSchema(db, file, "chain", CHAIN_MIGRATIONS.slice(0, 2));
    const pk = Buffer.from(twinKey.publicKey);
    db.prepare(`INSERT INTO twins VALUES (103, ?, 2, 1, 1, 1)`).run(pk);
    db.prepare(`INSERT INTO farms VALUES (7, 103, 'old farm', 1, 1, 1)`).run();
    db.close();
    const migrated = ChainStore.open(oldDir);
    try {
      expect(migrated.twinByKey(twinKey.publicKey, "sr25519")).toMatchObject({ twinId: 103 });
      expect(migrated.farm(7)).toMatchObject({ farmId: 7, twinId: 103, name: "old farm", open: false, allowedTwins: [] });
      expect(migrated.farmByName("old farm")?.farmId).toBe(7);
      expect(migrated.nextId("twins")).toBe(104);
      expect(migrated.nextId("nodes")).toBe(1);
    } finally {
      migrated.close();
    }
  } finally {
    fs.rmSync(oldDir, { recursive: true, force: true });
  }
});
