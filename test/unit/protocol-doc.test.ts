/**
 * docs/PROTOCOL.md and the code cannot drift: the domain tag table equals agent/identity/domains.ts,
 * the test vectors section is what scripts/protocol-vectors makes from the code, and an
 * implementation that follows ONLY the document (signed bytes, envelope layout, ed25519 from the
 * seed, proof hash, Merkle rules; written here with node:crypto and hand-made protobuf) produces
 * bytes the agent accepts, and accepts the bytes the agent produces.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { blake2AsU8a, sr25519Verify } from "@polkadot/util-crypto";
import { DOMAIN, type Domain } from "../../agent/identity/domains";
import { open, seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { checkListing } from "../../agent/usage/audit";
import type * as Vectors from "../../scripts/protocol-vectors";

// scripts/protocol-vectors (no extension) is the bash wrapper, so the module is required by its
// full file name; the types come from the import above.
const { DOC, protocolVectors, srSignatureIn, BEGIN, END }: typeof Vectors = require("../../scripts/protocol-vectors.ts");

const doc = fs.readFileSync(DOC, "utf8");

beforeAll(async () => {
  await cryptoReady();
});

/** The tags of the "Domain tags" table: rows starting with a backticked tfgrid.capacity.v1/ tag. */
function docTags(): string[] {
  return [...doc.matchAll(/^\| `(tfgrid\.capacity\.v1\/[A-Za-z]+)` \|/gm)].map((m) => m[1]);
}

/** The hex on the vectors line that starts with `label` (the last backticked 0x value on it). */
function vector(label: string): Buffer {
  const line = doc.split("\n").find((l) => l.startsWith(`- ${label}`));
  if (!line) throw new Error(`no vector line "${label}" in docs/PROTOCOL.md`);
  const all = [...line.matchAll(/`0x([0-9a-f]+)`/g)];
  return Buffer.from(all[all.length - 1][1], "hex");
}

const b2 = (b: Uint8Array): Buffer => Buffer.from(blake2AsU8a(b, 256));

/** ed25519 from the 32-byte seed, as RFC 8032 says, with node:crypto (not the agent's Signer). */
function rfc8032(seed: Uint8Array): { publicKey: Buffer; sign: (m: Uint8Array) => Buffer } {
  const key = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]), format: "der", type: "pkcs8" });
  const publicKey = crypto.createPublicKey(key).export({ format: "der", type: "spki" }).subarray(12);
  return { publicKey, sign: (m) => crypto.sign(null, m, key) };
}

/** A protobuf length-delimited field (lengths here are below 128 and below 16384). */
function ld(field: number, bytes: Uint8Array): Buffer {
  const len = bytes.length < 128 ? [bytes.length] : [(bytes.length & 0x7f) | 0x80, bytes.length >> 7];
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), bytes]);
}

/** The Signed envelope as the document lays it out: payload(1), signer(2), scheme(3) = 1, signature(4). */
function envelope(payload: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): Buffer {
  return Buffer.concat([ld(1, payload), ld(2, publicKey), Buffer.from([0x18, 0x01]), ld(4, signature)]);
}

const signedBytes = (tag: string, payload: Uint8Array): Buffer => Buffer.concat([Buffer.from(tag, "utf8"), Buffer.from([0]), payload]);

test("the domain tag table of PROTOCOL.md equals agent/identity/domains.ts (every tag, no other)", () => {
  const tags = docTags();
  expect(tags.length).toBeGreaterThan(0);
  expect(new Set(tags).size).toBe(tags.length);
  expect([...tags].sort()).toEqual(Object.values(DOMAIN).sort());
  for (const [name, tag] of Object.entries(DOMAIN)) expect(tag).toBe(`tfgrid.capacity.v1/${name}`);
});

test("the test vectors section is what scripts/protocol-vectors makes from the code (run it with --write when this fails)", async () => {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  expect(a).toBeGreaterThan(0);
  expect(b).toBeGreaterThan(a);
  expect(doc.slice(a, b + END.length)).toBe(await protocolVectors({ srSignature: srSignatureIn(doc) }));
});

test("every domain tag: a signature made by the document's rules opens in the agent, and the agent's opens by the document's rules", () => {
  const kf = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(doc.slice(doc.indexOf(BEGIN)))![1]) as { type: string; seed: string; publicKey: string };
  expect(kf.type).toBe("ed25519");
  const seed = Buffer.from(kf.seed.slice(2), "hex");
  const me = rfc8032(seed);
  expect("0x" + me.publicKey.toString("hex")).toBe(kf.publicKey);
  const agent = signerFromSeed("ed25519", seed);
  const payload = Buffer.from("0801", "hex");
  const names = Object.keys(DOMAIN) as Array<keyof typeof DOMAIN>;
  for (const tag of docTags()) {
    const domain = tag as Domain;
    const env = envelope(payload, me.publicKey, me.sign(signedBytes(tag, payload)));
    expect({ tag, ok: open(env, domain).ok }).toEqual({ tag, ok: true });
    // the same signature under any other tag does not open
    const other = DOMAIN[names[(names.findIndex((n) => DOMAIN[n] === tag) + 1) % names.length]];
    expect({ tag, other: open(env, other) }).toMatchObject({ tag, other: { ok: false, refusal: { code: "bad_signature" } } });
    // the agent's envelope is the document's layout, and its signature verifies over the document's signed bytes
    const sealed = Buffer.from(seal(agent, domain, payload));
    const sig = sealed.subarray(sealed.length - 64);
    expect({ tag, hex: sealed.toString("hex") }).toEqual({ tag, hex: envelope(payload, me.publicKey, sig).toString("hex") });
    expect(crypto.verify(null, signedBytes(tag, payload), crypto.createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), me.publicKey]), format: "der", type: "spki" }), sig)).toBe(true);
  }
});

test("the vectors check out: V2 signed bytes and envelope, V3 sr25519, V4 Merkle tree and V5 proof hash by the document's rules alone; V6 pages pass the completeness audit", () => {
  const seed = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const me = rfc8032(seed);
  // V2
  const payload = vector("payload, DeleteRequest");
  const signed = signedBytes(DOMAIN.DeleteRequest, payload);
  expect(vector("signed bytes").toString("hex")).toBe(signed.toString("hex"));
  expect(vector("ed25519 signature").toString("hex")).toBe(me.sign(signed).toString("hex"));
  expect(vector("Signed envelope").toString("hex")).toBe(envelope(payload, me.publicKey, me.sign(signed)).toString("hex"));
  // V3: the sr25519 signature verifies over the same signed bytes with the sr25519 key of the seed
  const srPub = signerFromSeed("sr25519", seed).publicKey;
  expect(sr25519Verify(signed, vector("sr25519 signature"), srPub)).toBe(true);
  // V4: leaves, the inner node and the root with the third leaf promoted
  const rows = [...doc.matchAll(/^\| (\d) \| deployment [^|]+\| `0x([0-9a-f]+)` \| `0x([0-9a-f]+)` \|$/gm)];
  expect(rows).toHaveLength(3);
  const leaves = rows.map((r) => b2(Buffer.concat([Buffer.from([0]), Buffer.from(r[2], "hex")])));
  rows.forEach((r, i) => expect(leaves[i].toString("hex")).toBe(r[3]));
  const n01 = b2(Buffer.concat([Buffer.from([1]), leaves[0], leaves[1]]));
  expect(vector("node(0,1)").toString("hex")).toBe(n01.toString("hex"));
  expect(vector("root = ").toString("hex")).toBe(b2(Buffer.concat([Buffer.from([1]), n01, leaves[2]])).toString("hex"));
  // V5: the proof hash is blake2b-256 of the payload (field 1 of the envelope), and the envelope opens
  const header = vector("UsageProof{");
  expect(vector("proof hash").toString("hex")).toBe(b2(header).toString("hex"));
  const env = vector("Signed{UsageProof}");
  const o = open(env, DOMAIN.UsageProof);
  expect(o.ok && Buffer.from(o.value.payload).toString("hex")).toBe(header.toString("hex"));
  expect(header.includes(Buffer.concat([Buffer.from([0x42, 0x20]), vector("root = ")]))).toBe(true);
  // V6: the two listing pages pass the completeness audit against V5's proof and V1's key
  const pages = [vector("the node's first page"), vector("the last page")];
  expect(checkListing({ sequence: 1, chainProof: env, nodeKey: me.publicKey, pages })).toMatchObject({ code: "holds" });
});
