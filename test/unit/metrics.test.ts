import { createMetrics, MetricsRegistry } from "../../agent/metrics/metrics";
import { zeroUnits } from "../../agent/capacity/units";
import { watchFrame, capacityBars } from "../../agent/cli/commands/status";
import { dashboardState } from "../../agent/dashboard/model";
import type { Peer } from "../../agent/gossip/view";

test("every gauge is present with 0 before anything is set", async () => {
  const text = await createMetrics().registry.expose();
  for (const state of ["total", "reserved", "reservable", "used", "free"]) {
    for (const unit of ["mru", "sru", "hru"]) expect(text).toContain(`capacity_agent_capacity_${state}_bytes{unit="${unit}"} 0\n`);
    for (const counted of ["cores", "ipv4_addresses", "gpus"]) expect(text).toContain(`capacity_agent_capacity_${state}_${counted} 0\n`);
  }
  expect(text).toContain("capacity_agent_nats_connected 0\n");
  expect(text).toContain("capacity_agent_chain_registered 0\n");
  expect(text).toMatch(/capacity_agent_build_info\{component="agent",node="v\d+[^"]*",version="[^"]+"\} 1/);
  expect(text).toContain("# TYPE capacity_agent_decision_duration_seconds histogram");
  expect(text).toContain("# TYPE process_cpu_user_seconds_total counter");
  expect(text).toContain("# TYPE nodejs_heap_size_total_bytes gauge");
});

test("capacity gauges carry the unit in the name; counters keep a synchronous get", async () => {
  const m = createMetrics(new MetricsRegistry());
  m.capacity.set("free", { ...zeroUnits(), cru: 6, mru: 4 * 1024 ** 3, ipv4u: 2 });
  m.decisions.inc({ op: "deploy", result: "create" });
  m.decisions.inc({ op: "deploy", result: "create" });
  m.decisionSeconds.observe({ op: "deploy" }, 0.0003);
  const text = await m.registry.expose();
  expect(text).toContain("capacity_agent_capacity_free_cores 6\n");
  expect(text).toContain(`capacity_agent_capacity_free_bytes{unit="mru"} ${4 * 1024 ** 3}\n`);
  expect(text).toContain("capacity_agent_capacity_free_ipv4_addresses 2\n");
  expect(m.capacity.get("free", "mru")).toBe(4 * 1024 ** 3);
  expect(m.decisions.get({ result: "create", op: "deploy" })).toBe(2);
  expect(text).toContain('capacity_agent_decisions_total{op="deploy",result="create"} 2');
  expect(text).toContain('capacity_agent_decision_duration_seconds_bucket{le="0.0005",op="deploy"} 1');
  expect(text).toContain('capacity_agent_decision_duration_seconds_count{op="deploy"} 1');
  // a label the metric was not declared with is a bug, caught at once
  expect(() => m.decisions.inc({ op: "deploy", bogus: "x" })).toThrow();
});

test("onCollect hooks read live state at every exposition", async () => {
  const m = createMetrics(new MetricsRegistry());
  let up = 0;
  m.registry.onCollect(() => m.natsConnected.set({}, up));
  expect(await m.registry.expose()).toContain("capacity_agent_nats_connected 0\n");
  up = 1;
  expect(await m.registry.expose()).toContain("capacity_agent_nats_connected 1\n");
});

const units = (cru: number, mru: number) => ({ ...zeroUnits(), cru, mru });
const status = {
  nodeId: 4, farmId: 1, twinId: 9, total: units(8, 16), reserved: units(0, 2), allocatable: units(8, 14), reservable: units(16, 14), used: units(4, 7), free: units(12, 7),
  power: "up" as const, agentVersion: "1.2.3", timestampMs: 0, deployments: [1, 2, 3].map((id) => ({ id, twinId: 9, version: 1, units: units(1, 1) })), deploymentCount: 3, more: false,
  usage: { periodMs: 3_600_000, lastSequence: 5, deliveredSequence: 4, pending: 1, meteredUntilMs: 0, lastCode: "chain_unavailable", chain: true }, storeFull: false, signer: new Uint8Array(),
};

test.each([
  ["a node that answers", { status, error: null }, [/node 4 \(farm 1, twin 9\)\s+power UP\s+agent 1\.2\.3/, /cru\s+\[#####\.{15}\]\s+25%\s+used 4 of 16, free 12/, /mru\s+\[#{10}\.{10}\]\s+50%/, /chain\s+proofs delivered up to #4, 1 pending, chain said chain_unavailable/, /latest 2 by id:\n  #3 v1[^\n]*\n  #2 v1/]],
  ["a node that does not answer", { status: null, error: "node 4 did not answer (TIMEOUT)" }, [/node\s+did not answer: node 4 did not answer \(TIMEOUT\)/, /retrying/]],
])("watch frame: %s", (_name, f, patterns) => {
  const text = watchFrame({ node: 4, nowMs: Date.UTC(2026, 0, 1), intervalMs: 500, nats: "connected to nats://127.0.0.1:4222", tookMs: 3, latest: 2, ...f });
  expect(text).toContain("2026-01-01T00:00:00.000Z");
  for (const p of patterns) expect(text).toMatch(p);
});

test("capacity bars stay within their width when a node is overcommitted", () => {
  const lines = capacityBars({ reservable: units(2, 0), used: units(5, 0), free: units(0, 0) }, 10);
  expect(lines[0]).toContain("[##########] 100%");
  expect(lines[1]).toContain("[..........]   0%");
});

test("dashboard state: nodes of the farm, sorted, with heartbeat age and farm totals", () => {
  const peer = (nodeId: number, farmId: number, power: "up" | "standby", receivedAt: number): Peer =>
    ({ receivedAt, envelope: {} as Peer["envelope"], announcement: { nodeId, farmId, twinId: 1, sequence: 3, timestampMs: receivedAt, total: units(8, 16), reserved: units(0, 2), reservable: units(16, 14), used: units(2, 4), free: units(14, 10), deployments: 2, power, heartbeatMs: 30_000, agentVersion: "v" } }) as Peer;
  const s = dashboardState([peer(3, 1, "standby", 9_000), peer(2, 1, "up", 9_500), peer(7, 2, "up", 9_900)], 1, 10_000);
  expect(s.nodes.map((n) => [n.nodeId, n.heardAgoMs, n.power])).toEqual([[2, 500, "up"], [3, 1000, "standby"]]);
  expect(s.totals).toMatchObject({ nodes: 2, up: 1, standby: 1, deployments: 4 });
  expect(s.totals.free).toEqual(units(28, 20));
  expect(dashboardState([peer(3, 1, "up", 0), peer(7, 2, "up", 0)], null, 0).nodes).toHaveLength(2);
});

test("labels are exposed in name order, as before prom-client", async () => {
  const m = createMetrics(new MetricsRegistry());
  m.shed.inc({ subject: "get", reason: "queue_full" });
  expect(await m.registry.expose()).toContain('capacity_agent_requests_shed_total{reason="queue_full",subject="get"} 1\n');
});
