/**
 * Capacity gossip on a real local grid: scripts/local-grid starts a real nats-server and three real
 * agent processes (shared real hardware, disks classed SSD, 2 public IPv4 each, heartbeat 30 s so
 * that anything seen within a second came from change-driven announcements, not heartbeats).
 */
import * as crypto from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, zeroUnits } from "../../agent/capacity/units";
import { findCapacity } from "../../agent/gossip/find";
import { sealAnnouncement, type Announcement } from "../../agent/gossip/wire";
import { readAnnouncement } from "../../agent/gossip/view";
import { cryptoReady, loadKeyFile, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { FileRegistry } from "../../agent/registry/file";
import { cli } from "../utils/agent";
import { eventually, startLocalGrid, viewOf, type LocalGrid } from "../utils/grid";
import { natsBus } from "../../agent/bus/nats";

let grid: LocalGrid;
let nc: NatsConnection;
let registry: FileRegistry;
let owner: Signer;
let client: NodeClient;
const subjects = new Subjects();

beforeAll(async () => {
  await cryptoReady();
  grid = await startLocalGrid(["--nodes", "3", "--ssd", "--ipv4", "2", "--log-level", "debug"]);
  nc = await connect({ servers: grid.info.nats });
  registry = new FileRegistry(grid.info.registry);
  owner = await loadKeyFile(grid.info.twin.key);
  client = new NodeClient(natsBus(nc), subjects);
});

afterAll(async () => {
  await nc?.close();
  await grid?.stop();
});

let nextId = 1;
function deployment(workloads: Array<Record<string, unknown>>) {
  const r = parseDeployment({ id: nextId++, twinId: grid.info.twin.id, version: 1, workloads });
  if (!r.ok) throw new Error(r.refusal.message);
  return buildDeployRequest(r.value, [{ twinId: grid.info.twin.id, signer: owner }]);
}

const peerOf = async (viewer: number, node: number) => (await viewOf(nc, viewer, registry)).peers.find((p) => p.announcement.nodeId === node)?.announcement;

test("the local grid says the agents share the machine's hardware, and every agent starts with the others in view", async () => {
  expect(grid.info.sharedHardware).toBe(true);
  expect(grid.info.nodes.map((n) => [n.nodeId, n.farmId])).toEqual([[1, 1], [2, 1], [3, 1]]);
  for (const n of [1, 2, 3]) {
    const v = await eventually(async () => {
      const view = await viewOf(nc, n, registry);
      return view.peers.length === 2 ? view : null;
    }, 5000, `node ${n} to see two peers`);
    expect(v.peers.map((p) => p.announcement.nodeId)).toEqual([1, 2, 3].filter((x) => x !== n)); // never itself
    expect(v.invalid).toBe(0);
  }
});

test("a deployment on node 1 changes what nodes 2 and 3 and find report within one second", async () => {
  const before = (await peerOf(2, 1))!;
  const d = await client.deploy(1, deployment([{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB" }, { name: "pub", type: "ipv4" }]));
  expect(d).toMatchObject({ accepted: true });
  const acked = Date.now();
  const want = { mru: before.free.mru - GiB, ipv4u: before.free.ipv4u - 1, cru: before.free.cru - 1 };
  for (const viewer of [2, 3]) {
    const seen = await eventually(async () => {
      const a = await peerOf(viewer, 1);
      return a && a.free.mru === want.mru ? a : null;
    }, 1000 - (Date.now() - acked), `node ${viewer} to see node 1's new free capacity`);
    expect(seen.free).toMatchObject(want);
    expect(seen.used.mru - before.used.mru).toBe(GiB);
    expect(seen.deployments).toBe(before.deployments + 1);
  }
  const found = await findCapacity(natsBus(nc), subjects, { want: { ...zeroUnits(), cru: 1 }, farmId: 0, limit: 0 }, { registry });
  expect(Date.now() - acked).toBeLessThan(2000); // find itself waits 300 ms after the last answer
  expect(found.found.find((a) => a.nodeId === 1)?.free).toMatchObject(want);
  expect(found.dropped).toEqual({});
});

test("find (CLI): verified, ranked JSON of exactly nodeId, farmId, free; the fuller node last; a farm filter and a limit", async () => {
  const env = { CAPACITY_AGENT_REGISTRY: grid.info.registry };
  const r = await cli(["find", "--mru", "1GiB", "--cru", "1", "--nats", grid.info.nats, "--json"], env);
  expect(r.code).toBe(0);
  const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  expect(list.map((x) => Object.keys(x).sort())).toEqual(list.map(() => ["farmId", "free", "nodeId"]));
  expect(list.map((x) => x.nodeId)).toEqual([2, 3, 1]); // node 1 holds a deployment: least headroom
  expect(Object.keys(list[0].free as object).sort()).toEqual(["cru", "gpu", "hru", "ipv4u", "mru", "sru"]);
  expect(r.stderr).not.toContain("no registry");
  const limited = await cli(["find", "--cru", "1", "--limit", "1", "--nats", grid.info.nats, "--json"], { CAPACITY_AGENT_REGISTRY: "" });
  expect(JSON.parse(limited.stdout)).toHaveLength(1);
  expect(limited.stderr).toContain("not bound to the key the registry gives"); // no registry: said clearly
  const none = await cli(["find", "--cru", "1", "--farm", "9", "--nats", grid.info.nats, "--json"], env);
  expect(none.code).toBe(1);
  expect(JSON.parse(none.stdout)).toEqual([]);
  const text = await cli(["find", "--mru", "1TiB", "--hru", "1PiB", "--nats", grid.info.nats], env);
  expect(text.code).toBe(1);
  expect(text.stdout).toContain("no node has room");
});

test("peers (CLI): JSON of exactly nodeId, farmId, sequence, free, ageMs", async () => {
  const r = await cli(["peers", "--node", "3", "--nats", grid.info.nats, "--json", "--registry", grid.info.registry]);
  expect(r.code).toBe(0);
  const rows = JSON.parse(r.stdout) as Array<Record<string, number>>;
  expect(rows.map((x) => x.nodeId)).toEqual([1, 2]);
  for (const row of rows) {
    expect(Object.keys(row).sort()).toEqual(["ageMs", "farmId", "free", "nodeId", "sequence"]);
    expect(row.sequence).toBeGreaterThan(0);
    expect(row.ageMs).toBeGreaterThanOrEqual(0);
  }
  const text = await cli(["peers", "--node", "3", "--nats", grid.info.nats]);
  expect(text.stdout).toContain("node 3 holds 2 peers");
  expect((await cli(["peers", "--node", "77", "--nats", grid.info.nats])).stderr).toContain("[node_unreachable]");
});

test("forged, replayed, other-node and malformed announcements published raw enter no view; each is counted with its reason", async () => {
  // capture two genuine announcements of node 1 and one of node 2, as any NATS user could
  const captured: Record<string, Uint8Array[]> = { "1": [], "2": [] };
  const sub = nc.subscribe(subjects.capacity(1, "*"), {
    callback: (_e, m) => {
      captured[m.subject.split(".").pop()!]?.push(m.data);
    },
  });
  await nc.flush();
  expect((await client.deploy(1, deployment([{ name: "pub", type: "ipv4" }]))).accepted).toBe(true);
  await eventually(() => captured["1"].length >= 1, 2000, "node 1's announcement");
  expect((await client.deploy(2, deployment([{ name: "pub", type: "ipv4" }]))).accepted).toBe(true);
  await eventually(() => captured["2"].length >= 1, 2000, "node 2's announcement");
  const old = captured["1"][0];
  const oldRead = readAnnouncement(old, 4096);
  if (!oldRead.ok) throw new Error(oldRead.refusal.reason);
  const oldSeq = oldRead.value.announcement.sequence;
  // a newer one of node 1 must be in every view before the old one is replayed
  expect((await client.deploy(1, deployment([{ name: "vm", type: "zmachine", cpu: 1, memory: "512MiB" }]))).accepted).toBe(true);
  for (const viewer of [2, 3]) await eventually(async () => ((await peerOf(viewer, 1))?.sequence ?? 0) > oldSeq, 2000, "a newer announcement of node 1");
  sub.unsubscribe();
  const genuine = { 2: (await peerOf(2, 1))!, 3: (await peerOf(3, 1))! };

  const greedy = (a: Announcement, over: Partial<Announcement>): Announcement => ({ ...a, sequence: a.sequence + 1_000_000, timestampMs: Date.now(), free: { ...a.free, mru: 1e15 }, ...over });
  const stranger = signerFromSeed("ed25519", crypto.randomBytes(32));
  const node2Key = await loadKeyFile(grid.info.nodes[1].key);
  const raw: Array<[string, string, Uint8Array]> = [
    ["bad_signature", subjects.capacity(1, 1), sealAnnouncement(stranger, greedy(genuine[2], {})).bytes], // forged
    ["bad_signature", subjects.capacity(1, 1), sealAnnouncement(node2Key, greedy(genuine[2], {})).bytes], // node 2's key, node 1's id
    ["wrong_subject", subjects.capacity(1, 1), captured["2"][0]], // node 2's genuine announcement on node 1's subject
    ["replay", subjects.capacity(1, 1), old], // node 1's own, older one
    ["unknown_node", subjects.capacity(1, 99), sealAnnouncement(stranger, greedy(genuine[2], { nodeId: 99 })).bytes],
    ["malformed", subjects.capacity(1, 1), new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff])],
    ["too_large", subjects.capacity(1, 1), new Uint8Array(5000).fill(7)],
  ];
  for (const [, subject, data] of raw) nc.publish(subject, data);
  await nc.flush();

  for (const viewer of [2, 3]) {
    // node 2 skips, unjudged, what carries its own signature (its echoes): the wrong_subject case is
    // its own announcement, so only node 3 judges that one
    const expected = viewer === 2 ? ["bad_signature", "malformed", "replay", "too_large", "unknown_node"] : ["bad_signature", "malformed", "replay", "too_large", "unknown_node", "wrong_subject"];
    await eventually(() => {
      const got = new Set(grid.logs(viewer).filter((l) => l.event === "announcement_dropped").map((l) => String(l.reason)));
      return expected.every((reason) => got.has(reason));
    }, 5000, `node ${viewer} to log every drop reason`);
    const badSigs = grid.logs(viewer).filter((l) => l.event === "announcement_dropped" && l.reason === "bad_signature" && l.nodeId === 1);
    expect(badSigs.length).toBeGreaterThanOrEqual(viewer === 2 ? 1 : 2);
    const view = await viewOf(nc, viewer, registry);
    expect(view.peers.map((p) => p.announcement.nodeId).sort()).toEqual([1, 2, 3].filter((x) => x !== viewer));
    const one = view.peers.find((p) => p.announcement.nodeId === 1)!.announcement;
    expect(one.sequence).toBe(genuine[viewer as 2 | 3].sequence);
    expect(one.free).toEqual(genuine[viewer as 2 | 3].free);
  }
  // node 1 itself: announcements claiming its id but not signed by its key are judged and dropped too
  await eventually(() => grid.logs(1).some((l) => l.event === "announcement_dropped" && l.reason === "bad_signature" && l.nodeId === 1), 5000, "node 1 to drop the forgeries of itself");
  // a drop is logged with its reason, never with the payload
  const dropLine = grid.logs(2).find((l) => l.event === "announcement_dropped")!;
  expect(dropLine.level).toBe(20);
  expect(Object.keys(dropLine)).not.toContain("data");
});
