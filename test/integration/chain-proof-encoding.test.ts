/**
 * Issue 8.3 against the real chain stand-in (real nats-server, real store on disk, real keys): a
 * node whose encoder leaves totals out for an idle period, orders fields otherwise or writes
 * defaults out has its proofs accepted and chained; a header with bytes that are not a value of a
 * known field is refused as malformed with a message naming the difference, and the node's head
 * does not move.
 */
import * as crypto from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, TiB, type Units } from "../../agent/capacity/units";
import { ChainClient } from "../../agent/chain/client";
import { createChainMetrics } from "../../agent/authority/metrics";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { MetricsRegistry } from "../../agent/metrics/metrics";
import { proofHash, ZERO_HASH } from "../../agent/proofs/proof";
import { InProcessChain } from "../utils/chain-server";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { writeFields, type Field } from "../utils/protowriter";
import { natsBus } from "../../agent/bus/nats";

const H = 3_600_000;
/** a fresh chain assigns the first node id 1 */
const NODE = 1;
const FARM = 3;
const total: Units = { cru: 8, mru: 16 * GiB, sru: 500 * GiB, hru: 2 * TiB, ipv4u: 1, gpu: 0 };
const base = Math.floor(Date.now() / H) * H - 5 * H;

let nats: NatsServerHandle;
let standin: InProcessChain;
let nc: NatsConnection;
let client: ChainClient;
let nodeKey: Signer;

const key = (): Signer => signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32)));

/** UsageProof fields of proof `sequence` as an encoder that leaves zero values and nil totals out writes them. */
function fields(sequence: number, previousHash: Uint8Array): Field[] {
  const start = base + (sequence - 1) * H;
  return [
    { id: 1, varint: NODE },
    { id: 2, varint: sequence },
    { id: 3, varint: start },
    { id: 4, varint: start + H },
    { id: 5, bytes: previousHash },
    { id: 8, bytes: new Uint8Array(32) },
    { id: 10, varint: FARM },
  ];
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  nodeKey = key();
  standin = await InProcessChain.start(nats.url, { metrics: createChainMetrics(new MetricsRegistry()), dirPrefix: "chain-enc-" });
  nc = await connect({ servers: nats.url });
  client = new ChainClient(natsBus(nc), new Subjects(), { chainKey: standin.key.publicKey, timeoutMs: 3000 });
  // the chain assigns ids: the node key's twin first, then its node
  expect(await client.registerTwin(nodeKey)).toMatchObject({ ok: true, kind: "registered" });
  expect(await client.registerNode(nodeKey, { farmId: FARM, total })).toEqual({ ok: true, id: NODE, kind: "registered" });
});

afterAll(async () => {
  await nc?.close();
  await standin?.stop();
  await nats?.stop();
});

test("idle-period headers from another encoder are accepted and chained; padded ones are refused naming the difference", async () => {
  // 1: totals absent (nothing to add up), Go-style field order
  const p1 = writeFields(fields(1, ZERO_HASH));
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, p1))).toEqual({ ok: true, code: "ok", proofHash: proofHash(p1) });
  // 2: fields in reverse order, defaults (record_count 0, downtime 0, empty totals) written out
  const p2 = writeFields([...fields(2, proofHash(p1)), { id: 6, varint: 0 }, { id: 9, varint: 0 }, { id: 7, message: [] }].reverse());
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, p2))).toEqual({ ok: true, code: "ok", proofHash: proofHash(p2) });
  // the same bytes again: a duplicate, not an overlap
  expect(await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, p2))).toMatchObject({ ok: true, code: "duplicate" });

  // 3: signed by the node, but with an unknown field (bytes the chain would keep without meaning)
  const padded = writeFields([...fields(3, proofHash(p2)), { id: 15, bytes: new Uint8Array(200) }]);
  const r1 = await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, padded));
  expect(r1).toMatchObject({ ok: false, code: "malformed" });
  expect(!r1.ok && r1.message).toContain("field number 15 is not a field of UsageProof");
  // a field twice
  const twice = writeFields([...fields(3, proofHash(p2)), { id: 4, varint: base + 3 * H }]);
  const r2 = await client.submitProof(seal(nodeKey, DOMAIN.UsageProof, twice));
  expect(r2).toMatchObject({ ok: false, code: "malformed" });
  expect(!r2.ok && r2.message).toContain("UsageProof.periodEndMs (field 4) appears twice");

  const head = await client.head(NODE);
  expect(head).toEqual({ sequence: 2, periodEndMs: base + 2 * H, hash: proofHash(p2) });
  // the stored proofs are the bytes the node signed
  expect((await client.proofs(NODE, 1, 10)).map((p) => p.header.sequence)).toEqual([1, 2]);
});
