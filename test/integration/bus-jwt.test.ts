/**
 * Decentralised JWT auth (docs/bus-security.md): scripts/bus-config --jwt makes an operator, an
 * account and user JWTs with nkeys; a real nats-server in operator mode trusts them. An agent
 * connects with its creds file and serves a deployer; the permissions in a user's JWT hold; a user
 * JWT signed by an account the operator never signed, and a client without credentials, are refused.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { connectAuth, freePort, natsAnswers } from "../../agent/bus/nats";
import { credsFileText, decodeJwtClaims, userJwt } from "../../agent/bus/jwt";
import { permissionsOf } from "../../agent/bus/permissions";
import { ROOT, cli, startAgent, startDaemon, tmpDir, type AgentProcess } from "../utils/agent";
import { natsBin, waitFor } from "../utils/nats";

const BUS_CONFIG = path.join(ROOT, "dist", "scripts", "bus-config.js");

let dir: string;
let url: string;
let server: ChildProcess;
let serverLog = "";
let agent: AgentProcess;
let users: Record<string, { credsFile: string; inboxPrefix: string; configFile: string; publicKey: string }>;
const open: NatsConnection[] = [];
let registry: string;

beforeAll(async () => {
  dir = tmpDir("bus-jwt-");
  const port = await freePort();
  const out = execFileSync(process.execPath, [BUS_CONFIG, "--out", path.join(dir, "bus"), "--nodes", "1:1,2:1", "--deployers", "alice", "--port", String(port), "--jwt", "--json"], { encoding: "utf8" });
  const info = JSON.parse(out) as { url: string; serverConfig: string; users: Array<{ name: string; credsFile: string; inboxPrefix: string; configFile: string; publicKey: string }> };
  url = info.url;
  users = Object.fromEntries(info.users.map((u) => [u.name, u]));
  server = spawn(natsBin(), ["-c", info.serverConfig], { stdio: ["ignore", "ignore", "pipe"] });
  server.stderr?.on("data", (d: Buffer) => (serverLog = (serverLog + d.toString()).slice(-20_000)));
  await waitFor(async () => {
    if (server.exitCode !== null) throw new Error(`nats-server exited: ${serverLog}`);
    return natsAnswers(url, 300);
  }, 10_000, "nats-server in operator mode");
  const key = path.join(dir, "node.json");
  expect((await cli(["keys", "new", "--out", key])).code).toBe(0);
  registry = path.join(dir, "registry.json");
  expect((await cli(["registry", "add", "--file", registry, "--node", "1", "--farm", "1", "--key", key])).code).toBe(0);
  agent = await startAgent(["--config", users["node-1"].configFile, "--data", path.join(dir, "data"), "--key", key, "--registry", registry, "--no-chain", "--heartbeat", "1"]);
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await agent?.stop();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function connectWith(credsFile: string | null, inboxPrefix?: string): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await connect({ servers: [url], ...(connectAuth([url], credsFile ? { credsFile, inboxPrefix } : {}).options as object), timeout: 3000, maxReconnectAttempts: 0 });
  open.push(nc);
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(String((s as { error?: unknown }).error));
  })().catch(() => undefined);
  return { nc, errors };
}

test("the agent connects with its creds file and a deployer reaches it with its own", async () => {
  expect(agent.logs.find((l) => l.event === "nats_connected")).toMatchObject({ auth: "creds", nkey: users["node-1"].publicKey });
  const st = await cli(["status", "--node", "1", "--json", "--nats", url, "--nats-creds", users.alice.credsFile, "--nats-inbox-prefix", users.alice.inboxPrefix]);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.stdout)).toMatchObject({ nodeId: 1 });
  const found = await cli(["find", "--json", "--nats", url, "--nats-creds", users.alice.credsFile, "--nats-inbox-prefix", users.alice.inboxPrefix]);
  expect(JSON.parse(found.stdout).map((n: { nodeId: number }) => n.nodeId)).toEqual([1]);
  expect(agent.logs.filter((l) => l.event === "nats_error")).toEqual([]);
  // the creds file's JWT carries the layout's permissions
  const jwt = /-----BEGIN NATS USER JWT-----\n(\S+)\n/.exec(fs.readFileSync(users["node-1"].credsFile, "utf8"))![1];
  expect(decodeJwtClaims(jwt)).toMatchObject({ sub: users["node-1"].publicKey, nats: { pub: { allow: expect.arrayContaining(["tfgrid.v1.capacity.1.1"]) }, resp: { max: 1 } } });
  expect(fs.statSync(users["node-1"].credsFile).mode & 0o777).toBe(0o600);
}, 30_000);

test("the farm dashboard connects with a deployer's creds and shows the node", async () => {
  const dash = await startDaemon(["dashboard", "--farm", "1", "--port", "0", "--registry", registry, "--nats", url, "--nats-creds", users.alice.credsFile, "--nats-inbox-prefix", users.alice.inboxPrefix], "dashboard_started");
  try {
    expect(dash.logs.find((l) => l.event === "nats_connected")).toMatchObject({ auth: "creds", nkey: users.alice.publicKey });
    expect(dash.logs.find((l) => l.event === "dashboard_started")).toMatchObject({ nodes: 1 });
  } finally {
    await dash.stop();
  }
}, 30_000);

test("a node's JWT does not let it publish as another node", async () => {
  const watcher = await connectWith(users.alice.credsFile, users.alice.inboxPrefix);
  const seen: string[] = [];
  watcher.nc.subscribe("tfgrid.v1.capacity.1.*", { callback: (_e, m) => void seen.push(new TextDecoder().decode(m.data)) });
  await watcher.nc.flush();
  const node2 = await connectWith(users["node-2"].credsFile, users["node-2"].inboxPrefix);
  node2.nc.publish("tfgrid.v1.capacity.1.1", new TextEncoder().encode("forged-by-node-2"));
  node2.nc.publish("tfgrid.v1.capacity.1.2", new TextEncoder().encode("own-subject-marker"));
  await node2.nc.flush();
  await waitFor(() => seen.includes("own-subject-marker"), 5000, "node 2's message on its own subject");
  await waitFor(() => node2.errors.some((e) => /publish to "tfgrid\.v1\.capacity\.1\.1"/i.test(e)), 5000, "the permissions violation");
  expect(seen.filter((s) => s.includes("forged"))).toEqual([]);
}, 20_000);

test("a user JWT from an account the operator did not sign, and no credentials at all, are refused", async () => {
  const { nkeys } = require("@nats-io/transport-node") as typeof import("@nats-io/transport-node");
  const rogueAccount = nkeys.createAccount();
  const user = nkeys.createUser();
  const rogue = path.join(dir, "rogue.creds");
  fs.writeFileSync(rogue, credsFileText(userJwt(rogueAccount, user.getPublicKey(), "rogue", permissionsOf({ kind: "node", name: "node-1", publicKey: user.getPublicKey(), nodeId: 1, farmId: 1 })), new TextDecoder().decode(user.getSeed())), { mode: 0o600 });
  await expect(connectWith(rogue)).rejects.toThrow(/authoriz/i);
  await expect(connectWith(null)).rejects.toThrow(/authoriz/i);
  const r = await cli(["status", "--node", "1", "--nats", url, "--nats-creds", rogue]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/\[nats_unauthorized\]/);
  const seed = new TextDecoder().decode(user.getSeed());
  expect(r.stdout + r.stderr).not.toContain(seed);
  for (const l of agent.lines) for (const u of Object.values(users)) expect(l).not.toContain(/SU[A-Z2-7]{56}/.exec(fs.readFileSync(u.credsFile, "utf8"))![0]);
}, 20_000);
