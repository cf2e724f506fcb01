/**
 * Forged gossip and find floods against a real agent that resolves keys through a real chain
 * stand-in (issue 11 items 2 and 8): 20,000 validly signed announcements naming node ids nobody
 * registered must not turn into 20,000 chain lookups nor grow the agent's memory, and a find flood
 * from one connection is answered only up to its rate. CPU time of the agent process
 * (/proc/PID/stat) is measured idle before each flood, over it and idle after it.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, createInbox, type NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../../agent/bus/subjects";
import { GiB } from "../../agent/capacity/units";
import { findCapacity } from "../../agent/gossip/find";
import { encodeFindRequest, sealAnnouncement, type Announcement } from "../../agent/gossip/wire";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";
import { cpuPercentOver, cpuWindow, floodCpuFigures } from "../utils/proc";
import { recordFigures } from "../faults/report";

const FORGED = 20_000;
const MiB = 1024 * 1024;

let nats: NatsServerHandle;
let chain: AgentProcess;
let agent: AgentProcess;
let nc: NatsConnection;
let metricsUrl: string;

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}: the agent exited`);
  return Number(m[1]) * 1024;
}

async function metric(re: RegExp): Promise<number> {
  const body = await (await fetch(metricsUrl)).text();
  return [...body.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  const dir = tmpDir("gossip-flood-");
  const key = path.join(dir, "node.json");
  expect((await cli(["keys", "new", "--out", key])).code).toBe(0);
  chain = await startChain(["--nats", nats.url, "--data", path.join(dir, "chain")]);
  // no registry file: every node key comes from the chain
  agent = await startAgent(["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "1", "--farm-id", "1", "--key", key, "--metrics-port", "0"]);
  metricsUrl = `http://127.0.0.1:${agent.logs.find((l) => l.event === "metrics_listening")!.port}/metrics`;
  nc = await connect({ servers: nats.url, name: "forger" });
});

afterAll(async () => {
  await nc?.close();
  await agent?.stop();
  await chain?.stop();
  await nats?.stop();
});

test("20,000 forged announcements of unknown node ids: chain lookups rate-limited, every one dropped, memory bounded", async () => {
  const subjects = new Subjects();
  const forger = signerFromSeed("ed25519", crypto.randomBytes(32));
  const units = { cru: 4, mru: 8 * GiB, sru: 100 * GiB, hru: 0, ipv4u: 0, gpu: 0 };
  const zero = { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };
  // count what reaches the chain (a plain subscriber sees every request on the subject)
  let chainRequests = 0;
  const spy = nc.subscribe(subjects.chain(">"), { callback: () => void chainRequests++ });
  await nc.flush();
  const pid = agent.child.pid!;
  const baseline = rss(pid);
  const idleCpuPct = await cpuPercentOver(pid, 2000);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 25);
  const dropped0 = await metric(/^capacity_agent_gossip_dropped_total\{reason="unknown_node"\} (\d+)$/gm);
  const t0 = Date.now();
  const floodCpu = cpuWindow(pid);
  try {
    for (let i = 0; i < FORGED; i++) {
      const nodeId = 1_000_000 + i;
      const a: Announcement = { nodeId, farmId: 1, twinId: nodeId, sequence: 1, timestampMs: Date.now(), total: units, reserved: zero, reservable: units, used: zero, free: units, deployments: 0, power: "up", heartbeatMs: 30_000, agentVersion: "0.0.0" };
      nc.publish(subjects.capacity(1, nodeId), sealAnnouncement(forger, a).bytes);
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await nc.flush();
    // every forged announcement is judged and dropped as unknown_node
    await waitFor(async () => (await metric(/^capacity_agent_gossip_dropped_total\{reason="unknown_node"\} (\d+)$/gm)) - dropped0 >= FORGED, 60_000, "every forged announcement to be dropped");
  } finally {
    clearInterval(sampler);
    spy.unsubscribe();
  }
  const seconds = (Date.now() - t0) / 1000;
  const cpu = floodCpu.end();
  const shed = await metric(/^capacity_agent_requests_shed_total\{reason="global_rate",subject="chain_lookup"\} (\d+)$/gm);
  // node lookups: a burst of 100 and 50 a second (plus the agent's own few calls), not one per forged id
  expect(chainRequests).toBeLessThan(100 + 50 * seconds + 50);
  expect(shed).toBeGreaterThan(FORGED / 2);
  expect(peak - baseline).toBeLessThan(100 * MiB);
  await waitFor(() => rss(pid) - baseline < 40 * MiB, 20_000, "RSS back near the baseline");
  const afterMiB = +(rss(pid) / MiB).toFixed(1);
  const afterCpuPct = await cpuPercentOver(pid, 2000);
  recordFigures("forged-announcements", {
    forged: FORGED,
    seconds,
    chainRequests,
    shed,
    baselineMiB: +(baseline / MiB).toFixed(1),
    peakMiB: +(peak / MiB).toFixed(1),
    afterMiB,
    ...floodCpuFigures(cpu, idleCpuPct, afterCpuPct, FORGED),
  });
  expect(afterCpuPct).toBeLessThan(idleCpuPct + 15);
  // the agent still answers
  expect(await nc.request(subjects.nodeStatus(1), new Uint8Array(), { timeout: 5000 })).toBeTruthy();
});

test("a find flood from one connection is answered up to its rate; the rest are dropped and counted", async () => {
  const subjects = new Subjects();
  const inbox = createInbox();
  let answers = 0;
  const sub = nc.subscribe(`${inbox}.>`, { callback: (err, msg) => void (!err && msg.data.length > 0 && answers++) });
  const body = encodeFindRequest({ want: { cru: 1, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 }, farmId: 0, limit: 0 });
  const shed0 = await metric(/^capacity_agent_requests_shed_total\{[^}]*subject="find"[^}]*\} (\d+)$/gm);
  const pid = agent.child.pid!;
  const idleCpuPct = await cpuPercentOver(pid, 2000);
  const t0 = Date.now();
  const floodCpu = cpuWindow(pid);
  for (let i = 0; i < 5000; i++) {
    nc.publish(subjects.capacityFind(), body, { reply: `${inbox}.${i}` });
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await nc.flush();
  await waitFor(async () => answers + (await metric(/^capacity_agent_requests_shed_total\{[^}]*subject="find"[^}]*\} (\d+)$/gm)) - shed0 >= 5000, 20_000, "every find to be answered or shed");
  const seconds = (Date.now() - t0) / 1000;
  const cpu = floodCpu.end();
  sub.unsubscribe();
  const afterCpuPct = await cpuPercentOver(pid, 2000);
  recordFigures("find-flood", { sent: 5000, answers, seconds, rssMiB: +(rss(pid) / MiB).toFixed(1), idleCpuPctBefore: +idleCpuPct.toFixed(1), floodCpuS: cpu.cpuS, floodWallS: cpu.wallS, floodCpuPct: cpu.percent, idleCpuPctAfter: +afterCpuPct.toFixed(1) });
  expect(afterCpuPct).toBeLessThan(idleCpuPct + 15);
  // burst 40, then 20 a second
  expect(answers).toBeGreaterThan(0);
  expect(answers).toBeLessThanOrEqual(40 + Math.ceil(20 * seconds));
  expect((await metric(/^capacity_agent_requests_shed_total\{reason="requester_rate",subject="find"\} (\d+)$/gm)) - shed0).toBe(5000 - answers);
});

test("a flood of answers to a sync or a find is cut at a bound, not held", async () => {
  const subjects = new Subjects();
  // a hostile responder answers every sync of farm 2 and every find with 2,000 garbage messages
  const hostile = await connect({ servers: nats.url, name: "hostile" });
  const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
  const answer = (_err: unknown, msg: { reply?: string }): void => {
    for (let i = 0; i < 2000; i++) hostile.publish(msg.reply!, garbage);
  };
  hostile.subscribe(subjects.capacitySync(2), { callback: answer });
  hostile.subscribe(subjects.capacityFind(), { callback: answer });
  await hostile.flush();
  try {
    // the client side of find: at most maxAnswers answers are judged
    const found = await findCapacity(natsBus(nc), subjects, { want: { cru: 1, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 }, farmId: 0, limit: 0 }, { registry: null, maxAnswers: 50 });
    const judged = found.found.length + Object.values(found.dropped).reduce((n, v) => n + (v ?? 0), 0);
    expect(judged).toBe(50);
    expect(found.dropped.malformed).toBeGreaterThanOrEqual(49); // all but the real agent's answer, when it came first
    // an agent of farm 2 syncing at start takes at most maxPeersPerFarm answers
    const dir = tmpDir("gossip-flood-sync-");
    const key = path.join(dir, "node.json");
    expect((await cli(["keys", "new", "--out", key])).code).toBe(0);
    const config = path.join(dir, "config.json");
    fs.writeFileSync(config, JSON.stringify({ gossip: { maxPeersPerFarm: 10 } }));
    const second = await startAgent(["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "2", "--farm-id", "2", "--key", key, "--config", config, "--metrics-port", "0"]);
    try {
      expect(second.logs.find((l) => l.event === "gossip_started")).toMatchObject({ syncAnswers: 10 });
      const url = `http://127.0.0.1:${second.logs.find((l) => l.event === "metrics_listening")!.port}/metrics`;
      const body = await (await fetch(url)).text();
      // the 10 answers taken: garbage, and perhaps the agent's own announcement (it answers its farm's sync too; not counted)
      const dropped = body.split("\n").filter((l) => l.startsWith("capacity_agent_gossip_dropped_total{"));
      expect(dropped).toHaveLength(1);
      expect(dropped[0]).toMatch(/^capacity_agent_gossip_dropped_total\{reason="malformed"\} (9|10)$/);
    } finally {
      await second.stop();
    }
  } finally {
    await hostile.close();
  }
});
