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
import { createChainMetrics, type ChainMetrics } from "../../agent/chain/metrics";
import { parseChainOptions } from "../../agent/chain/options";
import { ChainRegistry, CompositeRegistry } from "../../agent/chain/registry";
import { ChainServer } from "../../agent/chain/server";
import { ChainStore } from "../../agent/chain/store";
import type { WireChainEvent, WireChainReply } from "../../agent/chain/wire";
import { DOMAIN } from "../../agent/identity/domains";
import { open, seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { MetricsRegistry } from "../../agent/metrics/metrics";
import { encodeProofHeader, proofHash, zeroAmounts, ZERO_HASH, type ProofHeader } from "../../agent/proofs/proof";
import { decode, encode, unitsToWire } from "../../agent/wire/codec";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";

const H = 3_600_000;
const NODE = 5;
const FARM = 2;
const TWIN = 11;
const total: Units = { cru: 8, mru: 16 * GiB, sru: 500 * GiB, hru: 2 * TiB, ipv4u: 1, gpu: 0 };

let nats: NatsServerHandle;
let dir: string;
let serverNc: NatsConnection;
let nc: NatsConnection;
let store: ChainStore;
let server: ChainServer;
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

function startServer(): Promise<void> {
  store = ChainStore.open(dir);
  server = new ChainServer(parseChainOptions(), { nc: serverNc, subjects, signer: chainKey, store, logger: silentLogger(), metrics, now: Date.now });
  return server.start();
}

/** A raw request to a chain subject; the reply opened and decoded (it must be signed by the chain key). */
async function raw(call: string, data: Uint8Array): Promise<WireChainReply> {
  const m = await nc.request(subjects.chain(call), data, { timeout: 5000 });
  const o = open(m.data, DOMAIN.ChainReply, { maxBytes: 2 * 1024 * 1024 });
  if (!o.ok) throw new Error(o.message);
  expect(hex(o.value.signer)).toBe(hex(chainKey.publicKey));
  return decode<WireChainReply>("ChainReply", o.value.payload, { maxBytes: 2 * 1024 * 1024, maxRepeated: 1000 });
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
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chain-"));
  chainKey = key();
  nodeKey = key();
  twinKey = signerFromSeed("sr25519", new Uint8Array(crypto.randomBytes(32)));
  forger = key();
  serverNc = await connect({ servers: nats.url });
  nc = await connect({ servers: nats.url });
  metrics = createChainMetrics(new MetricsRegistry());
  eventSub = nc.subscribe(subjects.chain("events.>"), {
    callback: (err, msg) => {
      if (err) return;
      const o = open(msg.data, DOMAIN.ChainEvent);
      if (!o.ok) throw new Error(`an event does not verify: ${o.message}`);
      events.push({ subject: msg.subject, event: decode<WireChainEvent>("ChainEvent", o.value.payload), signer: o.value.signer });
    },
  });
  await nc.flush();
  await startServer();
  client = new ChainClient(nc, subjects, { chainKey: chainKey.publicKey, timeoutMs: 3000 });
  let prev: Uint8Array = ZERO_HASH;
  for (let s = 1; s <= 3; s++) {
    const h = header(s, prev);
    const bytes = encodeProofHeader(h);
    headers.push(h);
    proofs.push(seal(nodeKey, DOMAIN.UsageProof, bytes));
    prev = proofHash(bytes);
  }
});

afterAll(async () => {
  eventSub?.unsubscribe();
  await server?.close();
  store?.close();
  await nc?.close();
  await serverNc?.close();
  await nats?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("a twin and a node register with real signatures; the chain binds their keys and says so", async () => {
  expect(await client.twin(TWIN)).toBeUndefined();
  expect(await client.registerTwin(twinKey, TWIN)).toEqual({ ok: true, code: "ok" });
  const t = await client.twin(TWIN);
  expect(t).toMatchObject({ twinId: TWIN, scheme: "sr25519" });
  expect(hex(t!.publicKey)).toBe(hex(twinKey.publicKey));
  // the same twin id from another key is refused; the binding stays
  expect(await client.registerTwin(forger, TWIN)).toMatchObject({ ok: false, code: "unauthorized" });
  expect(hex((await client.twin(TWIN))!.publicKey)).toBe(hex(twinKey.publicKey));

  expect(await client.registerNode(nodeKey, { nodeId: NODE, farmId: FARM, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });
  const n = await client.node(NODE);
  expect(n).toMatchObject({ nodeId: NODE, farmId: FARM, twinId: TWIN, scheme: "ed25519", total, lastSequence: 0, lastPeriodEndMs: 0 });
  expect(hex(n!.lastHash)).toBe(hex(ZERO_HASH));
  expect(hex(n!.publicKey)).toBe(hex(nodeKey.publicKey));
  // registering again (an agent restart) is fine; a changed capacity is an update
  expect(await client.registerNode(nodeKey, { nodeId: NODE, farmId: FARM, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });
  expect(await client.registerNode(nodeKey, { nodeId: NODE, farmId: FARM, twinId: TWIN, total: { ...total, cru: 12 } })).toEqual({ ok: true, code: "ok" });
  expect(await client.registerNode(nodeKey, { nodeId: NODE, farmId: FARM, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });
  expect(await client.registerNode(forger, { nodeId: NODE, farmId: FARM, twinId: TWIN, total })).toMatchObject({ ok: false, code: "unauthorized" });

  await waitFor(() => events.filter((e) => e.event.kind === "node_updated").length === 2, 5000, "node events");
  expect(events.map((e) => [e.subject, e.event.kind])).toEqual([
    ["tfgrid.v1.chain.events.twin_registered", "twin_registered"],
    ["tfgrid.v1.chain.events.node_registered", "node_registered"],
    ["tfgrid.v1.chain.events.node_updated", "node_updated"],
    ["tfgrid.v1.chain.events.node_updated", "node_updated"],
  ]);
  expect(events.every((e) => hex(e.signer) === hex(chainKey.publicKey))).toBe(true);
  expect(metrics.accepted.get({ call: "node.register" })).toBe(4);
  expect(metrics.refusals.get({ code: "unauthorized" })).toBe(2);
});

test("a replayed registration call is refused as stale_request", async () => {
  const call = seal(nodeKey, DOMAIN.ChainCall, encode("ChainCall", { timestampMs: Date.now() + 1000, registerNode: { nodeId: NODE, farmId: FARM, twinId: TWIN, total: unitsToWire(total) } }));
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
  expect(store.proofCount(NODE)).toBe(3);
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
  const env = decode<{ payload: Uint8Array; signer: Uint8Array; scheme: number; signature: Uint8Array }>("Signed", proofs[0]);
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
  const pinnedElsewhere = new ChainClient(nc, subjects, { chainKey: forger.publicKey });
  await expect(pinnedElsewhere.node(NODE)).rejects.toMatchObject({ code: "bad_reply" });
  const nowhere = new ChainClient(nc, new Subjects("nochain.v1"), { timeoutMs: 500 });
  await expect(nowhere.node(NODE)).rejects.toMatchObject({ code: "chain_unavailable" });
  await expect(nowhere.submitProof(proofs[0])).rejects.toMatchObject({ code: "chain_unavailable" });
});

test("ChainRegistry resolves through the chain, caches, shares concurrent lookups; CompositeRegistry takes the first hit", async () => {
  const reg = new ChainRegistry({}, { client, logger: silentLogger() });
  const [a, b] = await Promise.all([reg.node(NODE), reg.node(NODE)]);
  expect(a).toBe(b);
  expect(a).toMatchObject({ id: NODE, farmId: FARM, twinId: TWIN, scheme: "ed25519" });
  expect(await reg.twin(TWIN)).toMatchObject({ id: TWIN, scheme: "sr25519" });
  expect(await reg.node(4242)).toBeUndefined();
  const down = new ChainRegistry({}, { client: new ChainClient(nc, new Subjects("nochain.v1"), { timeoutMs: 300 }), logger: silentLogger() });
  expect(await down.node(NODE)).toBeUndefined();
  const composite = new CompositeRegistry([down, reg]);
  expect(await composite.node(NODE)).toMatchObject({ id: NODE });
  expect(await composite.twin(999)).toBeUndefined();
});

test("the chain's state survives a close and reopen of its store; a stale registry entry is served meanwhile", async () => {
  const reg = new ChainRegistry({ ttlMs: 0, negativeTtlMs: 0 }, { client: new ChainClient(nc, subjects, { timeoutMs: 500 }), logger: silentLogger() });
  expect(await reg.node(NODE)).toMatchObject({ id: NODE });
  const footprint = store.footprint();
  expect(footprint.proofs.rows).toBe(3);
  expect(footprint.nodes.rows).toBe(1);
  expect(footprint.twins.rows).toBe(1);
  expect(footprint.total.bytes).toBeGreaterThan(0);

  await server.close();
  store.close();
  // the chain is away: the registry serves what it knew
  expect(await reg.node(NODE)).toMatchObject({ id: NODE });
  expect(await reg.node(4243)).toBeUndefined();

  await startServer();
  expect(store.refusals()).toMatchObject({ bad_signature: expect.any(Number), duplicate: 2, gap: 1, exceeds_capacity: 2 });
  const n = await client.node(NODE);
  expect(n).toMatchObject({ lastSequence: 3, lastPeriodEndMs: headers[2].periodEndMs, total });
  expect((await client.proofs(NODE, 1, 10)).map((p) => hex(p.proof))).toEqual(proofs.map(hex));
  expect(hex((await client.twin(TWIN))!.publicKey)).toBe(hex(twinKey.publicKey));
  // the series goes on where it was
  const fourth = encodeProofHeader(header(4, proofHash(encodeProofHeader(headers[2]))));
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, fourth))).toEqual({ ok: true, code: "ok", proofHash: proofHash(fourth) });
  expect(await client.submitProof(proofs[2])).toMatchObject({ ok: true, code: "duplicate" });
  expect(store.proofCount(NODE)).toBe(4);
  expect(store.events().map((e) => e.kind)).toEqual(["twin_registered", "node_registered", "node_updated", "node_updated", "proof_accepted", "proof_accepted", "proof_accepted", "proof_accepted"]);
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

test("farms: registered by their owner twin's key, queried back with their node count; other twins and unknown twins are unauthorized; requireFarm gates nodes", async () => {
  const F = 77;
  expect(await client.farm(F)).toBeUndefined();
  // a node in farm F before the farm exists: accepted, this chain does not require farms (the default)
  const nodeInF = key();
  expect(await client.registerNode(nodeInF, { nodeId: 50, farmId: F, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });
  const elsewhere = key();
  expect(await client.registerNode(elsewhere, { nodeId: 51, farmId: F + 1, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });

  // twin TWIN (sr25519, registered in the first test) registers farm F with a real signature
  expect(await client.registerFarm(twinKey, { farmId: F, twinId: TWIN, name: "freefarm" })).toEqual({ ok: true, code: "ok" });
  const f = await client.farm(F);
  expect(f).toMatchObject({ farmId: F, twinId: TWIN, name: "freefarm", nodeCount: 1 });
  expect(f!.registeredMs).toBeGreaterThan(0);
  // a second node joins: counted; the node in farm F + 1 never is
  expect(await client.registerNode(key(), { nodeId: 52, farmId: F, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });
  expect((await client.farm(F))?.nodeCount).toBe(2);
  // farm FARM, where NODE lives, is not registered
  expect(await client.farm(FARM)).toBeUndefined();

  // the owner renames it; without a name a call keeps it
  expect(await client.registerFarm(twinKey, { farmId: F, twinId: TWIN, name: "greenfarm" })).toEqual({ ok: true, code: "ok" });
  expect(await client.registerFarm(twinKey, { farmId: F, twinId: TWIN })).toEqual({ ok: true, code: "ok" });
  expect((await client.farm(F))?.name).toBe("greenfarm");

  // another registered twin may not rename it, nor take it over
  const OTHER_TWIN = 12;
  expect(await client.registerTwin(forger, OTHER_TWIN)).toEqual({ ok: true, code: "ok" });
  expect(await client.registerFarm(forger, { farmId: F, twinId: OTHER_TWIN, name: "stolen" })).toMatchObject({ ok: false, code: "unauthorized" });
  // nor sign for the owner twin
  expect(await client.registerFarm(forger, { farmId: F, twinId: TWIN, name: "stolen" })).toMatchObject({ ok: false, code: "bad_signature" });
  // a twin the chain does not know is told to register first
  const unknown = await client.registerFarm(key(), { farmId: 78, twinId: 999, name: "nobody" });
  expect(unknown).toMatchObject({ ok: false, code: "unauthorized" });
  if (!unknown.ok) expect(unknown.message).toContain("register the twin first");
  expect(await client.farm(78)).toBeUndefined();
  expect((await client.farm(F))?.name).toBe("greenfarm");
  // a farm call sent to the twin subject is malformed
  const farmCall = seal(twinKey, DOMAIN.ChainCall, encode("ChainCall", { timestampMs: Date.now() + 2000, registerFarm: { farmId: F, twinId: TWIN, name: "x" } }));
  expect(await raw("twin.register", farmCall)).toMatchObject({ ok: false, rejection: { code: "malformed" } });
  // and replayed on its own subject, stale
  expect((await raw("farm.register", farmCall)).ok).toBe(true);
  expect(await raw("farm.register", farmCall)).toMatchObject({ ok: false, rejection: { code: "stale_request" } });
  expect(await raw("query", encode("ChainQuery", { farmId: F }))).toMatchObject({ ok: true, farm: { farmId: F, twinId: TWIN, name: "x", nodeCount: 2 } });

  await waitFor(() => events.some((e) => e.event.kind === "farm_registered"), 5000, "farm event");
  expect(events.filter((e) => e.event.kind === "farm_registered").map((e) => [e.subject, e.event.farmId, e.event.twinId])).toEqual([["tfgrid.v1.chain.events.farm_registered", F, TWIN]]);
  expect(store.footprint().farms.rows).toBe(1);
  expect(metrics.accepted.get({ call: "farm.register" })).toBe(4);

  // a second chain, on a fresh store, that registers nodes only into registered farms
  const strictDir = fs.mkdtempSync(path.join(os.tmpdir(), "chain-strict-"));
  const strictSubjects = new Subjects("strict.v1");
  const strictStore = ChainStore.open(strictDir);
  const strictServer = new ChainServer(parseChainOptions({ policy: { requireFarm: true } }), {
    nc: serverNc,
    subjects: strictSubjects,
    signer: chainKey,
    store: strictStore,
    logger: silentLogger(),
    metrics: null,
    now: Date.now,
  });
  try {
    await strictServer.start();
    const strict = new ChainClient(nc, strictSubjects, { chainKey: chainKey.publicKey, timeoutMs: 3000 });
    const strictNode = key();
    const refused = await strict.registerNode(strictNode, { nodeId: NODE, farmId: 9, twinId: TWIN, total });
    expect(refused).toMatchObject({ ok: false, code: "unknown_farm" });
    if (!refused.ok) expect(refused.message).toContain("farm 9");
    expect(await strict.node(NODE)).toBeUndefined();
    expect(await strict.registerTwin(twinKey, TWIN)).toEqual({ ok: true, code: "ok" });
    expect(await strict.registerFarm(twinKey, { farmId: 9, twinId: TWIN, name: "strict farm" })).toEqual({ ok: true, code: "ok" });
    expect(await strict.farm(9)).toMatchObject({ farmId: 9, twinId: TWIN, name: "strict farm", nodeCount: 0 });
    expect(await strict.registerNode(strictNode, { nodeId: NODE, farmId: 9, twinId: TWIN, total })).toEqual({ ok: true, code: "ok" });
    expect(await strict.node(NODE)).toMatchObject({ nodeId: NODE, farmId: 9 });
    expect((await strict.farm(9))?.nodeCount).toBe(1);
    // and a move to a farm that is not registered is refused, the node stays where it was
    expect(await strict.registerNode(strictNode, { nodeId: NODE, farmId: 10, twinId: TWIN, total })).toMatchObject({ ok: false, code: "unknown_farm" });
    expect((await strict.node(NODE))?.farmId).toBe(9);
  } finally {
    await strictServer.close();
    strictStore.close();
    fs.rmSync(strictDir, { recursive: true, force: true });
  }
  // the first chain was not involved
  expect(await client.farm(9)).toBeUndefined();
});
