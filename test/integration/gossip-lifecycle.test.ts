/**
 * Gossip over the life of agents, on a real nats-server with real agent processes: catch-up of a
 * late agent, `deploy --auto` falling back after a lost race, expiry of a stopped agent, and a
 * restart that peers accept again (the sequence only grows across restarts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { createKeyFile, cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { FileRegistry, upsertRegistryFile } from "../../agent/registry/file";
import { cli, startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually, viewOf } from "../utils/grid";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

let nats: NatsServerHandle;
let nc: NatsConnection;
let dir: string;
let registryFile: string;
let registry: FileRegistry;
let owner: Signer;
const agents: Record<number, AgentProcess> = {};
const keys: Record<string, string> = {};

function agentArgs(node: number, heartbeat: number, withIpv4: boolean): string[] {
  const args = ["--nats", nats.url, "--data", path.join(dir, `data-${node}`), "--node-id", String(node), "--farm-id", "1", "--key", keys[`node${node}`], "--registry", registryFile, "--heartbeat", String(heartbeat)];
  return withIpv4 ? [...args, "--config", path.join(dir, "ipv4.json")] : args;
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("gossip-life-");
  registryFile = path.join(dir, "registry.json");
  for (const name of ["node1", "node2", "node3", "owner"]) {
    keys[name] = path.join(dir, `${name}.json`);
    const kf = await createKeyFile(keys[name], "ed25519");
    if (name === "owner") upsertRegistryFile(registryFile, { kind: "twin", id: 7, publicKey: kf.publicKey, scheme: "ed25519" });
    else upsertRegistryFile(registryFile, { kind: "node", id: Number(name.slice(4)), farmId: 1, publicKey: kf.publicKey, scheme: "ed25519" });
  }
  // nodes 1 and 2 have one public IPv4 each: the unit the deployers race for
  fs.writeFileSync(path.join(dir, "ipv4.json"), JSON.stringify({ hardware: { ipv4u: 1 } }));
  registry = new FileRegistry(registryFile);
  owner = await loadKeyFile(keys.owner);
  nc = await connect({ servers: nats.url });
  // node 1 beats every second (it is the one stopped later); node 2 every 30 s
  [agents[1], agents[2]] = await Promise.all([startAgent(agentArgs(1, 1, true)), startAgent([...agentArgs(2, 30, true), "--metrics-port", "0"])]);
});

afterAll(async () => {
  await nc?.close();
  await Promise.all(Object.values(agents).map((a) => a.stop()));
  await nats?.stop();
});

test("a late agent holds its farm's view one round trip after it asked, not a heartbeat later", async () => {
  // both running agents see each other first
  await eventually(async () => (await viewOf(nc, 1, registry)).peers.length === 1 && (await viewOf(nc, 2, registry)).peers.length === 1, 5000, "nodes 1 and 2 to see each other");
  agents[3] = await startAgent(agentArgs(3, 30, false));
  // start() returns once the sync answers stopped coming; allow a second for a loaded machine,
  // far below node 2's 30 s heartbeat
  const view = await eventually(async () => {
    const v = await viewOf(nc, 3, registry);
    return v.peers.length === 2 ? v : null;
  }, 1000, "node 3 to hold nodes 1 and 2");
  expect(view.peers.map((p) => p.announcement.nodeId)).toEqual([1, 2]);
  // node 2 beats every 30 s and nothing changed on it: its entry came from the sync answer
  expect(agents[3].logs.some((l) => l.event === "peer_joined" && l.nodeId === 2 && l.source === "sync")).toBe(true);
  // and the old agents learn of the newcomer from its first announcement
  for (const n of [1, 2]) await eventually(async () => (await viewOf(nc, n, registry)).peers.some((p) => p.announcement.nodeId === 3), 2000, `node ${n} to see node 3`);
});

test("deploy --auto: the best node is lost to another deployer between find and deploy, so it falls back to the next", async () => {
  const client = new NodeClient(natsBus(nc), new Subjects());
  const ipv4 = (id: number) => {
    const r = parseDeployment({ id, twinId: 7, version: 1, workloads: [{ name: "pub", type: "ipv4" }] });
    if (!r.ok) throw new Error(r.refusal.message);
    return r.value;
  };
  // Another deployer watches find requests and grabs node 1's only IPv4 as soon as it sees one.
  // Node 1 got the find request first on its connection and answered it (free ipv4u 1) before
  // this competing deploy reaches it, so the auto deployer's candidate list is already stale.
  let rival: Promise<unknown> | null = null;
  const watcher = nc.subscribe(new Subjects().capacityFind(), {
    callback: () => {
      rival ??= client.deploy(1, buildDeployRequest(ipv4(500), [{ twinId: 7, signer: owner }]));
    },
  });
  await nc.flush();
  const file = path.join(dir, "ipv4-501.json");
  fs.writeFileSync(file, JSON.stringify({ id: 501, twinId: 7, version: 1, workloads: [{ name: "pub", type: "ipv4" }] }));
  const r = await cli(["deploy", "--auto", "--file", file, "--key", keys.owner, "--registry", registryFile, "--nats", nats.url, "--json"]);
  watcher.unsubscribe();
  expect(await rival).toMatchObject({ accepted: true, nodeId: 1 });
  expect(r.stderr).toContain("candidates, best first: 1, 2"); // node 3 has no IPv4 and did not answer
  expect(r.stderr).toContain("node 1 refused [insufficient_capacity]");
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ accepted: true, code: "ok", nodeId: 2, id: 501 });
  // where it landed is where it is
  expect((await client.status(2)).deployments.map((d) => d.id)).toContain(501);
  expect((await client.status(1)).deployments.map((d) => d.id)).not.toContain(501);
  // nothing fits any more: --auto says so with the capacity code
  const again = path.join(dir, "ipv4-502.json");
  fs.writeFileSync(again, JSON.stringify({ id: 502, twinId: 7, version: 1, workloads: [{ name: "pub", type: "ipv4" }] }));
  const full = await cli(["deploy", "--auto", "--file", again, "--key", keys.owner, "--registry", registryFile, "--nats", nats.url, "--json"]);
  expect(full.code).toBe(1);
  expect(JSON.parse(full.stdout)).toMatchObject({ accepted: false, code: "insufficient_capacity" });
});

test("a stopped agent leaves every view after 3 of its own heartbeats; restarted, it is accepted again with a higher sequence", async () => {
  const last = (await viewOf(nc, 2, registry)).peers.find((p) => p.announcement.nodeId === 1)!.announcement.sequence;
  await agents[1].stop();
  const stoppedAt = Date.now();
  for (const viewer of [2, 3]) {
    await eventually(async () => !(await viewOf(nc, viewer, registry)).peers.some((p) => p.announcement.nodeId === 1), 10_000, `node ${viewer} to drop node 1`);
  }
  // not before: its last announcement was at most one heartbeat (1 s) before it stopped
  expect(Date.now() - stoppedAt).toBeGreaterThan(1500);
  expect(agents[2].logs.some((l) => l.event === "peer_expired" && l.nodeId === 1)).toBe(true);
  // node 3 (heartbeat 30 s) is still in node 2's view: expiry follows each node's own heartbeat
  expect((await viewOf(nc, 2, registry)).peers.map((p) => p.announcement.nodeId)).toEqual([3]);

  agents[1] = await startAgent(agentArgs(1, 1, true));
  for (const viewer of [2, 3]) {
    const back = await eventually(async () => (await viewOf(nc, viewer, registry)).peers.find((p) => p.announcement.nodeId === 1), 5000, `node ${viewer} to take node 1 back`);
    expect(back.announcement.sequence).toBeGreaterThan(last);
  }
});

test("drops, expiries and publishes are counted in the agent's Prometheus metrics", async () => {
  nc.publish(new Subjects().capacity(1, 1), new Uint8Array([0x0a, 0xff, 0xff]));
  await nc.flush();
  const port = agents[2].logs.find((l) => l.event === "metrics_listening")!.port;
  const text = await eventually(async () => {
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return body.includes('capacity_agent_gossip_dropped_total{reason="malformed"} 1') ? body : null;
  }, 5000, "the malformed drop to be counted");
  expect(text).toMatch(/capacity_agent_gossip_published_total\{trigger="start"\} 1/);
  expect(text).toMatch(/capacity_agent_gossip_accepted_total\{source="gossip"\} \d+/);
  expect(text).toMatch(/capacity_agent_gossip_expired_total [1-9]/);
  expect(text).toMatch(/capacity_agent_gossip_find_requests_total\{result="answered"\} [1-9]/);
  expect(text).toMatch(/capacity_agent_gossip_peers 2/);
});
