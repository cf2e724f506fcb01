/**
 * Benchmark of usage proofs, reported as ratios against baselines measured in the same process:
 *   - building a proof (meter a period of R deployments, then buildProof: encode the records, Merkle
 *     root, twin subtotals and their root, header, ed25519 signature), against one raw ed25519 sign
 *     with node's crypto;
 *   - the chain judging, billing and storing a proof sent with its twin subtotals (proof.settle:
 *     envelope, rules, subtotals, fsync'd SQLite commit, signed reply),
 *     and an auditor checking one record (three signatures, the inclusion path), against one raw
 *     ed25519 verify;
 *   - hashing the records into a root, against raw blake2b-256 of the same bytes.
 * Run: npx tsc -p tsconfig.json && node dist/scripts/bench/proofs.js [--n 300] [--records 1000]
 * No NATS: the chain's handler is called directly (the transport is measured by bench/node-api).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MemoryBus } from "../../agent/bus/memory";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, type Units } from "../../agent/capacity/units";
import { parseChainOptions } from "../../agent/authority/options";
import { ChainServer } from "../../agent/authority/server";
import { ChainStore } from "../../agent/authority/store";
import { chainCallToWire } from "../../agent/chain/wire";
import { DOMAIN } from "../../agent/identity/domains";
import { open, seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { inclusionPath, leafHash, merkleRoot } from "../../agent/proofs/merkle";
import { buildProof, type BuiltProof, type ProofHead } from "../../agent/proofs/build";
import { blake2b256, encodeProofHeader, proofHash, ZERO_HASH } from "../../agent/proofs/proof";
import { checkAudit } from "../../agent/usage/audit";
import { meterPeriod } from "../../agent/usage/meter";
import { decode, encode } from "../../agent/wire/codec";
import { arg, machine, report, type Row } from "./report";


function timeIt(n: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(50, n); i++) fn(-1 - i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / 1e3 / n; // µs per op
}

async function main(): Promise<void> {
  const n = arg("n", 300);
  const records = arg("records", 1000);
  await cryptoReady();
  const nodeKey = signerFromSeed("ed25519", crypto.randomBytes(32));
  const chainKey = signerFromSeed("ed25519", crypto.randomBytes(32));
  const periodMs = 3_600_000;
  const vm = (i: number): Units => ({ cru: 1 + (i % 4), mru: (1 + (i % 8)) * GiB, sru: (10 + (i % 50)) * GiB, hru: 0, ipv4u: i % 3 === 0 ? 1 : 0, gpu: 0 });
  const initial = Array.from({ length: records }, (_, i) => ({ deploymentId: i + 1, twinId: 7, version: 1, units: vm(i) }));

  // one proof as the agent builds it: meter, then buildProof (encode, records root, twin subtotals and their root, header, sign)
  const build = (head: ProofHead): BuiltProof => {
    const end = head.periodEndMs + periodMs;
    const m = meterPeriod({ periodStartMs: head.periodEndMs, periodEndMs: end, initial, events: [], uptime: [[head.periodEndMs, end]] });
    return buildProof(head, { nodeId: 1, farmId: 1, periodEndMs: end, ...m }, nodeKey);
  };
  const t0 = Math.floor((Date.now() - (n + 60) * periodMs) / periodMs) * periodMs;
  const sample = build({ sequence: 0, periodEndMs: t0, hash: ZERO_HASH });
  const encoded = sample.records.map((r) => r.bytes);
  const msg = crypto.randomBytes(sample.headerBytes.length);
  const rawKey = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), crypto.randomBytes(32)]), format: "der", type: "pkcs8" });
  const rawSign = timeIt(n * 10, () => crypto.sign(null, msg, rawKey));
  const buildUs = timeIt(Math.max(5, Math.floor(n / 10)), () => build({ sequence: 0, periodEndMs: t0, hash: ZERO_HASH }));
  const leafBytes = encoded;
  const rawHash = timeIt(Math.max(5, Math.floor(n / 10)), () => leafBytes.forEach((b) => blake2b256(b)));
  const rootUs = timeIt(Math.max(5, Math.floor(n / 10)), () => merkleRoot(leafBytes.map(leafHash)));

  // the chain: register the node, then judge a hash-chained series of proofs
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-proofs-"));
  const store = ChainStore.open(dir);
  // the series starts n + 60 periods before now: the chain must accept a first proof that old
  const server = new ChainServer(parseChainOptions({ policy: { firstProofLookbackMs: (n + 120) * periodMs } }), { bus: new MemoryBus(), subjects: new Subjects(), signer: chainKey, store, logger: silentLogger(), metrics: null, now: Date.now });
  // the node key's twin, then its node: the chain assigns both ids (1 and 1 on this fresh store)
  server.handle("twin.register", seal(nodeKey, DOMAIN.ChainCall, encode("ChainCall", chainCallToWire(Date.now() - 1, { registerTwin: { twinId: 0 } }))));
  const reg = seal(nodeKey, DOMAIN.ChainCall, encode("ChainCall", chainCallToWire(Date.now(), { registerNode: { nodeId: 0, farmId: 1, twinId: 0, total: { cru: 4096, mru: 8192 * GiB, sru: 100_000 * GiB, hru: 0, ipv4u: 1000, gpu: 0 } } })));
  server.handle("node.register", reg);
  // each proof goes with its twin subtotals (proof.settle), as the agent sends it
  const series: Uint8Array[] = [];
  let prev: Uint8Array = ZERO_HASH;
  // the chain judges headers: every period of this series meters the same records, so the series
  // reuses the sample's records root, twin subtotals and totals instead of re-hashing 1,000 records per proof
  for (let i = 0; i < n + 50; i++) {
    const start = t0 + i * periodMs;
    const bytes = encodeProofHeader({ ...sample.header, sequence: i + 1, periodStartMs: start, periodEndMs: start + periodMs, previousHash: prev });
    prev = proofHash(bytes);
    series.push(encode("ProofSubmission", { proof: seal(nodeKey, DOMAIN.UsageProof, bytes), twins: sample.twins }));
  }
  let next = 0;
  const chainUs = timeIt(n, () => {
    const reply = open(server.handle("proof.settle", series[next++]), DOMAIN.ChainReply);
    const r = reply.ok ? decode("ChainReply", reply.value.payload) : null;
    if (!r?.ok) throw new Error(`the chain refused proof ${next}: ${r ? `[${r.rejection?.code}] ${r.rejection?.message}` : "the reply does not open"}`);
  });
  const rawPub = crypto.createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), nodeKey.publicKey]), format: "der", type: "spki" });
  const sig = nodeKey.sign(msg);
  const rawVerify = timeIt(n * 10, () => crypto.verify(null, msg, rawPub, sig));

  // an auditor checks one record of the sample proof against the chain's copy
  const idx = Math.floor(records / 2);
  const reply = seal(nodeKey, DOMAIN.UsageAuditReply, encode("UsageAuditReply", { found: true, proof: sample.envelope, record: encoded[idx], leafIndex: idx, path: inclusionPath(encoded.map(leafHash), idx) }));
  const auditUs = timeIt(n, () => {
    const r = checkAudit({ sequence: 1, deploymentId: idx + 1, chainProof: sample.envelope, nodeKey: nodeKey.publicKey, reply });
    if (r.code !== "holds") throw new Error(`audit: ${r.code} ${r.message}`);
  });

  const rows: Row[] = [
    { name: `build a proof of ${records} records (meter, encode, roots, sign)`, value: buildUs, unit: "µs", baseline: { name: "raw ed25519 sign", value: rawSign }, ratio: buildUs / rawSign },
    { name: `Merkle root of ${records} records`, value: rootUs, unit: "µs", baseline: { name: `raw blake2b-256 of ${records} records`, value: rawHash }, ratio: rootUs / rawHash },
    { name: "chain: judge + bill + store a proof (rules, subtotals, fsync'd commit, signed reply)", value: chainUs, unit: "µs", baseline: { name: "raw ed25519 verify", value: rawVerify }, ratio: chainUs / rawVerify },
    { name: `audit one record of ${records} (3 signatures, path of ${Math.ceil(Math.log2(records))})`, value: auditUs, unit: "µs", baseline: { name: "raw ed25519 verify", value: rawVerify }, ratio: auditUs / rawVerify },
  ];
  report({ bench: "proofs", title: `usage proofs, n=${n}, ${records} records per proof, header ${sample.headerBytes.length} B, envelope ${sample.envelope.length} B; ${machine()}`, rows });
  await server.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
