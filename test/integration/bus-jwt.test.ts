/**
 * Decentralised JWT auth (docs/bus-security.md): scripts/bus-config --jwt makes an operator, an
 * account and user JWTs with nkeys; a real nats-server in operator mode trusts them. An agent
 * connects with its creds file and serves a deployer; the permissions in a user's JWT hold; a user
 * JWT signed by an account the operator never signed, and a client without credentials, are refused.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { credsFileText, decodeJwtClaims, userJwt } from "../../agent/bus/jwt";
import { permissionsOf } from "../../agent/bus/permissions";
import { cli, startAgent, startDaemon, tmpDir, type AgentProcess } from "../utils/agent";
import { connectWatched, securedBus, type BusUser } from "../utils/bus-config";
import { waitFor, type NatsServerHandle } from "../utils/nats";

let dir: string;
let url: string;
let server: NatsServerHandle;
let agent: AgentProcess;
let users: Record<string, BusUser>;
const open: NatsConnection[] = [];
let registry: string;

beforeAll(async () => {
  dir = tmpDir("bus-jwt-");
  ({ url, users, server } = await securedBus(path.join(dir, "bus"), ["--nodes", "1:1,2:1", "--deployers", "alice", "--jwt"]));
  const key = path.join(dir, "node.json");
  expect((await cli(["keys", "new", "--out", key])).code).toBe(0);
  registry = path.join(dir, "registry.json");
  expect((await cli(["registry", "add", "--file", registry, "--node", "1", "--farm", "1", "--key", key])).code).toBe(0);
  agent = await startAgent(["--config", users["node-1"].configFile, "--data", path.join(dir, "data"), "--key", key, "--registry", registry, "--no-chain", "--heartbeat", "1"]);
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await agent?.stop();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function connectWith(credsFile: string | null, inboxPrefix?: string): Promise<{ nc: NatsConnection; errors: string[] }> {
  return connectWatched(url, credsFile ? { credsFile, inboxPrefix } : {}, open);
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
