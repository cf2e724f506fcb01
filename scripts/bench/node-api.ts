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
import { findNatsServer, startEmbeddedNats, natsBus } from "../../agent/bus/nats";
import { Subjects } from "../../agent/bus/subjects";
import { DEFAULT_POLICY } from "../../agent/capacity/model";
import { cryptoReady, signerFromSeed, toHex } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { createMetrics } from "../../agent/metrics/metrics";
import { FileRegistry } from "../../agent/registry/file";
import { Store } from "../../agent/store/store";
import { Announcer } from "../../agent/gossip/announcer";
import { arg, machine, percentile, phase, report, type Row } from "./report";
import { describe, profiled, shareOf } from "./profile";

/** Per-op latencies in µs after a warm-up; mean, p50, p99. */
async function sample(n: number, fn: (i: number) => Promise<unknown> | unknown): Promise<{ mean: number; p50: number; p99: number }> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(-1 - i); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    xs.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  return { mean: xs.reduce((a, b) => a + b, 0) / n, p50: percentile(xs, 50), p99: percentile(xs, 99) };
}

async function timeIt(n: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number> {
  return (await sample(n, fn)).mean;
}

/** `total` calls of fn spread over `workers` concurrent loops; ops per second. */
async function concurrently(workers: number, total: number, fn: (w: number, i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = next++; i < total; i = next++) await fn(w, i);
    }),
  );
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const n = arg("n", 2000);
  const conc = arg("concurrency", 64);
  const wireSamples = arg("wire", 200);
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
  const api_metrics = createMetrics();
  const ledger = new Ledger({ power: "up", rented: false, policy: DEFAULT_POLICY }, { store, logger: log, now: Date.now, metrics: api_metrics }, { cru: 1e9, mru: big, sru: big, hru: big, ipv4u: 0, gpu: 0 });
  const server = await connect({ servers: nats.url });
  const subjects = new Subjects();
  const api = new NodeApi(
    // one client measuring latency: the per-requester rates (api/limits.ts) would only measure themselves
    { nodeId: 1, farmId: 1, twinId: 1, maxRequestBytes: 256 * 1024, deleteSkewMs: 300_000, limits: { ...API_LIMITS_DEFAULTS, readRate: 1e6, readBurst: 1e6, writeRate: 1e6, writeBurst: 1e6, replyBytesPerSecond: 1024 ** 3 } },
    { bus: natsBus(server), subjects, ledger, store, registry, signer: nodeKey, logger: log, metrics: api_metrics, now: Date.now },
  );
  api.start();
  server.subscribe("bench.echo", {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  await server.flush();
  const nc = await connect({ servers: nats.url });
  const client = new NodeClient(natsBus(nc), subjects);

  const spec = (id: number) => {
    const r = parseDeployment({ id, twinId: 7, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB", rootfs: "2GiB" }, { name: "disk", type: "zmount", size: "10GiB" }] });
    if (!r.ok) throw new Error(r.refusal.message);
    return r.value;
  };
  // one fresh request for each deploy below: n + 200 first, n serial, n concurrent, up to n/4 under the profiler, one per change-to-wire sample
  const requests = Array.from({ length: 4 * n + wireSamples + 400 }, (_, i) => buildDeployRequest(spec(i + 1), [{ twinId: 7, signer: twinKey }]));
  const payload = requests[0];

  phase(`bare request/reply, ${n} serial`);
  const echoS = await sample(n, () => nc.request("bench.echo", payload));
  const echo = echoS.mean;
  phase(`deploy round trips, ${n} serial`);
  const deployS = await sample(n, (i) => client.deploy(1, requests[i < 0 ? n - 1 - i : i]));
  // 64 concurrent requesters, each its own connection; the same number of decisions, serial first
  const conns = await Promise.all(Array.from({ length: conc }, () => connect({ servers: nats.url })));
  let nextReq = n + 200;
  // raw requests (the reply's signature is not checked here: the client side shares this process's CPU)
  const before = ledger.deployments().length;
  phase(`durable decisions/s: ${n} serial, then ${n} from ${conc} requesters`);
  const cpuA = process.cpuUsage();
  const serialRate = await concurrently(1, n, () => nc.request(subjects.nodeDeploy(1), requests[nextReq++]));
  const cpuSerial = process.cpuUsage(cpuA);
  const groups0 = api_metrics.groupCommits.get();
  const groupWrites0 = api_metrics.groupCommitWrites.get();
  const cpuB = process.cpuUsage();
  const concRate = await concurrently(conc, n, (w) => conns[w].request(subjects.nodeDeploy(1), requests[nextReq++], { timeout: 30_000 }));
  const cpuConc = process.cpuUsage(cpuB);
  const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000 / n; // ms of CPU per decision
  if (ledger.deployments().length !== before + 2 * n) throw new Error(`expected ${2 * n} new deployments, the ledger has ${ledger.deployments().length - before}`);
  const echoConcRate = await concurrently(conc, n, (w) => conns[w].request("bench.echo", payload));
  const groups = api_metrics.groupCommits.get() - groups0;
  const groupWrites = api_metrics.groupCommitWrites.get() - groupWrites0;
  // evidence for the concurrent rate: the same load again, a quarter as long, under the CPU profiler
  phase("concurrent decisions under the profiler (evidence)");
  const nProf = Math.max(50, Math.floor(n / 4));
  const wProf = process.hrtime.bigint();
  const cpuP = process.cpuUsage();
  const concProf = await profiled("node-api-concurrent", () => concurrently(conc, nProf, (w) => conns[w].request(subjects.nodeDeploy(1), requests[nextReq++], { timeout: 30_000 })));
  const cpuProf = process.cpuUsage(cpuP);
  const wallProf = Number(process.hrtime.bigint() - wProf) / 1e6;
  await Promise.all(conns.map((c) => c.close()));

  // the parts of a lone deploy, each alone: an fsync'd commit of one deployment (in the agent's own
  // store, beside the ledger's rows: same file, same WAL; ids the ledger never uses), a deploy
  // request's verification, a reply's signature
  phase("the parts of a lone deploy, each alone");
  const units0 = { cru: 1, mru: 2 ** 30, sru: 2 ** 31, hru: 0, ipv4u: 0, gpu: 0 };
  const commitS = await sample(Math.min(n, 500), (i) => store.applyDeploymentWrites([{ kind: "create", res: { id: 1_000_000_000 + i + 300, twinId: 7, version: 1, units: units0, hash: `h${i}`, createdMs: Date.now(), updatedMs: Date.now() }, request: payload }]));
  const signS = await sample(Math.min(n, 500), () => nodeKey.sign(payload));
  const verifyS = await sample(Math.min(n, 500), (i) => verifyDeployRequest(requests[Math.abs(i) % n], registry, { maxBytes: 256 * 1024 }));

  phase(`change to wire, ${wireSamples} samples`);
  // change to wire: a raw subscriber times the announcement after the accepted reply
  const announcer = new Announcer(
    { nodeId: 1, farmId: 1, twinId: 1, heartbeatMs: 3_600_000, debounceMs: 75, sequenceBlock: 1000 },
    { source: ledger, bus: { publish: (subj: string, data: Uint8Array) => ((published = process.hrtime.bigint()), server.publish(subj, data)) }, subjects, signer: nodeKey, store, logger: log, metrics: null, now: Date.now },
  );
  // the agent's own part: from the ledger's change event to the announcement handed to nats.js
  let changed = 0n;
  let published = 0n;
  ledger.onChange(() => (changed = process.hrtime.bigint()));
  const agentSide: number[] = [];
  announcer.start();
  const watcher = await connect({ servers: nats.url });
  let onWire: (() => void) | null = null;
  watcher.subscribe(subjects.capacity(1, 1), { callback: () => onWire?.() });
  await watcher.flush();
  const wire: number[] = [];
  // deletes change the ledger too: one deployment each, created earlier
  for (let i = 0; i < wireSamples; i++) {
    await new Promise((r) => setTimeout(r, 80)); // a quiet period: past the 75 ms window
    let seen = 0n;
    const got = new Promise<void>((r) => (onWire = () => ((seen = process.hrtime.bigint()), r())));
    await client.deploy(1, requests[nextReq++]);
    const replied = process.hrtime.bigint();
    await got;
    wire.push(Number(seen - replied) / 1e6);
    agentSide.push(Number(published - changed) / 1e6);
  }
  onWire = null;
  // one-way publish to a subscriber: the wire's own latency (baseline)
  const rawWire: number[] = [];
  for (let i = 0; i < wireSamples; i++) {
    const t0 = process.hrtime.bigint();
    const got = new Promise<void>((r) => (onWire = () => r()));
    server.publish(subjects.capacity(1, 1), payload);
    await got;
    rawWire.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  announcer.close();
  await watcher.close();
  phase("status, duplicates, verify");
  const status = await timeIt(Math.min(n, 500), () => client.statusPage(1));
  const statusAll = await timeIt(Math.min(n, 100), () => client.status(1));
  const dup = await timeIt(n, (i) => client.deploy(1, requests[Math.abs(i) % n]));

  const msg = crypto.randomBytes(payload.length);
  const sig = twinKey.sign(msg);
  const pub = crypto.createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), twinKey.publicKey]), format: "der", type: "spki" });
  const rawVerify = await timeIt(n, () => crypto.verify(null, msg, pub, sig));
  const fullVerify = await timeIt(n, (i) => verifyDeployRequest(requests[Math.abs(i) % n], registry, { maxBytes: 256 * 1024 }));

  const ms = (us: number) => us / 1000;
  const wp99 = percentile(wire, 99);
  const deployMet = deployS.p50 <= 2 * echoS.p50;
  const partsUs = echoS.p50 + verifyS.p50 + commitS.p50 + signS.p50;
  const deployLimits = `a lone deploy waits, in series, for: the bare round trip (p50 ${ms(echoS.p50).toFixed(2)} ms), the request's verification (${ms(verifyS.p50).toFixed(2)} ms), an fsync'd SQLite commit (${ms(commitS.p50).toFixed(2)} ms alone, p99 ${ms(commitS.p99).toFixed(2)} ms), the reply's signature (${ms(signS.p50).toFixed(2)} ms), then the client checks it: ${ms(partsUs).toFixed(2)} ms of parts against the measured p50 ${ms(deployS.p50).toFixed(2)} ms (the parts are measured after the deploys: an fsync's time moves with the disk's other writers). The fsync alone is ${(commitS.p50 / echoS.p50).toFixed(1)}x a bare round trip on this disk: a reply that says accepted only once the decision is on disk cannot come within 2x bare, and a lone requester has no one to share its fsync with`;
  const concMet = concRate >= 3 * serialRate;
  const cpuPerProf = (cpuProf.user + cpuProf.system) / 1000 / nProf;
  const concLimits = `under the profiler, ${nProf} decisions from ${conc} requesters: ${cpuPerProf.toFixed(2)} ms of CPU per decision in this process (the agent AND its ${conc} requesters) against ${(wallProf / nProf).toFixed(2)} ms of wall time per decision: when the two are close the decisions are CPU-bound on one core; sqlite ${(shareOf(concProf.summary, /better-sqlite3/) * 100).toFixed(1)}%, node:crypto ${(shareOf(concProf.summary, /crypto/) * 100).toFixed(1)}% of the time; ${describe(concProf.summary)}`;
  const over5 = wire.filter((x) => x > 5).length;
  const wireLimits = `the agent's own part, from the ledger's change event to the announcement handed to nats.js, is p50 ${percentile(agentSide, 50).toFixed(2)} ms, p99 ${percentile(agentSide, 99).toFixed(2)} ms; ${over5} of ${wire.length} samples are over 5 ms; a raw publish to a subscriber has p99 ${percentile(rawWire, 99).toFixed(2)} ms (max ${Math.max(...rawWire).toFixed(1)} ms) in the same run: the tail is this process or nats-server waiting for a core (load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})`;
  const rows: Row[] = [
    { name: "bare NATS request/reply, p50 (baseline)", value: ms(echoS.p50), unit: "ms" },
    { name: "fsync'd SQLite commit of one deployment, alone, p50 (baseline)", value: ms(commitS.p50), unit: "ms", baseline: { name: "bare req/reply p50", value: ms(echoS.p50) }, ratio: commitS.p50 / echoS.p50 },
    { name: "sign a reply (ed25519), alone, p50 (baseline)", value: signS.p50, unit: "µs" },
    { name: "deploy round trip p50 (verify, admit, fsync'd commit, signed reply)", value: ms(deployS.p50), unit: "ms", baseline: { name: "bare req/reply p50", value: ms(echoS.p50) }, ratio: deployS.p50 / echoS.p50, target: { text: "p50 <= 2x bare NATS", met: deployMet }, note: deployMet ? undefined : "one fsync per serial decision: a lone request cannot share its fsync", limits: deployLimits },
    { name: "deploy round trip p99", value: ms(deployS.p99), unit: "ms", baseline: { name: "bare req/reply p99", value: ms(echoS.p99) }, ratio: deployS.p99 / echoS.p99 },
    { name: "deploy again (idempotent duplicate), mean", value: ms(dup), unit: "ms", baseline: { name: "bare req/reply mean", value: ms(echo) }, ratio: dup / echo },
    { name: "durable decisions/s, serial (one requester)", value: serialRate, unit: "/s" },
    { name: `durable decisions/s, ${conc} concurrent requesters (group commit)`, value: concRate, unit: "/s", baseline: { name: "serial", value: serialRate }, ratio: concRate / serialRate, target: { text: `${conc} concurrent >= 3x serial`, met: concMet }, note: `${(groupWrites / Math.max(1, groups)).toFixed(1)} writes per fsync on average; bare NATS req/reply at ${conc} concurrent: ${Math.round(echoConcRate)}/s`, limits: concLimits },
    { name: "CPU per decision, serial (this process: agent side and requesters)", value: cpuMs(cpuSerial), unit: "ms", note: `wall time per decision ${(1000 / serialRate).toFixed(2)} ms: the rest is waiting (fsync, wire)` },
    { name: `CPU per decision, ${conc} concurrent`, value: cpuMs(cpuConc), unit: "ms", note: `wall time per decision ${(1000 / concRate).toFixed(2)} ms: when the two are close, decisions are CPU-bound and a shared fsync cannot add more` },
    { name: "change to wire p50 (after the accepted reply)", value: percentile(wire, 50), unit: "ms", baseline: { name: "raw publish to subscriber p50", value: percentile(rawWire, 50) }, ratio: percentile(wire, 50) / percentile(rawWire, 50) },
    { name: "change to wire p99 (after the accepted reply)", value: wp99, unit: "ms", baseline: { name: "raw publish to subscriber p99", value: percentile(rawWire, 99) }, ratio: wp99 / percentile(rawWire, 99), target: { text: "p99 <= 5 ms", met: wp99 <= 5 }, limits: wireLimits },
    { name: "agent side of change to wire p99 (change event to publish: build, sign, hand to nats.js)", value: percentile(agentSide, 99), unit: "ms" },
    { name: `status, first page (100 of ${ledger.deployments().length} deployments), mean`, value: ms(status), unit: "ms", baseline: { name: "bare req/reply mean", value: ms(echo) }, ratio: status / echo },
    { name: `status, every page (${ledger.deployments().length} deployments), mean`, value: ms(statusAll), unit: "ms", baseline: { name: "bare req/reply mean", value: ms(echo) }, ratio: statusAll / echo },
    { name: "verify a deploy request (decode, validate, registry, signature)", value: fullVerify, unit: "µs", baseline: { name: "raw ed25519 verify", value: rawVerify }, ratio: fullVerify / rawVerify },
  ];
  report({ bench: "node-api", title: `node API, n=${n}, payload ${payload.length} bytes; ${machine()}`, rows });
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
