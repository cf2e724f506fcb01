/**
 * What a farmer sees first, against a real nats-server and a real agent process: one log line per
 * refusal naming code, deployment, twin and requester; one `module` key per line; /healthz that
 * follows NATS.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeleteRequest, buildDeployRequest, readStatusReply } from "../../agent/api/messages";
import { parseDeployment, type DeploymentSpec } from "../../agent/admission/spec";
import { freePort, natsBus } from "../../agent/bus/nats";
import { Subjects } from "../../agent/bus/subjects";
import { cryptoReady, loadKeyFile, toHex, type Signer } from "../../agent/identity/keys";
import { cli, startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { natsBin, startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { newKeys, registryFile, stopAll } from "../utils/setup";

let nats: NatsServerHandle;
let agent: AgentProcess;
let nc: NatsConnection;
let client: NodeClient;
let owner: Signer; // twin 7
let stranger: Signer; // in no registry
let metricsPort: number;

function spec(p: Record<string, unknown>): DeploymentSpec {
  const r = parseDeployment({ twinId: 7, version: 1, ...p });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  const dir = tmpDir("farmer-");
  const keys = await newKeys(dir, ["node", "owner", "stranger"]);
  const registry = await registryFile(dir, { nodes: [{ id: 1, farm: 1, key: keys.node }], twins: [{ id: 7, key: keys.owner }] });
  metricsPort = await freePort();
  // the paging test deploys 250 deployments as one twin: above the default per-twin write rate
  const config = path.join(dir, "config.json");
  fs.writeFileSync(config, JSON.stringify({ api: { limits: { writeRate: 10_000, writeBurst: 10_000 } } }));
  agent = await startAgent(["--nats", nats.url, "--data", path.join(dir, "data"), "--key", keys.node, "--registry", registry, "--no-chain", "--metrics-port", String(metricsPort), "--config", config]);
  owner = await loadKeyFile(keys.owner);
  stranger = await loadKeyFile(keys.stranger);
  nc = await connect({ servers: nats.url });
  client = new NodeClient(natsBus(nc), new Subjects());
});

afterAll(() => stopAll(nc, agent, nats));

/** The refusal lines for deployment `id`, once `n` are there. */
async function refusals(id: number, n = 1): Promise<Array<Record<string, unknown>>> {
  const of = (): Array<Record<string, unknown>> => agent.logs.filter((l) => (l.event === "deployment_rejected" || l.event === "deletion_rejected") && l.deploymentId === id);
  await waitFor(() => of().length >= n, 5000, `${n} refusal line(s) for deployment ${id}`);
  await new Promise((r) => setTimeout(r, 100)); // a second line for the same refusal would be written by now
  return of();
}

test("every refusal is one log line with code, deployment id, twin id and requester", async () => {
  const now = Date.now();
  // a delete from a twin nobody registered
  expect((await client.delete(1, buildDeleteRequest(501, 99, stranger, now))).code).toBe("unauthorized");
  expect(await refusals(501)).toEqual([expect.objectContaining({ event: "deletion_rejected", code: "unauthorized", module: "api", deploymentId: 501, twinId: 99, requester: toHex(stranger.publicKey) })]);
  // a delete in twin 7's name signed by another key
  expect((await client.delete(1, buildDeleteRequest(502, 7, stranger, now))).code).toBe("bad_signature");
  expect(await refusals(502)).toEqual([expect.objectContaining({ event: "deletion_rejected", code: "bad_signature", deploymentId: 502, twinId: 7, requester: toHex(stranger.publicKey) })]);
  // an old delete
  expect((await client.delete(1, buildDeleteRequest(503, 7, owner, now - 3_600_000))).code).toBe("stale_request");
  expect(await refusals(503)).toEqual([expect.objectContaining({ code: "stale_request", deploymentId: 503, twinId: 7, requester: toHex(owner.publicKey) })]);
  // the ledger refuses: nothing to delete
  const nf = await client.delete(1, buildDeleteRequest(504, 7, owner, now));
  expect(nf.accepted).toBe(false);
  expect(await refusals(504)).toEqual([expect.objectContaining({ event: "deletion_rejected", code: nf.code, deploymentId: 504, twinId: 7, requester: toHex(owner.publicKey) })]);
  // a deployment in twin 7's name signed by another key
  const vm = (id: number, memory: string): DeploymentSpec => spec({ id, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory, rootfs: "1GiB" }] });
  expect((await client.deploy(1, buildDeployRequest(vm(505, "1GiB"), [{ twinId: 7, signer: stranger }]))).code).toBe("bad_signature");
  expect(await refusals(505)).toEqual([expect.objectContaining({ event: "deployment_rejected", code: "bad_signature", deploymentId: 505, version: 1, twinId: 7, requester: "twins 7" })]);
  // more memory than any node has: the ledger refuses, one line with the unit and numbers
  const big = await client.deploy(1, buildDeployRequest(vm(506, "64TiB"), [{ twinId: 7, signer: owner }]));
  expect(big.code).toBe("insufficient_capacity");
  expect(await refusals(506)).toEqual([expect.objectContaining({ event: "deployment_rejected", code: "insufficient_capacity", deploymentId: 506, twinId: 7, requester: "twins 7", unit: "mru" })]);
});

test("no log line carries the module key twice", async () => {
  expect(agent.lines.length).toBeGreaterThan(5);
  const twice = agent.lines.filter((l) => l.split('"module":').length > 2);
  expect(twice).toEqual([]);
  expect(agent.logs.filter((l) => l.module === "api").length).toBeGreaterThan(0);
});

test("status comes in pages: the first holds 100 deployments and the count, the client and the CLI get them all", async () => {
  const n = 250;
  for (let id = 1000; id < 1000 + n; id++) {
    const d = await client.deploy(1, buildDeployRequest(spec({ id, workloads: [{ name: "net", type: "network" }] }), [{ twinId: 7, signer: owner }]));
    expect(d.accepted).toBe(true);
  }
  const raw = await nc.request(`tfgrid.v1.node.1.status`, new Uint8Array(), { timeout: 5000 });
  const first = readStatusReply(raw.data);
  expect(first.deployments.map((d) => d.id)).toEqual(Array.from({ length: 100 }, (_, i) => 1000 + i));
  expect(first).toMatchObject({ deploymentCount: n, more: true });
  expect(raw.data.length).toBeLessThan(32 * 1024);
  const last = await client.statusPage(1, 1000 + n - 11, 50);
  expect(last.deployments.map((d) => d.id)).toEqual(Array.from({ length: 10 }, (_, i) => 1000 + n - 10 + i));
  expect(last.more).toBe(false);
  for (const pageSize of [100, 1000]) {
    const all = await client.status(1, pageSize); // 3 pages, 1 page
    expect(all.deployments.map((d) => d.id)).toEqual(Array.from({ length: n }, (_, i) => 1000 + i));
  }
  const st = await cli(["status", "--node", "1", "--nats", nats.url, "--json"]);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.stdout).deployments).toHaveLength(n);
  // a malformed request gets a signed refusal with a stable code, and the agent goes on
  const bad = await nc.request(`tfgrid.v1.node.1.status`, new Uint8Array([0xff, 0xff, 0xff]), { timeout: 5000 });
  expect(() => readStatusReply(bad.data)).toThrow(expect.objectContaining({ code: "malformed" }));
  expect((await client.statusPage(1)).deploymentCount).toBe(n);
});

test("/healthz answers JSON: 200 ok while NATS is connected, 503 down once it is gone, 200 again when it is back", async () => {
  const get = async (): Promise<{ code: number; body: { status: string; nats: { connected: boolean }; chain: unknown } }> => {
    const r = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    return { code: r.status, body: (await r.json()) as never };
  };
  const up = await get();
  expect(up).toEqual({ code: 200, body: expect.objectContaining({ status: "ok", nats: expect.objectContaining({ connected: true }), chain: null }) });
  await nats.kill();
  let last = up;
  await waitFor(async () => (last = await get()).code === 503, 10_000, "/healthz to say 503");
  expect(last.body).toMatchObject({ status: "down", nats: { connected: false, disconnects: 1 } });
  expect(agent.child.exitCode).toBeNull();
  // a nats-server back on the same port: the agent reconnects and /healthz says ok again
  const again = spawn(natsBin(), ["-a", "127.0.0.1", "-p", String(nats.port)], { stdio: "ignore" });
  try {
    await waitFor(async () => (last = await get()).code === 200, 15_000, "/healthz to say 200 again");
    expect(last.body).toMatchObject({ status: "ok", nats: { connected: true, disconnects: 1 } });
  } finally {
    again.kill("SIGTERM");
    await new Promise((r) => (again.exitCode !== null ? r(null) : again.once("exit", r)));
  }
});
