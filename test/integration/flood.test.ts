/**
 * A flood of anonymous `get` requests from one connection (issue 11 items 2, 3, 8): a real
 * nats-server, a real agent process, real keys. The flood is a bounded loop that sends 20,000
 * requests for a large deployment as fast as the client can; meanwhile a second connection
 * deploys. The deploy must be decided during the flood, the flooder gets `rate_limited`, status
 * answers afterwards, and the agent's resident memory stays bounded and comes back down. CPU time
 * of the agent process (/proc/PID/stat) is measured idle before the flood, over the flood and
 * idle after it, and must come back to its idle level.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, createInbox, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment, type DeploymentSpec } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { decode, encode } from "../../agent/wire/codec";
import { cli, startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";
import { cpuPercentOver, cpuWindow, floodCpuFigures } from "../utils/proc";
import { recordFigures } from "../faults/report";

const FLOOD = 20_000;

let nats: NatsServerHandle;
let agent: AgentProcess;
let flooder: NatsConnection;
let deployer: NatsConnection;
let client: NodeClient;
let owner: Signer;
let dir: string;
let sampler: NodeJS.Timeout | undefined;

function spec(p: Record<string, unknown>): DeploymentSpec {
  const r = parseDeployment({ twinId: 7, version: 1, ...p });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}

/** Resident set size of a process in bytes (VmRSS from /proc). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}: the agent exited (${agent.child.exitCode ?? agent.child.signalCode}); last logs: ${JSON.stringify(agent.logs.slice(-3))}`);
  return Number(m[1]) * 1024;
}

const MiB = 1024 * 1024;

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("flood-");
  const keys: Record<string, string> = {};
  for (const name of ["node", "owner"]) {
    keys[name] = path.join(dir, `${name}.json`);
    expect((await cli(["keys", "new", "--out", keys[name]])).code).toBe(0);
  }
  const registry = path.join(dir, "registry.json");
  expect((await cli(["registry", "add", "--file", registry, "--node", "1", "--farm", "1", "--key", keys.node])).code).toBe(0);
  expect((await cli(["registry", "add", "--file", registry, "--twin", "7", "--key", keys.owner])).code).toBe(0);
  agent = await startAgent(["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "1", "--farm-id", "1", "--key", keys.node, "--registry", registry, "--no-chain", "--metrics-port", "0"]);
  owner = await loadKeyFile(keys.owner);
  flooder = await connect({ servers: nats.url, name: "flooder" });
  deployer = await connect({ servers: nats.url, name: "deployer" });
  client = new NodeClient(natsBus(deployer), new Subjects());
});

afterAll(async () => {
  clearInterval(sampler);
  await flooder?.close();
  await deployer?.close();
  await agent?.stop();
  await nats?.stop();
});

test("a get flood from one connection is shed with rate_limited; a deploy is decided during it; memory stays bounded", async () => {
  // the largest deployment a request may carry: 256 workloads with long names, full description and metadata
  const big = spec({
    id: 1,
    description: "d".repeat(4096),
    metadata: "m".repeat(16384),
    workloads: Array.from({ length: 256 }, (_, i) => ({ name: `net-${String(i).padStart(3, "0")}-${"x".repeat(50)}`, type: "network" })),
  });
  const bigRequest = buildDeployRequest(big, [{ twinId: 7, signer: owner }]);
  expect(bigRequest.length).toBeGreaterThan(35_000);
  expect(await client.deploy(1, bigRequest)).toMatchObject({ accepted: true });
  expect(await client.get(1, 1)).toMatchObject({ found: true, id: 1 });
  const pid = agent.child.pid!;
  const baseline = rss(pid);
  const idleCpuPct = await cpuPercentOver(pid, 2000);

  // the flooder: one connection, one inbox, FLOOD get requests as fast as it can publish them
  const inbox = createInbox();
  const codes = new Map<string, number>();
  let replies = 0;
  const sub = flooder.subscribe(`${inbox}.>`, {
    callback: (err, msg) => {
      if (err || msg.data.length === 0) return;
      replies++;
      const o = open(msg.data, DOMAIN.GetReply, { maxBytes: 1 << 20, maxRepeated: 1 << 16 });
      if (!o.ok) return void codes.set("bad_reply", (codes.get("bad_reply") ?? 0) + 1);
      const r = decode("GetReply", o.value.payload, { maxBytes: 1 << 20, maxRepeated: 1 << 16 });
      const code = r.found ? "found" : (r.rejection?.code ?? "?");
      codes.set(code, (codes.get(code) ?? 0) + 1);
    },
  });
  const subject = new Subjects().nodeGet(1);
  const getBody = encode("GetRequest", { id: 1 });
  let peak = baseline;
  let sampleError: unknown;
  sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid));
    } catch (err) {
      sampleError ??= err;
    }
  }, 20);
  let sent = 0;
  const floodCpu = cpuWindow(pid);
  const flood = (async () => {
    while (sent < FLOOD) {
      for (let i = 0; i < 500 && sent < FLOOD; i++) flooder.publish(subject, getBody, { reply: `${inbox}.${sent++}` });
      await new Promise((r) => setImmediate(r));
    }
    await flooder.flush();
  })();

  // during the flood, a second connection deploys
  await waitFor(() => sent >= 2000, 10_000, "the flood to start");
  const t0 = Date.now();
  const d = await client.deploy(1, buildDeployRequest(spec({ id: 2, workloads: [{ name: "n", type: "network" }] }), [{ twinId: 7, signer: owner }]));
  const deployMs = Date.now() - t0;
  const [sentAtDeploy, repliesAtDeploy] = [sent, replies];
  await flood;
  if (sampleError) throw sampleError;
  expect(d).toMatchObject({ accepted: true, code: "ok", id: 2 });
  expect(deployMs).toBeLessThan(4000); // the client's timeout is 5 s: before the limits it hit it (node_unreachable)

  // every flood request is answered (served or refused) or counted as shed without a reply; wait for the answers to stop
  // settled: no new reply for a whole second (25 ms, as before, was too short on a loaded machine:
  // one served reply arrived after it and the counts below were off by one)
  let last = -1;
  let quietSince = Date.now();
  await waitFor(() => {
    if (replies !== last) {
      last = replies;
      quietSince = Date.now();
      return false;
    }
    return Date.now() - quietSince >= 1000;
  }, 30_000, "flood replies to settle");
  const cpu = floodCpu.end();
  clearInterval(sampler);
  sub.unsubscribe();
  // the deploy was decided during the flood: flood requests were still being sent, or answered, after it
  expect(sentAtDeploy < FLOOD || repliesAtDeploy < replies).toBe(true);
  const rateLimited = codes.get("rate_limited") ?? 0;
  const found = codes.get("found") ?? 0;
  // the flooder got a few answers, many rate_limited replies (as many as the refusal budget of
  // 2000/s allows) and silence for the rest; nothing it got was unsigned or garbled
  expect(found).toBeGreaterThan(0);
  expect(found).toBeLessThan(FLOOD / 10);
  expect(rateLimited).toBeGreaterThan(1000);
  expect(codes.get("bad_reply") ?? 0).toBe(0);
  // the agent counted every request it shed, by subject and reason, and the ones it did not answer
  const port = agent.logs.find((l) => l.event === "metrics_listening")!.port;
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (re: RegExp): number => [...metrics.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  const shed = sum(/^capacity_agent_requests_shed_total\{[^}]*subject="get"[^}]*\} (\d+)$/gm);
  const unanswered = sum(/^capacity_agent_requests_shed_unanswered_total\{subject="get"\} (\d+)$/gm);
  expect(shed).toBe(FLOOD - found);
  expect(unanswered).toBe(FLOOD - found - rateLimited);
  expect(metrics).toMatch(/capacity_agent_requests_shed_total\{reason="(requester_rate|queue_full)",subject="get"\} \d+/);

  // status answers after the flood, and shows the deploy made during it
  const st = await client.status(1);
  expect(st.deployments.map((x) => x.id)).toEqual([1, 2]);

  // a status burst from the flooding connection: what is over its rate is refused with a signed
  // rate_limited the client surfaces as NodeRefused (not a timeout)
  const flooderClient = new NodeClient(natsBus(flooder), new Subjects());
  const burst = await Promise.allSettled(Array.from({ length: 300 }, () => flooderClient.status(1)));
  const refused = burst.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as { name: string; code: string });
  expect(refused.length).toBeGreaterThan(0);
  expect(refused.filter((e) => !(e.name === "NodeRefused" && e.code === "rate_limited")).map((e) => `${e.name}: ${String(e)}`)).toEqual([]);
  expect(burst.some((r) => r.status === "fulfilled")).toBe(true);

  // memory: bounded during the flood, back near the baseline after it
  expect(peak - baseline).toBeLessThan(120 * MiB);
  await waitFor(() => rss(pid) - baseline < 40 * MiB, 20_000, `RSS back near the baseline (${(baseline / MiB).toFixed(1)} MiB)`);
  const afterMiB = +(rss(pid) / MiB).toFixed(1);
  // CPU: what the flood cost the agent, and its idle use after it
  const afterCpuPct = await cpuPercentOver(pid, 2000);
  recordFigures("get-flood", {
    sent,
    replies,
    codes: JSON.stringify(Object.fromEntries(codes)),
    deployMs,
    baselineMiB: +(baseline / MiB).toFixed(1),
    peakMiB: +(peak / MiB).toFixed(1),
    afterMiB,
    ...floodCpuFigures(cpu, idleCpuPct, afterCpuPct, FLOOD),
  });
  expect(afterCpuPct).toBeLessThan(idleCpuPct + 15);

  // the agent counted what it shed, and logged it once (not per request)
  const shedLogs = agent.logs.filter((l) => l.event === "requests_shed");
  expect(shedLogs.length).toBeGreaterThanOrEqual(1);
  expect(shedLogs.length).toBeLessThan(10);
  expect(shedLogs[0]).toMatchObject({ subject: "get" });
});

test("an audit flood from one connection is answered up to its rate, the rest with rate_limited", async () => {
  const subjects = new Subjects();
  const inbox = createInbox();
  const codes = new Map<string, number>();
  const sub = flooder.subscribe(`${inbox}.>`, {
    callback: (err, msg) => {
      if (err || msg.data.length === 0) return;
      const o = open(msg.data, DOMAIN.UsageAuditReply);
      const code = o.ok ? (decode("UsageAuditReply", o.value.payload).rejection?.code ?? "found") : "bad_reply";
      codes.set(code, (codes.get(code) ?? 0) + 1);
    },
  });
  const body = encode("UsageAuditRequest", { deploymentId: 1 });
  const pid = agent.child.pid!;
  const floodCpu = cpuWindow(pid);
  for (let i = 0; i < 2000; i++) flooder.publish(subjects.nodeUsage(1, 1), body, { reply: `${inbox}.${i}` });
  await flooder.flush();
  await waitFor(() => [...codes.values()].reduce((a, b) => a + b, 0) >= 2000, 20_000, "every audit to be answered");
  const cpu = floodCpu.end();
  sub.unsubscribe();
  recordFigures("audit-flood", { sent: 2000, codes: JSON.stringify(Object.fromEntries(codes)), floodCpuS: cpu.cpuS, floodWallS: cpu.wallS, floodCpuPct: cpu.percent, idleCpuPctAfter: +(await cpuPercentOver(pid, 2000)).toFixed(1) });
  // no proof 1 exists yet (hour-long periods): the answered ones say not_found, burst 40 and 20/s
  expect(codes.get("not_found") ?? 0).toBeGreaterThan(0);
  expect(codes.get("not_found") ?? 0).toBeLessThan(200);
  expect(codes.get("rate_limited") ?? 0).toBeGreaterThan(1800);
  expect(codes.get("bad_reply") ?? 0).toBe(0);
});
