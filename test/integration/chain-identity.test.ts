/**
 * Agents learn their node and twin ids from the chain (the chain stand-in assigns them): real
 * nats-server, real `capacity-agent chain` and `capacity-agent run` processes, real keys and
 * stores. No registry file: peers know each other's keys only through the chain, so a squatter
 * that cannot register an id cannot put a false node into anybody's view.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../../agent/bus/subjects";
import { TiB } from "../../agent/capacity/units";
import { ChainClient } from "../../agent/chain/client";
import { sealAnnouncement, type Announcement } from "../../agent/gossip/wire";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually, viewOf } from "../utils/grid";
import { newKeys, stopAll } from "../utils/setup";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

let nats: NatsServerHandle;
let chainProc: AgentProcess;
let nc: NatsConnection;
let chain: ChainClient;
let dir: string;
let chainArgs: string[];
const agents: AgentProcess[] = [];
const subjects = new Subjects();

/** `run` arguments for agent `name` (its own data dir and key; no registry file, no node id). */
function args(name: string, extra: string[] = []): string[] {
  return ["--nats", nats.url, "--data", path.join(dir, name), "--key", path.join(dir, `${name}.json`), "--farm-id", "1", "--heartbeat", "1", "--log-level", "debug", ...extra];
}

async function start(name: string, extra: string[] = []): Promise<AgentProcess> {
  const a = await startAgent(args(name, extra));
  agents.push(a);
  return a;
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("chain-ids-");
  await newKeys(dir, ["a", "b", "c", "d"]);
  chainArgs = ["--nats", nats.url, "--data", path.join(dir, "chain")];
  chainProc = await startChain(chainArgs);
  nc = await connect({ servers: nats.url });
  chain = new ChainClient(natsBus(nc), subjects);
}, 30_000);

afterAll(async () => {
  await stopAll(nc, agents, chainProc, nats);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("agents started without --node-id get their ids from the chain, log node_registered and serve under them", async () => {
  const a = await start("a");
  expect(await a.waitForEvent("node_registered")).toMatchObject({ nodeId: 1, twinId: 1, kind: "registered" });
  expect(await a.waitForEvent("agent_started")).toMatchObject({ nodeId: 1, twinId: 1 });
  const b = await start("b");
  expect(await b.waitForEvent("agent_started")).toMatchObject({ nodeId: 2, twinId: 2 });
  expect(JSON.parse(fs.readFileSync(path.join(dir, "b", "chain-ids.json"), "utf8"))).toEqual({ nodeId: 2, twinId: 2, farmId: 1 });
  expect(await chain.node(2)).toMatchObject({ nodeId: 2, twinId: 2, farmId: 1 });
  // each sees the other under the chain's id, verified through the chain (no registry file)
  await eventually(async () => (await viewOf(nc, 1, null)).peers.some((p) => p.announcement.nodeId === 2), 10_000, "node 1 to see node 2");
  await eventually(async () => (await viewOf(nc, 2, null)).peers.some((p) => p.announcement.nodeId === 1), 10_000, "node 2 to see node 1");
}, 60_000);

test("a squatter can neither register node 2 nor put a false node 2 into a peer's view", async () => {
  const squatter = signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32)));
  expect(await chain.registerTwin(squatter)).toMatchObject({ ok: true, id: 3 });
  const genuine = (await viewOf(nc, 1, null)).peers.find((p) => p.announcement.nodeId === 2)!.announcement;
  const big = { ...genuine.free, cru: 64, mru: TiB };
  expect(await chain.registerNode(squatter, { nodeId: 2, farmId: 1, total: { ...genuine.total, cru: 64, mru: TiB } })).toMatchObject({ ok: false, code: "unauthorized" });
  // an announcement for node 2, 64 cores and 1 TiB free, signed by the squatter's key
  const fake: Announcement = { ...genuine, sequence: genuine.sequence + 1_000_000, timestampMs: Date.now(), free: big };
  for (let i = 0; i < 3; i++) nc.publish(subjects.capacity(1, 2), sealAnnouncement(squatter, { ...fake, sequence: fake.sequence + i }).bytes);
  await nc.flush();
  const a = agents[0];
  await a.waitForEvent("announcement_dropped", 5000, (l) => l.reason === "bad_signature" && l.nodeId === 2);
  const seen = (await viewOf(nc, 1, null)).peers.find((p) => p.announcement.nodeId === 2)!.announcement;
  expect(seen.free.cru).toBe(genuine.free.cru);
  expect(seen.free.mru).not.toBe(TiB);
  expect(seen.sequence).toBeLessThan(fake.sequence);
}, 30_000);

test("an explicit --node-id the chain did not assign is refused: node_id_mismatch", async () => {
  const r = await cli(["run", ...args("c", ["--node-id", "7"])]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("[node_id_mismatch]");
  expect(r.stderr).toContain("drop --node-id");
  // its twin and node were registered (ids 4 and 3), the agent did not serve under 7
  expect(await chain.node(3)).toMatchObject({ nodeId: 3, twinId: 4 });
  expect(fs.existsSync(path.join(dir, "c", "chain-ids.json"))).toBe(false);
}, 30_000);

test("with the chain away: a restart serves under the saved id; a first start serves under the configured id and says so", async () => {
  await chainProc.stop();
  const b = agents[1];
  await b.stop();
  const b2 = await start("b");
  expect(await b2.waitForEvent("agent_started")).toMatchObject({ nodeId: 2, twinId: 2 });
  expect(b2.logs.some((l) => l.event === "chain_ids_saved")).toBe(true);
  // a new node while no chain serves the bus: at once (no responders), under its configured id
  const t0 = Date.now();
  const d = await start("d", ["--node-id", "9"]);
  expect(Date.now() - t0).toBeLessThan(8000);
  expect(await d.waitForEvent("node_id_unconfirmed")).toMatchObject({ nodeId: 9 });
  expect(await d.waitForEvent("agent_started")).toMatchObject({ nodeId: 9 });
  // the chain comes back: it assigns d another id (4); d says it serves under the wrong one
  chainProc = await startChain(chainArgs);
  expect(await d.waitForEvent("node_id_mismatch", 20_000)).toMatchObject({ nodeId: 9, chainNodeId: 4 });
  // b re-registers in the background and stays node 2
  expect(await chain.node(2)).toMatchObject({ nodeId: 2, twinId: 2 });
}, 60_000);
