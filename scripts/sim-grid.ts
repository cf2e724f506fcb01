/**
 * A simulated grid: N real agent instances (Ledger + Gossip, each with its own NATS connection,
 * its own node key and its own store) in this one process, against one nats-server started here
 * with its monitoring port. The stores are real SQLite stores on a memory file system (/dev/shm
 * when present): the simulation's only stand-in. The registry is a file registry (the `--no-chain`
 * path) listing every simulated node, shared read-only by the instances.
 *
 * It measures, each beside a baseline from the same run:
 *   - convergence: a capacity change on one agent until every peer of its farm holds it (p50, p99),
 *     against a bare NATS fan-out of one message to the same number of subscribers;
 *   - catch-up: a newly started agent until it holds its farm's full view;
 *   - find over all agents: time to the first K answers and to the end of the request (deadline);
 *   - bytes in and out per node per hour, from the server's /connz, over an idle period (heartbeats);
 *   - Serf (`serf agent` on loopback, min(N, 100) members) spreading the same change as a tag, when
 *     installed (scripts/bench/serf.ts).
 *
 * Run: scripts/sim-grid --agents 100 --farms 1 [--changes 30] [--idle 10] [--heartbeat 30] [--json]
 * Every simulated agent verifies every announcement of its farm, on this machine's cores: a farm
 * of 1,000 costs 999 signature checks per change here, where the real grid spreads them over 999
 * machines. Read CPU-bound figures with that in mind (the report says when it was CPU-bound).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Ledger } from "../agent/admission/ledger";
import { parseDeployment } from "../agent/admission/spec";
import { findNatsServer, freePort, natsAnswers, natsBus } from "../agent/bus/nats";
import { Subjects } from "../agent/bus/subjects";
import { DEFAULT_POLICY } from "../agent/capacity/model";
import { GiB } from "../agent/capacity/units";
import { findCapacity } from "../agent/gossip/find";
import { Gossip } from "../agent/gossip/gossip";
import { GOSSIP_DEFAULTS } from "../agent/gossip/options";
import { encodeFindRequest } from "../agent/gossip/wire";
import { cryptoReady, signerFromSeed, toHex, type Signer } from "../agent/identity/keys";
import { silentLogger } from "../agent/log/logger";
import { FileRegistry } from "../agent/registry/file";
import { Store } from "../agent/store/store";
import { scriptArgs, scriptFail } from "./script-util";
import { machine, percentile, phase, report, type Row } from "./bench/report";
import { describe, profiled } from "./bench/profile";
import { startSerf, type SerfCluster } from "./bench/serf";

const fail = (m: string): never => scriptFail("sim-grid", m);
// --json and --save-profile are read where they act (bench/report, bench/profile)
const cli = scriptArgs(
  fail,
  { strings: ["agents", "farms", "changes", "idle", "heartbeat", "find-k", "serf-rounds", "save-profile"], booleans: ["no-serf", "json"] },
  { help: "usage: scripts/sim-grid --agents N --farms F [--changes K] [--idle SECONDS] [--heartbeat SECONDS] [--find-k K] [--serf-rounds K] [--no-serf] [--json]" },
);

const N = cli.int("agents", 100, 2, 5000);
const F = cli.int("farms", 1, 1, N);
const CHANGES = cli.int("changes", 30, 1, 10_000);
const HEARTBEAT_S = cli.int("heartbeat", 30, 1, 3600);
/** the idle window for bytes per hour: at least one heartbeat interval, so every agent sends one */
const IDLE_S = cli.int("idle", HEARTBEAT_S + 5, 1, 3600);
const FIND_K = cli.int("find-k", 20, 1, 100_000);
const SERF_ROUNDS = cli.int("serf-rounds", 5, 1, 100);
const NO_SERF = cli.bool("no-serf");
const log = silentLogger();
const subjects = new Subjects();
const farmOf = (i: number) => (i % F) + 1; // node ids 1..N, round robin over farms

interface Sim {
  nodeId: number;
  farmId: number;
  nc: NatsConnection;
  ledger: Ledger;
  gossip: Gossip;
  store: Store;
  /** node id -> newest sequence this agent's view accepted */
  seen: Map<number, number>;
  onSeen?: (nodeId: number, seq: number) => void;
}

function varz(monitor: number, what: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: monitor, path: what }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve(JSON.parse(body)));
      })
      .on("error", reject);
  });
}

async function startServer(dir: string): Promise<{ url: string; monitor: number; child: ChildProcess }> {
  const bin = findNatsServer();
  if (!bin) fail("nats-server not found (apt-get install nats-server)");
  const port = await freePort();
  const monitor = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  // monitoring for /connz and /varz (the default connection limit, 64K, holds the simulation)
  const child = spawn(bin!, ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitor)], { stdio: "ignore" });
  const end = Date.now() + 10_000;
  while (!(await natsAnswers(url, 500))) {
    if (Date.now() > end) fail("nats-server did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
  void dir;
  return { url, monitor, child };
}

/** How long the event loop takes to come back to a timer of 0 ms: the process's backlog. */
async function loopLagMs(): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, 0));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function deployInput(id: number) {
  const r = parseDeployment({ id, twinId: 1, version: 1, workloads: [{ name: "d", type: "zmount", size: "1GiB" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return { spec: r.value, units: { cru: 0, mru: 0, sru: GiB, hru: 0, ipv4u: 0, gpu: 0 }, hash: `h${id}` };
}

async function startAgent(i: number, signer: Signer, url: string, registry: FileRegistry, root: string): Promise<Sim> {
  const nodeId = i + 1;
  const farmId = farmOf(i);
  const dir = path.join(root, `a${nodeId}`);
  fs.mkdirSync(dir, { recursive: true });
  const store = Store.open(dir);
  const ledger = new Ledger({ power: "up", rented: false, policy: DEFAULT_POLICY }, { store, logger: log, now: Date.now, metrics: null }, { cru: 64, mru: 256 * GiB, sru: 100_000 * GiB, hru: 0, ipv4u: 4, gpu: 0 });
  // a loaded machine: 1,000 connections take a while; a dial that times out is tried again
  const nc = await connect({ servers: url, name: `sim-${nodeId}`, timeout: 20_000, waitOnFirstConnect: true, maxReconnectAttempts: 20, reconnectTimeWait: 500 });
  const gossip = new Gossip({ ...GOSSIP_DEFAULTS, nodeId, farmId, twinId: nodeId, heartbeatMs: HEARTBEAT_S * 1000 }, { bus: natsBus(nc), subjects, ledger, store, registry, signer, logger: log, metrics: null, now: Date.now });
  const sim: Sim = { nodeId, farmId, nc, ledger, gossip, store, seen: new Map() };
  // observe (not change) the view: when it accepts an announcement, note its node and sequence
  const offer = gossip.view.offer.bind(gossip.view);
  gossip.view.offer = async (...args: Parameters<typeof offer>) => {
    const v = await offer(...args);
    if (v && v.ok) {
      const a = v.value.peer.announcement;
      sim.seen.set(a.nodeId, a.sequence);
      sim.onSeen?.(a.nodeId, a.sequence);
    }
    return v;
  };
  await gossip.start();
  return sim;
}

async function main(): Promise<void> {
  await cryptoReady();
  const root = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "sim-grid-"));
  const server = await startServer(root);
  const sims: Sim[] = [];
  const extra: NatsConnection[] = [];
  const rows: Row[] = [];
  let serf: Promise<SerfCluster> | null = null;
  const cpu0 = process.cpuUsage();
  try {
    const signers = Array.from({ length: N + 1 }, () => signerFromSeed("ed25519", crypto.randomBytes(32)));
    const regFile = path.join(root, "registry.json");
    fs.writeFileSync(regFile, JSON.stringify({ twins: [], nodes: signers.map((s, i) => ({ id: i + 1, farmId: farmOf(i), twinId: i + 1, publicKey: toHex(s.publicKey) })) }));
    const registry = new FileRegistry(regFile);

    phase(`start ${N} agents`);
    const tStart = Date.now();
    const BATCH = 10;
    for (let i = 0; i < N; i += BATCH) {
      const batch = await Promise.all(Array.from({ length: Math.min(BATCH, N - i) }, (_, k) => startAgent(i + k, signers[i + k], server.url, registry, root)));
      sims.push(...batch);
      // let the process catch up (the new agents' announcements and sync answers are verified by
      // their farms) before starting more: on a loaded machine, starting faster than the agents can
      // verify only queues work until connections time out
      const until = Date.now() + 10_000;
      while ((await loopLagMs()) > 20 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    }
    const farmSize = (f: number) => sims.filter((s) => s.farmId === f).length;
    phase("settle: every agent holds its farm");
    // settle: every agent holds its farm
    const settleEnd = Date.now() + 120_000;
    while (sims.some((s) => s.seen.size < farmSize(s.farmId) - 1) && Date.now() < settleEnd) await new Promise((r) => setTimeout(r, 100));
    const startS = (Date.now() - tStart) / 1000;
    const complete = sims.filter((s) => s.seen.size >= farmSize(s.farmId) - 1).length;

    phase(`convergence: ${CHANGES} changes`);
    // convergence: change one agent's ledger, wait until every farm peer accepted that sequence
    let nextId = 1;
    const converge = async (changes: number, offset: number): Promise<number[]> => {
      const conv: number[] = [];
      for (let c = offset; c < offset + changes; c++) {
        const src = sims[(c * 7919) % sims.length];
        const peers = sims.filter((s) => s.farmId === src.farmId && s !== src);
        await new Promise((r) => setTimeout(r, 100)); // past the announcer's window: a leading-edge change
        const seqBefore = src.gossip.announcer.current().announcement.sequence;
        let t0 = 0n;
        const done = new Promise<number>((resolve) => {
          let left = peers.length;
          const timer = setTimeout(() => resolve(NaN), 10_000);
          for (const p of peers)
            p.onSeen = (node, seq) => {
              if (node !== src.nodeId || seq <= seqBefore) return;
              p.onSeen = undefined;
              if (--left === 0) {
                clearTimeout(timer);
                resolve(Number(process.hrtime.bigint() - t0) / 1e6);
              }
            };
        });
        t0 = process.hrtime.bigint();
        src.ledger.deploy(deployInput(nextId++), new Uint8Array(8));
        conv.push(await done);
        for (const p of peers) p.onSeen = undefined;
      }
      return conv;
    };
    const conv = await converge(CHANGES, 0);
    phase("bare fan-out baseline");
    // baseline: a bare NATS fan-out of one message to as many subscribers (one per agent connection)
    const fanSize = Math.max(...Array.from({ length: F }, (_, f) => farmSize(f + 1))) - 1;
    const fan: number[] = [];
    const fanSubs = sims.slice(0, fanSize);
    let fanLeft = 0;
    let fanDone: (() => void) | null = null;
    const subsFan = fanSubs.map((s) => s.nc.subscribe("sim.fanout", { callback: () => void (--fanLeft === 0 && fanDone?.()) }));
    await Promise.all(fanSubs.map((s) => s.nc.flush()));
    const pub = await connect({ servers: server.url });
    extra.push(pub);
    for (let c = 0; c < CHANGES; c++) {
      fanLeft = fanSubs.length;
      const t0 = process.hrtime.bigint();
      const got = new Promise<void>((r) => (fanDone = r));
      pub.publish("sim.fanout", new Uint8Array(400));
      await got;
      fan.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await new Promise((r) => setTimeout(r, 20));
    }
    subsFan.forEach((s) => s.unsubscribe());

    const fs50 = percentile(fan, 50);
    const fs99 = percentile(fan, 99);
    const c50 = percentile(conv, 50);
    const c99 = percentile(conv, 99);
    const convTarget = N <= 100 ? 50 : 250;
    let convLimits: string | undefined;
    if (c99 > convTarget) {
      // evidence: the same changes again under the CPU profiler, and the CPU this process spent per change
      phase("convergence under the profiler (evidence)");
      const k = Math.min(10, CHANGES);
      const cpuA = process.cpuUsage();
      const tA = process.hrtime.bigint();
      const { result, summary } = await profiled(`sim-grid-${N}-convergence`, () => converge(k, CHANGES));
      const cpu = process.cpuUsage(cpuA);
      const wallMs = Number(process.hrtime.bigint() - tA) / 1e6 - k * 100; // without the 100 ms pauses
      const cpuPerChange = (cpu.user + cpu.system) / 1000 / k;
      convLimits = `this process (all ${sims.length} agents) used ${cpuPerChange.toFixed(1)} ms of CPU per change (${fanSize} accept paths, one per simulated peer, plus heartbeats) against a convergence p50 of ${percentile(result, 50).toFixed(1)} ms in these ${k} changes (${((cpuPerChange * k) / Math.max(1, wallMs) * 100).toFixed(0)}% of one core busy while converging); ${describe(summary)}`;
    }
    rows.push(
      { name: `start ${N} agents in ${F} farm(s) until each holds its farm`, value: startS, unit: "s", note: `${complete}/${N} complete` },
      { name: `bare NATS fan-out to ${fanSize} subscribers, p50 (baseline)`, value: fs50, unit: "ms" },
      { name: `convergence p50: a change on one agent until all ${fanSize} farm peers hold it`, value: c50, unit: "ms", baseline: { name: "bare fan-out p50", value: fs50 }, ratio: c50 / fs50 },
      { name: `convergence p99 (${CHANGES} changes)`, value: c99, unit: "ms", baseline: { name: "bare fan-out p99", value: fs99 }, ratio: c99 / fs99, target: { text: `p99 <= ${convTarget} ms at ${N <= 100 ? 100 : 1000} agents`, met: c99 <= convTarget }, note: c99 > convTarget ? `each of the ${fanSize} simulated peers verifies the signature in this one process: ${fanSize} verifies per change on one core here, one per machine on the grid` : undefined, limits: convLimits },
    );

    phase("catch-up of a newcomer");
    // catch-up: a new agent joins farm 1 and must hold the whole farm
    {
      const i = N; // its key is the last one in the registry
      const t0 = process.hrtime.bigint();
      const sim = await startAgent(i, signers[i], server.url, registry, root);
      const startedMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const want = sims.filter((s) => s.farmId === sim.farmId).length;
      const end = Date.now() + 10_000;
      while (sim.seen.size < want && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
      const fullMs = Number(process.hrtime.bigint() - t0) / 1e6;
      rows.push({ name: `catch-up: a newcomer holds its farm's ${want} peers`, value: fullMs, unit: "ms", baseline: { name: "start() returned", value: startedMs }, target: { text: "< 1 s, one round trip", met: sim.seen.size >= want && fullMs < 1000 }, note: `${sim.seen.size}/${want} held; start() waits syncQuietMs (${GOSSIP_DEFAULTS.syncQuietMs} ms) after the last answer` });
      sims.push(sim);
    }

    phase("find over every agent");
    // find over every agent: raw replies to the first K and to the end, then the verified client
    {
      const nc = await connect({ servers: server.url });
      extra.push(nc);
      const want = { cru: 1, mru: GiB, sru: GiB, hru: 0, ipv4u: 0, gpu: 0 };
      const inbox = `_INBOX.sim.${crypto.randomBytes(4).toString("hex")}`;
      let count = 0;
      let tK = NaN;
      let tLast = NaN;
      const t0 = process.hrtime.bigint();
      const sub = nc.subscribe(inbox, {
        callback: () => {
          count++;
          const t = Number(process.hrtime.bigint() - t0) / 1e6;
          if (count === FIND_K) tK = t;
          tLast = t;
        },
      });
      await nc.flush();
      nc.publish(subjects.capacityFind(), encodeFindRequest({ want, farmId: 0, limit: 0 }), { reply: inbox });
      await new Promise((r) => setTimeout(r, 2000));
      sub.unsubscribe();
      const t1 = process.hrtime.bigint();
      const out = await findCapacity(natsBus(nc), subjects, { want, farmId: 0, limit: 0 }, { registry });
      const verifiedMs = Number(process.hrtime.bigint() - t1) / 1e6;
      rows.push(
        { name: `find over ${sims.length} agents: first ${FIND_K} answers`, value: tK, unit: "ms" },
        { name: `find over ${sims.length} agents: last of ${count} answers`, value: tLast, unit: "ms" },
        { name: `find, verified client (quiet ${300} ms / deadline 1500 ms): ${out.found.length} fitting`, value: verifiedMs, unit: "ms", note: "answers are rate-limited per node (answersPerSecond); the client stops 300 ms after the last answer" },
      );
    }

    phase(`bytes per node per hour: idle ${IDLE_S} s`);
    // the Serf members start while the agents idle: what is counted there is bytes on the wire,
    // which Serf's start (other processes, another port) neither adds to nor takes from; its
    // tag changes are timed after the window, with the agents' figures all taken
    const SERF_N = Math.min(N, 100);
    if (!NO_SERF) serf = startSerf({ n: SERF_N, formS: 50 });
    // bytes per node per hour: /connz over an idle period (heartbeats only)
    {
      const ids = new Set(sims.map((s) => `sim-${s.nodeId}`));
      const snap = async () => {
        const c = await varz(server.monitor, "/connz?limit=100000");
        const m = new Map<string, { in: number; out: number }>();
        for (const x of c.connections ?? []) if (ids.has(x.name)) m.set(x.name, { in: x.in_bytes, out: x.out_bytes });
        return m;
      };
      const a = await snap();
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, IDLE_S * 1000));
      const b = await snap();
      const hours = (Date.now() - t0) / 3_600_000;
      let sent = 0;
      let recv = 0;
      for (const [k, v] of b) {
        const o = a.get(k);
        if (!o) continue;
        sent += v.in - o.in; // the server's in is what the agent sent
        recv += v.out - o.out;
      }
      const per = (x: number) => x / b.size / hours;
      const farm = Math.max(...Array.from({ length: F }, (_, f) => farmSize(f + 1)));
      // what a heartbeat alone costs: one announcement out, (farm - 1) in, per heartbeat interval
      const annBytes = sims[0].gossip.announcer.current().bytes.length + 40;
      const ideal = ((3600 / HEARTBEAT_S) * annBytes * farm);
      rows.push(
        { name: `bytes out per node per hour (idle, heartbeat ${HEARTBEAT_S} s)`, value: per(sent), unit: "B/h", note: `over ${IDLE_S} s from the server's /connz${IDLE_S < HEARTBEAT_S ? "; the window is shorter than a heartbeat: too low" : ""}` },
        { name: `bytes in per node per hour (farm of ${farm})`, value: per(recv), unit: "B/h", baseline: { name: "announcement fan-in, heartbeats only (computed)", value: ideal }, ratio: per(recv) / ideal },
      );
    }

    const cpu = process.cpuUsage(cpu0);
    rows.push({ name: "CPU of the simulation process (all agents), whole run", value: (cpu.user + cpu.system) / 1e6, unit: "s" });
    if (serf) {
      phase("Serf baseline: members forming");
      const cluster = await serf;
      phase("Serf baseline: tag changes");
      const serfRows = await cluster.measure(SERF_ROUNDS, 20);
      rows.push(...serfRows);
      const serfAll = serfRows.find((r) => r.name.includes("until all"));
      // the same members: a farm of SERF_N against a Serf cluster of SERF_N
      if (serfAll && Number.isFinite(serfAll.value) && fanSize === SERF_N - 1)
        rows.push({ name: `convergence p99 against Serf's tag spread to the same ${fanSize} peers (second baseline)`, value: c99, unit: "ms", baseline: { name: "Serf, median of all-members times", value: serfAll.value }, ratio: c99 / serfAll.value });
    } else rows.push({ name: `Serf tag spread to ${SERF_N} members`, value: NaN, unit: "ms", note: "skipped (--no-serf)" });
    report({ bench: `sim-grid-${N}`, title: `sim-grid: ${N} agents in ${F} farm(s), one process, heartbeat ${HEARTBEAT_S} s; ${machine()}`, rows });
  } finally {
    for (const s of sims) {
      s.gossip.close();
      await s.nc.close().catch(() => undefined);
      s.store.close();
    }
    for (const nc of extra) await nc.close().catch(() => undefined);
    if (serf) (await serf).close();
    server.child.kill("SIGTERM");
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`sim-grid: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
