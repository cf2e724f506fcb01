/**
 * Recent decisions (node.<N>.decisions) end to end: a real nats-server, a real agent process, real
 * keys, signatures and store. Decisions appear newest first in the order the node made them, a
 * refusal carries its code (and unit/requested/free for insufficient_capacity), the ring keeps the
 * last 100, and the CLI (`capacity-agent decisions`, `status --watch`) shows them.
 */
import { natsBus } from "../../agent/bus/nats";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { DECISIONS_KEPT, readDecisionsReply } from "../../agent/api/decisions";
import { buildDeleteRequest, buildDeployRequest, NodeRefused } from "../../agent/api/messages";
import { parseDeployment, type DeploymentSpec } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { CLEAR_SCREEN } from "../../agent/cli/commands/status";
import { cli, startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, type NatsServerHandle } from "../utils/nats";

let nats: NatsServerHandle;
let agent: AgentProcess;
let nc: NatsConnection;
let client: NodeClient;
let dir: string;
let owner: Signer;
let nodeKey: Signer;
const subjects = new Subjects();

function vm(id: number, memory: string, version = 1): DeploymentSpec {
  const r = parseDeployment({ id, twinId: 7, version, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory, rootfs: "1GiB" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}

const deploy = (s: DeploymentSpec) => client.deploy(1, buildDeployRequest(s, [{ twinId: 7, signer: owner }]));

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("decisions-");
  for (const name of ["node", "owner"]) expect((await cli(["keys", "new", "--out", path.join(dir, `${name}.json`)])).code).toBe(0);
  const registry = path.join(dir, "registry.json");
  expect((await cli(["registry", "add", "--file", registry, "--node", "1", "--farm", "1", "--key", path.join(dir, "node.json")])).code).toBe(0);
  expect((await cli(["registry", "add", "--file", registry, "--twin", "7", "--key", path.join(dir, "owner.json")])).code).toBe(0);
  const hw = JSON.parse((await cli(["hardware", "--json"])).stdout) as { disks: Array<{ name: string }> };
  const config = path.join(dir, "config.json");
  // many deploys from one connection: raise the write rate (the ring test sends more than 100)
  fs.writeFileSync(config, JSON.stringify({ api: { limits: { writeRate: 10_000, writeBurst: 10_000 } }, hardware: { diskOverrides: Object.fromEntries(hw.disks.map((d) => [d.name, "ssd"])) } }));
  agent = await startAgent(["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "1", "--farm-id", "1", "--key", path.join(dir, "node.json"), "--registry", registry, "--config", config]);
  owner = await loadKeyFile(path.join(dir, "owner.json"));
  nodeKey = await loadKeyFile(path.join(dir, "node.json"));
  nc = await connect({ servers: nats.url });
  client = new NodeClient(natsBus(nc), subjects);
});

afterAll(async () => {
  await nc?.close();
  await agent?.stop();
  await nats?.stop();
});

test("a fresh node has no decisions; the reply is signed by the node", async () => {
  const v = await client.decisions(1);
  expect(v).toMatchObject({ nodeId: 1, total: 0, kept: DECISIONS_KEPT, decisions: [] });
  expect(Buffer.from(v.signer).equals(Buffer.from(nodeKey.publicKey))).toBe(true);
});

test("decisions appear newest first in the order made; refusals carry their code and numbers", async () => {
  const free = (await client.status(1)).free.mru;
  expect(await deploy(vm(1, "1GiB"))).toMatchObject({ accepted: true, code: "ok" });
  expect(await deploy(vm(1, "1GiB"))).toMatchObject({ accepted: true, code: "duplicate" });
  expect(await deploy(vm(1, "2GiB", 2))).toMatchObject({ accepted: true });
  const tooBig = await deploy(vm(2, `${Math.ceil(free / 1024 ** 3) + 4}GiB`));
  expect(tooBig).toMatchObject({ accepted: false, code: "insufficient_capacity" });
  // refused by the API's checks (before the ledger): a delete signed by a key that is not the owner's
  const stranger = await loadKeyFile(path.join(dir, "node.json"));
  expect(await client.delete(1, buildDeleteRequest(1, 7, stranger, Date.now()))).toMatchObject({ accepted: false, code: "bad_signature" });
  expect(await client.delete(1, buildDeleteRequest(1, 7, owner, Date.now()))).toMatchObject({ accepted: true });
  expect(await client.delete(1, buildDeleteRequest(1, 7, owner, Date.now()))).toMatchObject({ accepted: true, code: "duplicate" });

  const v = await client.decisions(1);
  expect(v.total).toBe(7);
  const shape = v.decisions.map((d) => [d.seq, d.op, d.result, d.deploymentId, d.version, d.rejection?.code ?? ""]);
  expect(shape).toEqual([
    [7, "delete", "already_deleted", 1, 2, ""],
    [6, "delete", "delete", 1, 2, ""],
    [5, "delete", "refused", 1, 0, "bad_signature"],
    [4, "deploy", "refused", 2, 1, "insufficient_capacity"],
    [3, "deploy", "update", 1, 2, ""],
    [2, "deploy", "duplicate", 1, 1, ""],
    [1, "deploy", "create", 1, 1, ""],
  ]);
  const refusal = v.decisions[3];
  expect(refusal.twinId).toBe(7);
  expect(refusal.rejection).toMatchObject({ code: "insufficient_capacity", unit: tooBig.rejection!.unit, requested: tooBig.rejection!.requested, free: tooBig.rejection!.free });
  expect(refusal.rejection!.requested).toBeGreaterThan(refusal.rejection!.free!);
  for (let i = 1; i < v.decisions.length; i++) expect(v.decisions[i - 1].timeMs).toBeGreaterThanOrEqual(v.decisions[i].timeMs);
  for (const d of v.decisions) expect(d.latencyUs).toBeGreaterThan(0);
  // a limit gives the newest
  expect((await client.decisions(1, 2)).decisions.map((d) => d.seq)).toEqual([7, 6]);
});

test("the CLI prints them (human and JSON)", async () => {
  const j = await cli(["decisions", "--node", "1", "--nats", nats.url, "--json", "--limit", "4"]);
  expect(j.code).toBe(0);
  const out = JSON.parse(j.stdout) as { nodeId: number; total: number; kept: number; decisions: Array<{ seq: number; result: string; rejection?: { code: string; unit?: string } }> };
  expect(out).toMatchObject({ nodeId: 1, total: 7, kept: DECISIONS_KEPT });
  expect(out.decisions.map((d) => d.seq)).toEqual([7, 6, 5, 4]);
  expect(out.decisions[3].rejection).toMatchObject({ code: "insufficient_capacity", unit: "mru" });
  const h = await cli(["decisions", "--node", "1", "--nats", nats.url]);
  expect(h.code).toBe(0);
  expect(h.stdout).toMatch(/7 decisions since its start/);
  expect(h.stdout).toMatch(/deploy #2 v1\s+twin 7\s+refused insufficient_capacity \(mru: requested \d+(\.\d+)? GiB, free [\d.]+ \w+\)/);
  expect((await cli(["decisions", "--nats", nats.url])).code).toBe(2);
  // status --watch shows the last decisions
  const w = await cli(["status", "--node", "1", "--nats", nats.url, "--watch", "--interval-ms", "200", "--count", "1"]);
  const frame = w.stdout.split(CLEAR_SCREEN).filter((f) => f.trim())[0];
  expect(frame).toMatch(/decisions\s+7 since the agent started, the last 7:/);
  expect(frame).toMatch(/delete #1 v2\s+twin 7\s+already_deleted/);
  const wj = await cli(["status", "--node", "1", "--nats", nats.url, "--watch", "--interval-ms", "200", "--count", "1", "--json"]);
  expect((JSON.parse(wj.stdout) as { decisions: Array<{ seq: number }> }).decisions[0].seq).toBe(7);
});

test("the ring keeps the last 100; a bad request gets a signed refusal with a stable code", async () => {
  const before = (await client.decisions(1)).total;
  const n = DECISIONS_KEPT + 30;
  // refusals (more memory than the node has) take no room, so any machine runs this; sequential: the order is the order sent
  const huge = `${Math.ceil((await client.status(1)).free.mru / 1024 ** 3) + 4}GiB`;
  for (let i = 0; i < n; i++) expect(await deploy(vm(1000 + i, huge))).toMatchObject({ code: "insufficient_capacity" });
  const v = await client.decisions(1);
  expect(v.total).toBe(before + n);
  expect(v.decisions).toHaveLength(DECISIONS_KEPT);
  expect(v.decisions[0]).toMatchObject({ seq: before + n, deploymentId: 1000 + n - 1, result: "refused" });
  expect(v.decisions[DECISIONS_KEPT - 1]).toMatchObject({ seq: before + n - DECISIONS_KEPT + 1, deploymentId: 1000 + n - DECISIONS_KEPT });
  expect(v.decisions.map((d) => d.seq)).toEqual(Array.from({ length: DECISIONS_KEPT }, (_, i) => before + n - i));

  const bad = (await nc.request(subjects.nodeDecisions(1), new Uint8Array([0xff, 0xff, 0xff]), { timeout: 3000 })).data;
  const o = open(bad, DOMAIN.DecisionsReply);
  expect(o.ok).toBe(true);
  expect(() => readDecisionsReply(bad)).toThrow(NodeRefused);
  expect(() => readDecisionsReply(bad)).toThrow(/malformed/);
}, 60_000);
