/**
 * NATS as the distributed engine: a three-server nats-server cluster on loopback, one agent
 * attached to each server (heartbeat 1 s). The agents see each other across the routes; killing
 * one server moves its agent to another, which re-announces and catches up, and every view has
 * every other node fresh again within two heartbeats, without anyone dropping out meanwhile.
 */
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createKeyFile, cryptoReady } from "../../agent/identity/keys";
import { FileRegistry, upsertRegistryFile } from "../../agent/registry/file";
import { startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually, viewOf } from "../utils/grid";
import { startNatsCluster, type NatsServerHandle } from "../utils/nats";

const HEARTBEAT_S = 1;
let servers: NatsServerHandle[];
let agents: AgentProcess[] = [];
let nc: NatsConnection;
let registry: FileRegistry;

beforeAll(async () => {
  await cryptoReady();
  servers = await startNatsCluster();
  const dir = tmpDir("gossip-failover-");
  const registryFile = path.join(dir, "registry.json");
  for (const n of [1, 2, 3]) {
    const kf = await createKeyFile(path.join(dir, `node${n}.json`), "ed25519");
    upsertRegistryFile(registryFile, { kind: "node", id: n, farmId: 1, publicKey: kf.publicKey, scheme: "ed25519" });
  }
  registry = new FileRegistry(registryFile);
  // each agent is given one server; the cluster tells it about the others (INFO connect_urls)
  agents = await Promise.all(
    [1, 2, 3].map((n) =>
      startAgent(["--nats", servers[n - 1].url, "--data", path.join(dir, `data-${n}`), "--node-id", String(n), "--farm-id", "1", "--key", path.join(dir, `node${n}.json`), "--registry", registryFile, "--heartbeat", String(HEARTBEAT_S)]),
    ),
  );
  nc = await connect({ servers: [servers[1].url, servers[2].url] });
});

afterAll(async () => {
  await nc?.close();
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all((servers ?? []).map((s) => s.stop()));
});

async function views(): Promise<Record<number, Map<number, number>>> {
  const out: Record<number, Map<number, number>> = {};
  for (const n of [1, 2, 3]) out[n] = new Map((await viewOf(nc, n, registry, 1000)).peers.map((p) => [p.announcement.nodeId, p.announcement.sequence]));
  return out;
}

test("agents on different servers see each other; killing a server breaks no view for longer than two heartbeats", async () => {
  const attached = agents.map((a) => String(a.logs.find((l) => l.event === "nats_connected")?.server));
  expect(new Set(attached).size).toBe(3);
  expect(attached).toEqual(servers.map((s) => `127.0.0.1:${s.port}`));
  const before = await eventually(async () => {
    const v = await views();
    return [1, 2, 3].every((n) => v[n].size === 2) ? v : null;
  }, 10_000, "every agent to see the two others across the cluster");

  await servers[0].kill();
  const killedAt = Date.now();
  let sampledGaps = 0;
  const converged = await eventually(async () => {
    const v = await views();
    for (const n of [1, 2, 3]) if (v[n].size !== 2) sampledGaps++;
    // every view holds both others, each with an announcement newer than before the kill
    return [1, 2, 3].every((n) => [...before[n]].every(([peer, seq]) => (v[n].get(peer) ?? 0) > seq)) ? v : null;
  }, 2 * HEARTBEAT_S * 1000, "views to converge after the server was killed");
  const took = Date.now() - killedAt;
  expect(sampledGaps).toBe(0); // nobody dropped out of anyone's view meanwhile
  expect(Object.values(converged).every((m) => m.size === 2)).toBe(true);
  const moved = await eventually(() => agents[0].logs.find((l) => l.event === "nats_reconnected"), 2000, "agent 1 to reconnect");
  expect(moved.server).not.toBe(`127.0.0.1:${servers[0].port}`);
  expect(agents[0].logs.some((l) => l.event === "gossip_resynced")).toBe(true);
  expect(took).toBeLessThanOrEqual(2 * HEARTBEAT_S * 1000 + 500);
});
