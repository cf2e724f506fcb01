/**
 * The farmer's view, end to end with real processes: a nats-server, the chain stand-in, two
 * agents of farm 1 (ids assigned by the chain), real keys and stores.
 *   - /metrics of a real agent: the histograms (decision, propagation, proof delivery) observed,
 *     capacity gauges with units in their names, and `promtool check metrics` accepts it;
 *   - `capacity-agent dashboard` loaded in headless Chromium: the nodes it shows match each agent's
 *     `status`, a new deployment shows up live (SSE), a chosen node shows its deployments and
 *     proofs and recent decisions (refusals with their code, updating live); a screenshot is kept
 *     in test-artifacts/dashboard.png;
 *   - `status --watch` redraws with fresh data.
 * Chromium (/usr/bin/chromium, Debian package "chromium") and promtool (Debian package
 * "prometheus") are needed: without them those tests say so and pass as skipped.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { UNIT_NAMES } from "../../agent/capacity/units";
import { CLEAR_SCREEN } from "../../agent/cli/commands/status";
import { loadKeyFile, type Signer } from "../../agent/identity/keys";
import { ROOT, cli, startAgent, startChain, startDaemon, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually } from "../utils/grid";
import { ssdConfig, stopAll } from "../utils/setup";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

const CHROMIUM = "/usr/bin/chromium";
const PROMTOOL = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => fs.existsSync(p));
const ARTIFACTS = path.join(ROOT, "test-artifacts");

let nats: NatsServerHandle;
let chainProc: AgentProcess;
const agents: AgentProcess[] = [];
const nodeIds: number[] = [];
const metricsPorts: number[] = [];
let nc: NatsConnection;
let client: NodeClient;
let owner: Signer;
/** the deployer's twin id, assigned by the chain */
let ownerTwin = 0;
let dir: string;

async function deploy(node: number, id: number, memory: string): Promise<void> {
  const r = parseDeployment({ id, twinId: ownerTwin, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory, rootfs: "2GiB" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  expect(await client.deploy(node, buildDeployRequest(r.value, [{ twinId: ownerTwin, signer: owner }]))).toMatchObject({ accepted: true });
}

/** The power lines of a new agent's /metrics that does not manage power. */
const POWER_METRICS_AT_START = [
  'capacity_agent_power_state{state="up"} 1\n',
  'capacity_agent_power_state{state="standby"} 0\n',
  'capacity_agent_power_farm_nodes{state="waking"} 0\n',
  'capacity_agent_power_transitions_total{from="up",to="standby"} 0\n',
  'capacity_agent_power_wakes_sent_total{driver="zos"} 0\n',
  'capacity_agent_power_standby_intents_total{from="self"} 0\n',
  'capacity_agent_power_objections_total{direction="received"} 0\n',
];

async function metricsText(i: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${metricsPorts[i]}/metrics`)).text();
}

beforeAll(async () => {
  nats = await startNats();
  dir = tmpDir("farmer-view-");
  const ownerKey = path.join(dir, "owner.json");
  expect((await cli(["keys", "new", "--out", ownerKey])).code).toBe(0);
  // no registry file: twins and nodes resolve through the chain
  const registry = path.join(dir, "registry.json");
  const config = await ssdConfig(dir);
  chainProc = await startChain(["--nats", nats.url, "--data", path.join(dir, "chain")]);
  // the deployer's twin on the chain (the chain assigns its id), funded: the chain bills it every
  // period (2 s), and a twin in debt could not deploy (twin_in_debt)
  const reg = await cli(["registry", "add", "--chain", "--key", ownerKey, "--nats", nats.url]);
  expect(reg.code).toBe(0);
  ownerTwin = (JSON.parse(reg.stdout) as { twin: number }).twin;
  expect((await cli(["chain", "fund", "--twin", String(ownerTwin), "--amount", "1000000000000000", "--nats", nats.url])).code).toBe(0);
  for (const i of [0, 1]) {
    const key = path.join(dir, `node${i}.json`);
    expect((await cli(["keys", "new", "--out", key])).code).toBe(0);
    const a = await startAgent(["--nats", nats.url, "--data", path.join(dir, `node${i}`), "--key", key, "--farm-id", "1", "--registry", registry, "--config", config, "--period", "2", "--heartbeat", "1", "--metrics-port", "0"]);
    agents.push(a);
    nodeIds.push((await a.waitForEvent("agent_started")).nodeId as number);
    metricsPorts.push((await a.waitForEvent("metrics_listening")).port as number);
  }
  owner = await loadKeyFile(ownerKey);
  nc = await connect({ servers: nats.url });
  client = new NodeClient(natsBus(nc), new Subjects());
  await deploy(nodeIds[0], 1, "1GiB");
  await deploy(nodeIds[1], 2, "2GiB");
}, 90_000);

afterAll(() => stopAll(nc, agents, chainProc, nats));

test("/metrics: decision, propagation and proof delivery histograms observed, capacity with units in the names, NATS and chain gauges", async () => {
  const text = await eventually(async () => {
    const t = await metricsText(0);
    // a proof delivered (period 2 s) and a peer announcement kept
    return /capacity_agent_usage_proof_delivery_seconds_count [1-9]/.test(t) && /capacity_agent_gossip_propagation_seconds_count\{source="gossip"\} [1-9]/.test(t) ? t : null;
  }, 20_000, "a delivered proof and a propagated announcement in agent 1's metrics");
  expect(text).toMatch(/capacity_agent_decision_duration_seconds_count\{op="deploy"\} 1\n/);
  expect(text).toMatch(/capacity_agent_decision_duration_seconds_bucket\{le="\+Inf",op="deploy"\} 1\n/);
  expect(text).toMatch(/capacity_agent_gossip_propagation_seconds_bucket\{le="\+Inf",source="gossip"\} [1-9]/);
  expect(text).toMatch(/capacity_agent_usage_proof_delivery_seconds_bucket\{le="\+Inf"\} [1-9]/);
  expect(text).toContain("capacity_agent_nats_connected 1\n");
  expect(text).toContain("capacity_agent_chain_registered 1\n");
  expect(text).toMatch(/capacity_agent_build_info\{component="agent",node="[^"]+",version="[^"]+"\} 1/);
  expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  // power metrics are there from the start (this agent does not manage power: it is up, its farm view empty)
  for (const line of POWER_METRICS_AT_START) expect(text).toContain(line);
  // the gauges say what the node's status says
  const s = JSON.parse((await cli(["status", "--node", String(nodeIds[0]), "--nats", nats.url, "--json"])).stdout) as Record<string, Record<string, number>>;
  expect(text).toContain(`capacity_agent_capacity_used_cores ${s.used.cru}\n`);
  expect(s.used.cru).toBe(1);
  for (const [state, unit] of [["total", "mru"], ["reserved", "mru"], ["reservable", "sru"], ["used", "mru"], ["free", "sru"]] as const) {
    expect(text).toContain(`capacity_agent_capacity_${state}_bytes{unit="${unit}"} ${s[state][unit]}\n`);
  }
  expect(text).toContain(`capacity_agent_capacity_free_cores ${s.free.cru}\n`);
});

test("/metrics passes promtool check metrics", async () => {
  if (!PROMTOOL) {
    console.warn("promtool not found: skipping `promtool check metrics` (apt-get install prometheus)");
    return;
  }
  for (const i of [0, 1]) {
    const text = await metricsText(i);
    const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
    expect({ code: r.status, out: r.stdout + r.stderr }).toEqual({ code: 0, out: "" });
  }
});

test("the dashboard in headless Chromium shows every node as its status says, updates live, and shows a chosen node's deployments and proofs", async () => {
  if (!fs.existsSync(CHROMIUM)) {
    console.warn(`${CHROMIUM} not found: skipping the dashboard browser test (apt-get install chromium)`);
    return;
  }
  const dash = await startDaemon(["dashboard", "--nats", nats.url, "--farm", "1", "--port", "0"], "dashboard_started");
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  try {
    const port = (await dash.waitForEvent("dashboard_listening")).port as number;
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    // the page's own JavaScript runs in the browser; these expressions read what it rendered
    await page.waitForFunction(`document.querySelectorAll("tr.node").length === ${nodeIds.length}`, undefined, { timeout: 15_000 });
    const READ_ROWS = `(() => {
      const out = {};
      document.querySelectorAll("tr.node").forEach((tr) => {
        const free = {};
        tr.querySelectorAll("td[data-unit]").forEach((td) => (free[td.getAttribute("data-unit")] = Number(td.getAttribute("data-free"))));
        out[tr.getAttribute("data-node")] = {
          power: tr.querySelector("[data-power]").getAttribute("data-power"),
          version: tr.querySelector("[data-version]").getAttribute("data-version"),
          deployments: Number(tr.querySelector("[data-deployments]").getAttribute("data-deployments")),
          free,
        };
      });
      return out;
    })()`;
    const shown = async (): Promise<Record<string, { power: string; version: string; deployments: number; free: Record<string, number> }>> => page.evaluate(READ_ROWS);
    const statusOf = async (node: number): Promise<{ power: string; agentVersion: string; deployments: unknown[]; free: Record<string, number> }> =>
      JSON.parse((await cli(["status", "--node", String(node), "--nats", nats.url, "--json"])).stdout);
    const matches = async (): Promise<boolean> => {
      const rows = await shown();
      for (const node of nodeIds) {
        const s = await statusOf(node);
        const r = rows[String(node)];
        if (!r || r.power !== s.power || r.version !== s.agentVersion || r.deployments !== s.deployments.length) return false;
        if (UNIT_NAMES.some((u) => r.free[u] !== s.free[u])) return false;
      }
      return true;
    };
    await eventually(matches, 10_000, "the dashboard to show what each agent's status says");
    expect(Object.keys(await shown()).map(Number).sort((a, b) => a - b)).toEqual([...nodeIds].sort((a, b) => a - b));

    // live: a new deployment on node 2 reaches the open page (SSE), no reload
    const before = (await shown())[String(nodeIds[1])].free.mru;
    await deploy(nodeIds[1], 3, "4GiB");
    await eventually(async () => (await shown())[String(nodeIds[1])].free.mru === before - 4 * 1024 ** 3 || null, 10_000, "the page to show node 2's new free memory");
    expect(await matches()).toBe(true);
    expect(await page.textContent("#conn")).toBe("live");
    expect(await page.getAttribute('#totals [data-total-unit="mru"]', "data-free")).toBe(String(Object.values(await shown()).reduce((sum, r) => sum + r.free.mru, 0)));

    // a chosen node: its deployments (node API) and its proofs (chain)
    await page.click(`tr.node[data-node="${nodeIds[1]}"]`);
    await page.waitForSelector('#node-status tr[data-deployment="2"]', { timeout: 10_000 });
    await page.waitForSelector('#node-status tr[data-deployment="3"]');
    await page.waitForSelector("#node-proofs tr[data-proof]", { timeout: 10_000 });
    // its recent decisions (the node's `decisions`), newest first, as the node itself lists them
    await page.waitForSelector('#node-decisions tr[data-deployment-id="3"][data-result="create"]', { timeout: 10_000 });
    const READ_DECISIONS = `[...document.querySelectorAll("#node-decisions tr[data-decision]")].map((tr) => [Number(tr.getAttribute("data-decision")), tr.getAttribute("data-result"), tr.getAttribute("data-code"), Number(tr.getAttribute("data-deployment-id"))])`;
    const fromNode = async (): Promise<unknown[]> => (await client.decisions(nodeIds[1], 20)).decisions.map((d) => [d.seq, d.result, d.rejection?.code ?? "", d.deploymentId]);
    expect(await page.evaluate(READ_DECISIONS)).toEqual(await fromNode());
    expect(((await page.evaluate(READ_DECISIONS)) as unknown[][]).slice(0, 2).map((r) => r[3])).toEqual([3, 2]);
    // live: a refusal reaches the open panel with its code (no click, no reload)
    const huge = parseDeployment({ id: 99, twinId: ownerTwin, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "100TiB", rootfs: "2GiB" }] });
    if (!huge.ok) throw new Error(huge.refusal.message);
    expect(await client.deploy(nodeIds[1], buildDeployRequest(huge.value, [{ twinId: ownerTwin, signer: owner }]))).toMatchObject({ accepted: false, code: "insufficient_capacity" });
    await page.waitForSelector('#node-decisions tr[data-deployment-id="99"][data-code="insufficient_capacity"]', { timeout: 10_000 });
    expect(await page.textContent('#node-decisions tr[data-deployment-id="99"]')).toMatch(/refused insufficient_capacity \(mru: requested 100 TiB, free [\d.]+ GiB\)/);
    expect(await page.evaluate(READ_DECISIONS)).toEqual(await fromNode());
    // bad input gets a stable code and the dashboard keeps serving
    const bad = await fetch(`http://127.0.0.1:${port}/api/node/0`);
    expect([bad.status, ((await bad.json()) as { code: string }).code]).toEqual([400, "invalid_node"]);
    const gone = (await (await fetch(`http://127.0.0.1:${port}/api/node/77777`)).json()) as { status: unknown; statusError: string };
    expect(gone.status).toBeNull();
    expect(gone.statusError).toMatch(/node 77777 did not answer/);
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/api/state`, { method: "POST" })).status).toBe(405);
    expect(((await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as { nodes: unknown[] }).nodes).toHaveLength(nodeIds.length);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true });
    expect(fs.statSync(path.join(ARTIFACTS, "dashboard.png")).size).toBeGreaterThan(10_000);
  } finally {
    await browser.close();
    await dash.stop();
  }
}, 60_000);

test("status --interval-ms / --count without --watch, and a bad dashboard flag, are usage errors", async () => {
  const r = await cli(["status", "--node", "1", "--count", "3", "--nats", nats.url]);
  expect([r.code, r.stderr]).toEqual([2, expect.stringContaining("--interval-ms and --count go with --watch")]);
  const d = await cli(["dashboard", "--port", "http", "--nats", nats.url]);
  expect([d.code, d.stderr]).toEqual([2, expect.stringContaining("--port expects an integer from 0 to 65535")]);
});

test("status --watch redraws with fresh data", async () => {
  const r = await cli(["status", "--node", String(nodeIds[0]), "--nats", nats.url, "--watch", "--interval-ms", "300", "--count", "3"]);
  expect(r.code).toBe(0);
  const frames = r.stdout.split(CLEAR_SCREEN).filter((f) => f.trim());
  expect(frames).toHaveLength(3);
  const times = frames.map((f) => /(\d{4}-\d\d-\d\dT[\d:.]+Z)/.exec(f)![1]);
  expect(new Set(times).size).toBe(3);
  for (const f of frames) {
    expect(f).toMatch(new RegExp(`node ${nodeIds[0]} \\(farm 1, twin \\d+\\)\\s+power UP`));
    expect(f).toMatch(/nats\s+connected to 127\.0\.0\.1:\d+, node answered in \d+ ms/);
    expect(f).toMatch(/cru\s+\[#*\.*\]\s+\d+%\s+used 1 of \d+/);
    expect(f).toMatch(new RegExp(`#1 v1 twin ${ownerTwin}\\b`));
  }
  // proofs are delivered every 2 s: the chain line moves between frames taken 3 s apart
  const later = await cli(["status", "--node", String(nodeIds[0]), "--nats", nats.url, "--watch", "--interval-ms", "3000", "--count", "2", "--json"]);
  const lines = later.stdout.trim().split("\n").map((l) => JSON.parse(l) as { status: { usage: { deliveredSequence: number } } });
  expect(lines).toHaveLength(2);
  expect(lines[1].status.usage.deliveredSequence).toBeGreaterThan(lines[0].status.usage.deliveredSequence);
}, 30_000);
