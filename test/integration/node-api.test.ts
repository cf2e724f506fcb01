/**
 * The node API end to end: a real nats-server, a real agent process (`capacity-agent run`), real
 * keys and signatures, the real on-disk store and this machine's real hardware.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeleteRequest, buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment, type DeploymentSpec } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { GiB } from "../../agent/capacity/units";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { encode } from "../../agent/wire/codec";
import { cli, startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { ISSUE_EXAMPLE } from "../utils/deployments";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { registryFile, ssdConfig, stopAll } from "../utils/setup";
import { natsBus } from "../../agent/bus/nats";

let nats: NatsServerHandle;
let agent: AgentProcess;
let nc: NatsConnection;
let client: NodeClient;
let dir: string;
let agentArgs: string[];
let owner: Signer; // twin 7, ed25519
let other: Signer; // twin 8, sr25519
const keys: Record<string, string> = {};

function spec(p: Record<string, unknown>): DeploymentSpec {
  const r = parseDeployment({ twinId: 7, version: 1, ...p });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}

const vm = (id: number, memory: string, extra: Record<string, unknown> = {}): DeploymentSpec =>
  spec({ id, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory, rootfs: "1GiB" }], ...extra });

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("node-api-");
  for (const [name, type] of [["node", "ed25519"], ["owner", "ed25519"], ["other", "sr25519"]]) {
    keys[name] = path.join(dir, `${name}.json`);
    const r = await cli(["keys", "new", "--out", keys[name], "--type", type]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type, address: expect.stringMatching(/^5/), publicKey: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
  }
  const registry = await registryFile(dir, { nodes: [{ id: 1, farm: 1, key: keys.node }], twins: [{ id: 7, key: keys.owner }, { id: 8, key: keys.other }] });
  // every disk SSD so VMs have room, and one public IPv4 (farm-assigned) to race for
  const config = await ssdConfig(dir, { ipv4u: 1 });
  agentArgs = ["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "1", "--farm-id", "1", "--key", keys.node, "--registry", registry, "--config", config];
  agent = await startAgent(agentArgs);
  owner = await loadKeyFile(keys.owner);
  other = await loadKeyFile(keys.other);
  nc = await connect({ servers: nats.url });
  client = new NodeClient(natsBus(nc), new Subjects());
});

afterAll(() => stopAll(nc, agent, nats));

test("a signed deployment sent with the CLI is accepted and shows in status", async () => {
  const file = path.join(dir, "d42.json");
  fs.writeFileSync(
    file,
    // without the 0-db namespace: it reserves HDD, and every disk of this node counts as SSD
    JSON.stringify({ ...ISSUE_EXAMPLE, workloads: ISSUE_EXAMPLE.workloads.filter((w) => w.type !== "zdb") }),
  );
  const r = await cli(["deploy", "--node", "1", "--file", file, "--key", keys.owner, "--nats", nats.url, "--json"]);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ accepted: true, code: "ok" });
  const again = await cli(["deploy", "--node", "1", "--file", file, "--key", keys.owner, "--nats", nats.url, "--json"]);
  expect(JSON.parse(again.stdout)).toMatchObject({ accepted: true, code: "duplicate" });
  const st = await cli(["status", "--node", "1", "--nats", nats.url, "--json"]);
  const s = JSON.parse(st.stdout);
  expect(s.deployments).toEqual([expect.objectContaining({ id: 42, twinId: 7, version: 1 })]);
  expect(s.used).toEqual({ cru: 2, mru: 4 * GiB, sru: 60 * GiB, hru: 0, ipv4u: 1, gpu: 0 });
  for (const u of ["cru", "mru", "sru", "hru", "ipv4u", "gpu"]) expect(s.free[u]).toBe(Math.max(0, s.reservable[u] - s.used[u]));
  expect(agent.logs.some((l) => l.event === "deployment_accepted" && l.id === 42)).toBe(true);
});

test("over capacity is refused with insufficient_capacity, the unit, requested and free", async () => {
  const before = await client.status(1);
  const want = before.free.mru + GiB;
  const d = await client.deploy(1, buildDeployRequest(vm(50, String(want)), [{ twinId: 7, signer: owner }]));
  expect(d).toMatchObject({ accepted: false, code: "insufficient_capacity", rejection: { unit: "mru", requested: want, free: before.free.mru } });
  expect((await client.status(1)).used).toEqual(before.used);
});

test("forged, wrong-twin and unknown-twin signatures are refused and change nothing", async () => {
  const before = await client.status(1);
  // twin 8's key signing as twin 7
  const forged = await client.deploy(1, buildDeployRequest(vm(60, "1GiB"), [{ twinId: 7, signer: other }]));
  expect(forged.code).toBe("bad_signature");
  // twin 8 signs (validly) a deployment owned by twin 7
  const wrong = await client.deploy(1, buildDeployRequest(vm(61, "1GiB", { signatureRequirement: { weightRequired: 1, requests: [{ twinId: 7, weight: 1, required: true }, { twinId: 8, weight: 1 }] } }), [{ twinId: 8, signer: other }]));
  expect(wrong.code).toBe("unauthorized");
  // a twin the registry does not know
  const unknown = await client.deploy(1, buildDeployRequest(vm(62, "1GiB", { twinId: 99 }), [{ twinId: 99, signer: owner }]));
  expect(unknown.code).toBe("unauthorized");
  // a flipped bit in a valid request
  const good = buildDeployRequest(vm(63, "1GiB"), [{ twinId: 7, signer: owner }]);
  const flipped = Uint8Array.from(good);
  flipped[flipped.length - 5] ^= 0x01;
  expect((await client.deploy(1, flipped)).code).toBe("bad_signature");
  expect((await client.status(1)).deployments.map((d) => d.id)).toEqual(before.deployments.map((d) => d.id));
});

test("multi-signature: co-signer weights must reach the requirement", async () => {
  const req = { signatureRequirement: { weightRequired: 3, requests: [{ twinId: 7, weight: 1, required: true }, { twinId: 8, weight: 2 }] } };
  expect((await client.deploy(1, buildDeployRequest(vm(70, "512MiB", req), [{ twinId: 7, signer: owner }]))).code).toBe("unauthorized");
  const both = await client.deploy(1, buildDeployRequest(vm(70, "512MiB", req), [{ twinId: 7, signer: owner }, { twinId: 8, signer: other }]));
  expect(both).toMatchObject({ accepted: true, code: "ok" });
});

test("malformed, oversized and invalid requests get codes and the agent stays up", async () => {
  const before = await client.status(1);
  expect((await client.deploy(1, new Uint8Array([0xff, 0xff, 0xff, 0xff]))).code).toBe("malformed");
  expect((await client.deploy(1, new Uint8Array(300 * 1024))).code).toBe("too_large");
  const invalid = encode("DeployRequest", { deployment: encode("Deployment", { id: 80, twinId: 7, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 0, memory: 1 }] }), signatures: [] });
  expect(await client.deploy(1, invalid)).toMatchObject({ code: "invalid_spec", rejection: { path: "workloads[0].cpu" } });
  expect((await client.delete(1, new Uint8Array([1, 2, 3]))).code).toBe("malformed");
  const after = await client.status(1);
  expect(after.used).toEqual(before.used);
  expect(agent.child.exitCode).toBeNull();
});

test("ten concurrent deploys for the last public IPv4: exactly one wins", async () => {
  // deployment 42 holds the only IPv4; free it first
  expect((await client.delete(1, buildDeleteRequest(42, 7, owner, Date.now()))).accepted).toBe(true);
  expect((await client.status(1)).free.ipv4u).toBe(1);
  const reqs = Array.from({ length: 10 }, (_, i) => buildDeployRequest(spec({ id: 100 + i, workloads: [{ name: "pub", type: "ipv4" }] }), [{ twinId: 7, signer: owner }]));
  const answers = await Promise.all(reqs.map((r) => client.deploy(1, r)));
  expect(answers.filter((a) => a.accepted)).toHaveLength(1);
  const losers = answers.filter((a) => !a.accepted);
  expect(losers).toHaveLength(9);
  for (const l of losers) expect(l.rejection).toMatchObject({ code: "insufficient_capacity", unit: "ipv4u", requested: 1, free: 0 });
  expect((await client.status(1)).free.ipv4u).toBe(0);
});

test("only the owner may delete; delete frees the capacity; deleting twice answers the same", async () => {
  const d = await client.deploy(1, buildDeployRequest(vm(90, "1GiB"), [{ twinId: 7, signer: owner }]));
  expect(d.accepted).toBe(true);
  const notOwner = await client.delete(1, buildDeleteRequest(90, 8, other, Date.now()));
  expect(notOwner.code).toBe("unauthorized");
  const stale = await client.delete(1, buildDeleteRequest(90, 7, owner, Date.now() - 3_600_000));
  expect(stale.code).toBe("stale_request");
  const before = await client.status(1);
  const r = await cli(["delete", "--node", "1", "--id", "90", "--key", keys.owner, "--nats", nats.url, "--json"]);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ accepted: true });
  const after = await client.status(1);
  expect(before.used.mru - after.used.mru).toBe(GiB);
  const twice = await client.delete(1, buildDeleteRequest(90, 7, owner, Date.now()));
  expect(twice).toMatchObject({ accepted: true, code: "duplicate" });
  // and a deleted id cannot come back at its old version
  expect((await client.deploy(1, buildDeployRequest(vm(90, "1GiB"), [{ twinId: 7, signer: owner }]))).code).toBe("stale_version");
});

test("an acknowledged deployment survives SIGKILL of the agent", async () => {
  const req = buildDeployRequest(vm(200, "768MiB"), [{ twinId: 7, signer: owner }]);
  const d = await client.deploy(1, req);
  expect(d.accepted).toBe(true);
  const before = await client.status(1);
  await agent.kill();
  agent = await startAgent(agentArgs);
  const after = await client.status(1);
  expect(after.deployments).toEqual(before.deployments);
  expect(after.used).toEqual(before.used);
  expect(await client.deploy(1, req)).toMatchObject({ accepted: true, code: "duplicate" });
});
