/**
 * Benchmark of the node API, reported as ratios against baselines measured in the same process:
 *   - deploy (verify signatures, admit, durable SQLite commit with fsync, signed reply) and status,
 *     against a bare NATS request/reply echo of the same payload size (status: its first page,
 *     what a status request answers, and all pages, what the CLI's status fetches);
 *   - verifying a deploy request (decode, validate, registry lookup, signature), against one raw
 *     ed25519 verify with node's crypto.
 * Run: npx tsc -p tsconfig.json && node dist/scripts/bench/node-api.js [--n 2000]
 * It starts its own nats-server on a free loopback port and stops it.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connect } from "@nats-io/transport-node";
import { Ledger } from "../../agent/admission/ledger";
import { parseDeployment } from "../../agent/admission/spec";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { API_LIMITS_DEFAULTS } from "../../agent/api/limits";
import { NodeApi } from "../../agent/api/server";
import { verifyDeployRequest } from "../../agent/api/verify";
import { findNatsServer, startEmbeddedNats } from "../../agent/bus/nats";
import { Subjects } from "../../agent/bus/subjects";
import { DEFAULT_POLICY } from "../../agent/capacity/model";
import { cryptoReady, signerFromSeed, toHex } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { createMetrics } from "../../agent/metrics/metrics";
import { FileRegistry } from "../../agent/registry/file";
import { Store } from "../../agent/store/store";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function timeIt(n: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(-1 - i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - t0) / 1e3 / n; // µs per op
}

async function main(): Promise<void> {
  const n = arg("n", 2000);
  await cryptoReady();
  const bin = findNatsServer();
  if (!bin) throw new Error("nats-server not found");
  const log = silentLogger();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-api-"));
  const nats = await startEmbeddedNats(bin, path.join(dir, "nats"), log);
  const nodeKey = signerFromSeed("ed25519", crypto.randomBytes(32));
  const twinKey = signerFromSeed("ed25519", crypto.randomBytes(32));
  const regFile = path.join(dir, "registry.json");
  fs.writeFileSync(regFile, JSON.stringify({ twins: [{ id: 7, publicKey: toHex(twinKey.publicKey) }], nodes: [{ id: 1, farmId: 1, publicKey: toHex(nodeKey.publicKey) }] }));
  const registry = new FileRegistry(regFile);
  const store = Store.open(path.join(dir, "data"));
  const big = 1e15;
  const ledger = new Ledger({ power: "up", rented: false, policy: DEFAULT_POLICY }, { store, logger: log, now: Date.now, metrics: null }, { cru: 1e9, mru: big, sru: big, hru: big, ipv4u: 0, gpu: 0 });
  const server = await connect({ servers: nats.url });
  const subjects = new Subjects();
  const api = new NodeApi(
    // one client measuring latency: the per-requester rates (api/limits.ts) would only measure themselves
    { nodeId: 1, farmId: 1, twinId: 1, maxRequestBytes: 256 * 1024, deleteSkewMs: 300_000, limits: { ...API_LIMITS_DEFAULTS, readRate: 1e6, readBurst: 1e6, writeRate: 1e6, writeBurst: 1e6, replyBytesPerSecond: 1024 ** 3 } },
    { nc: server, subjects, ledger, store, registry, signer: nodeKey, logger: log, metrics: createMetrics(), now: Date.now },
  );
  api.start();
  server.subscribe("bench.echo", {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  await server.flush();
  const nc = await connect({ servers: nats.url });
  const client = new NodeClient(nc, subjects);

  const spec = (id: number) => {
    const r = parseDeployment({ id, twinId: 7, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB", rootfs: "2GiB" }, { name: "disk", type: "zmount", size: "10GiB" }] });
    if (!r.ok) throw new Error(r.error.message);
    return r.spec;
  };
  const requests = Array.from({ length: n + 200 }, (_, i) => buildDeployRequest(spec(i + 1), [{ twinId: 7, signer: twinKey }]));
  const payload = requests[0];

  const echo = await timeIt(n, () => nc.request("bench.echo", payload));
  const deploy = await timeIt(n, (i) => client.deploy(1, requests[i < 0 ? n - 1 - i : i]));
  const status = await timeIt(Math.min(n, 500), () => client.statusPage(1));
  const statusAll = await timeIt(Math.min(n, 100), () => client.status(1));
  const dup = await timeIt(n, (i) => client.deploy(1, requests[Math.abs(i) % n]));

  const msg = crypto.randomBytes(payload.length);
  const sig = twinKey.sign(msg);
  const pub = crypto.createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), twinKey.publicKey]), format: "der", type: "spki" });
  const rawVerify = await timeIt(n, () => crypto.verify(null, msg, pub, sig));
  const fullVerify = await timeIt(n, (i) => verifyDeployRequest(requests[Math.abs(i) % n], registry, { maxBytes: 256 * 1024 }));

  const rows = [
    ["bare NATS request/reply (baseline)", echo, 1],
    ["deploy: verify + admit + fsync'd commit + signed reply", deploy, deploy / echo],
    ["deploy again (idempotent duplicate)", dup, dup / echo],
    [`status, first page (100 of ${ledger.deployments().length} deployments)`, status, status / echo],
    [`status, every page (${ledger.deployments().length} deployments)`, statusAll, statusAll / echo],
    ["raw ed25519 verify (baseline)", rawVerify, 1],
    ["verify a deploy request (decode, validate, registry, signature)", fullVerify, fullVerify / rawVerify],
  ] as const;
  console.log(`node API benchmark, n=${n}, payload ${payload.length} bytes, ${os.cpus().length} CPUs, node ${process.version}`);
  for (const [name, us, ratio] of rows) console.log(`${name.padEnd(66)} ${us.toFixed(1).padStart(9)} µs/op  x${ratio.toFixed(2)}`);
  await nc.close();
  await api.close();
  await server.close();
  store.close();
  await nats.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
