/**
 * An authenticated, encrypted bus (docs/bus-security.md), against a real nats-server configured
 * by scripts/bus-config: TLS from a CA this test makes with openssl (clients must present a
 * certificate too), one nkey user per node, deployer and the chain, each with the permissions of
 * agent/bus/permissions.ts. Real agents and the chain stand-in run on it with their seeds; the
 * test checks what each user can and cannot do, and that no secret reaches a log line.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { BusCredentials } from "../../agent/bus/auth";
import { cli, startAgent, startChain, tmpDir, type AgentProcess, type CliResult } from "../utils/agent";
import { connectWatched, securedBus, type BusUser } from "../utils/bus-config";
import { waitFor, type NatsServerHandle } from "../utils/nats";

let dir: string;
let url: string;
let server: NatsServerHandle;
let tls: { caFile: string; certFile: string; keyFile: string };
let users: Record<string, BusUser>;
const agents: AgentProcess[] = [];
let chain: AgentProcess;
let registry: string;
const keys: Record<string, string> = {};
const cliRuns: CliResult[] = [];
const open: NatsConnection[] = [];

function openssl(args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCertificates(): void {
  const ext = path.join(dir, "server.ext");
  fs.writeFileSync(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  fs.writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test grid CA"]);
  for (const [name, cn] of [["server", "127.0.0.1"], ["client", "grid client"]]) {
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`]);
  }
}

function creds(user: string | null, withTls = true): BusCredentials {
  return {
    ...(user ? { nkeySeedFile: users[user].seedFile, inboxPrefix: users[user].inboxPrefix } : {}),
    ...(withTls ? { tls: { ...tls } } : {}),
  };
}

/** A client connection as `user` (null: no credentials), made the way the agent makes its own. */
function connectAs(user: string | null, withTls = true): Promise<{ nc: NatsConnection; errors: string[] }> {
  return connectWatched(url, creds(user, withTls), open);
}

/** The CLI's flags for `user` (TLS included). */
function flags(user: string): string[] {
  return ["--nats", url, "--nats-nkey", users[user].seedFile, "--nats-inbox-prefix", users[user].inboxPrefix, "--nats-ca", tls.caFile, "--nats-cert", tls.certFile, "--nats-key", tls.keyFile];
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await cli(args, env);
  cliRuns.push(r);
  return r;
}

beforeAll(async () => {
  dir = tmpDir("bus-auth-");
  makeCertificates();
  tls = { caFile: path.join(dir, "ca.pem"), certFile: path.join(dir, "client.pem"), keyFile: path.join(dir, "client-key.pem") };
  ({ url, users, server } = await securedBus(path.join(dir, "bus"), ["--nodes", "1:1,2:1", "--deployers", "alice", "--tls-cert", path.join(dir, "server.pem"), "--tls-key", path.join(dir, "server-key.pem"), "--tls-ca", tls.caFile, "--tls-verify", "--client-cert", tls.certFile, "--client-key", tls.keyFile]));
  expect(Object.keys(users).sort()).toEqual(["alice", "chain", "node-1", "node-2"]);

  for (const name of ["node1", "node2", "owner"]) {
    keys[name] = path.join(dir, `${name}.json`);
    expect((await run(["keys", "new", "--out", keys[name]])).code).toBe(0);
  }
  registry = path.join(dir, "registry.json");
  expect((await run(["registry", "add", "--file", registry, "--node", "1", "--farm", "1", "--key", keys.node1])).code).toBe(0);
  expect((await run(["registry", "add", "--file", registry, "--node", "2", "--farm", "1", "--key", keys.node2])).code).toBe(0);
  expect((await run(["registry", "add", "--file", registry, "--twin", "7", "--key", keys.owner])).code).toBe(0);
  chain = await startChain(["--data", path.join(dir, "chain"), ...flags("chain")]);
  // node 1 registers with the chain (a new chain assigns it id 1) and sends it usage proofs; node 2 runs without the chain
  for (const n of [1, 2]) {
    const chainArgs = n === 1 ? ["--period", "2"] : ["--no-chain"];
    agents.push(await startAgent(["--config", users[`node-${n}`].configFile, "--data", path.join(dir, `data${n}`), "--key", keys[`node${n}`], "--registry", registry, "--heartbeat", "1", ...chainArgs]));
  }
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  for (const a of agents) await a.stop();
  await chain?.stop();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("agents connect with their nkey over TLS, gossip, and a deployer finds and deploys", async () => {
  for (const a of agents) expect(a.logs.find((l) => l.event === "nats_connected")).toMatchObject({ auth: "nkey", tls: true });
  // find over the secured bus: both nodes answer (gather uses the deployer's own inbox prefix)
  let found: Array<{ nodeId: number }> = [];
  await waitFor(async () => {
    const r = await run(["find", "--registry", registry, "--json", ...flags("alice")]);
    expect(r.code).toBe(0);
    found = JSON.parse(r.stdout);
    return found.length === 2;
  }, 10_000, "find to list both nodes");
  expect(found.map((n) => n.nodeId).sort()).toEqual([1, 2]);
  // node 1 holds node 2 in its peer view: gossip flows between the two node users
  await waitFor(async () => {
    const r = await run(["peers", "--node", "1", "--registry", registry, "--json", ...flags("alice")]);
    return r.code === 0 && (JSON.parse(r.stdout) as Array<{ nodeId: number }>).some((p) => p.nodeId === 2);
  }, 10_000, "node 1 to see node 2");
  const file = path.join(dir, "net.json");
  fs.writeFileSync(file, JSON.stringify({ id: 42, twinId: 7, version: 1, workloads: [{ name: "net", type: "network" }] }));
  const d = await run(["deploy", "--node", "2", "--file", file, "--key", keys.owner, "--json", ...flags("alice")]);
  expect(JSON.parse(d.stdout)).toMatchObject({ accepted: true, code: "ok" });
  // the same credentials from the environment
  const env = { CAPACITY_AGENT_NATS: url, CAPACITY_AGENT_NATS_NKEY: users.alice.seedFile, CAPACITY_AGENT_NATS_INBOX_PREFIX: users.alice.inboxPrefix, CAPACITY_AGENT_NATS_CA: tls.caFile, CAPACITY_AGENT_NATS_CERT: tls.certFile, CAPACITY_AGENT_NATS_KEY: tls.keyFile };
  const st = await run(["status", "--node", "2", "--json"], env);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.stdout).deployments.map((x: { id: number }) => x.id)).toEqual([42]);
  // the layout is enough for everything the agents did: the server refused them nothing
  for (const a of agents) expect(a.logs.filter((l) => l.event === "nats_error")).toEqual([]);
}, 40_000);

test("a node registers with the chain and its usage proofs reach it, over its own user", async () => {
  expect(agents[0].logs.find((l) => l.event === "node_registered")).toMatchObject({ nodeId: 1 });
  await chain.waitForEvent("proof_accepted", 15_000, (l) => l.nodeId === 1);
  expect(agents[0].logs.filter((l) => l.event === "nats_error")).toEqual([]);
  expect(chain.logs.filter((l) => l.event === "nats_error")).toEqual([]);
}, 20_000);

test("a node cannot publish as another node: the server refuses and peers see nothing", async () => {
  const watcher = await connectAs("alice");
  const seen: string[] = [];
  watcher.nc.subscribe("tfgrid.v1.capacity.1.*", { callback: (_e, m) => void seen.push(`${m.subject} ${new TextDecoder().decode(m.data)}`) });
  await watcher.nc.flush();
  const node1 = await connectAs("node-1");
  node1.nc.publish("tfgrid.v1.capacity.1.2", new TextEncoder().encode("forged-by-node-1"));
  node1.nc.publish("tfgrid.v1.capacity.1.1", new TextEncoder().encode("own-subject-marker"));
  await node1.nc.flush();
  // the control message arrives (the watcher works); the forged one never does
  await waitFor(() => seen.includes("tfgrid.v1.capacity.1.1 own-subject-marker"), 5000, "node 1's message on its own subject");
  await waitFor(() => node1.errors.some((e) => /permissions violation for publish to "tfgrid\.v1\.capacity\.1\.2"/i.test(e)), 5000, "the permissions violation");
  await node1.nc.flush();
  await watcher.nc.flush();
  expect(seen.filter((s) => s.includes("forged"))).toEqual([]);
  // nor can a node listen on another node's subjects (and so answer its requests)
  node1.nc.subscribe("tfgrid.v1.node.2.deploy", { callback: () => undefined });
  await waitFor(() => node1.errors.some((e) => /permissions violation for subscription to "tfgrid\.v1\.node\.2\.deploy"/i.test(e)), 5000, "the subscribe violation");
  // nor serve the chain's subjects
  node1.nc.subscribe("tfgrid.v1.chain.query", { callback: () => undefined });
  await waitFor(() => node1.errors.some((e) => /subscription to "tfgrid\.v1\.chain\.query"/i.test(e)), 5000, "the chain subscribe violation");
  // nor read another user's replies
  node1.nc.subscribe("_INBOX.alice.>", { callback: () => undefined });
  await waitFor(() => node1.errors.some((e) => /subscription to "_INBOX\.alice\.>"/i.test(e)), 5000, "the inbox subscribe violation");
}, 30_000);

test("a deployer can deploy and find but cannot publish announcements nor serve the chain", async () => {
  const watcher = await connectAs("node-2");
  const seen: string[] = [];
  watcher.nc.subscribe("tfgrid.v1.capacity.1.1", { callback: (_e, m) => void seen.push(new TextDecoder().decode(m.data)) });
  await watcher.nc.flush();
  const alice = await connectAs("alice");
  alice.nc.publish("tfgrid.v1.capacity.1.1", new TextEncoder().encode("forged-by-alice"));
  await alice.nc.flush();
  await waitFor(() => alice.errors.some((e) => /publish to "tfgrid\.v1\.capacity\.1\.1"/i.test(e)), 5000, "the deployer's publish violation");
  // node 1's own heartbeat (1 s) arrives on the subject; the forged message does not
  await waitFor(() => seen.length > 0, 5000, "node 1's heartbeat");
  expect(seen.filter((s) => s.includes("forged"))).toEqual([]);
  alice.nc.subscribe("tfgrid.v1.chain.twin.register", { callback: () => undefined });
  await waitFor(() => alice.errors.some((e) => /subscription to "tfgrid\.v1\.chain\.twin\.register"/i.test(e)), 5000, "the chain subscribe violation");
  // the chain, on its own user, serves a deployer's twin registration
  const reg = await run(["registry", "add", "--chain", "--key", keys.owner, ...flags("alice")]);
  expect(reg.code).toBe(0);
  expect(JSON.parse(reg.stdout)).toMatchObject({ registered: true });
  expect(chain.logs.filter((l) => l.event === "nats_error")).toEqual([]);
}, 30_000);

test("an unauthenticated client reaches nothing", async () => {
  // TLS with a valid client certificate, but no user key: the server closes the connection
  await expect(connectAs(null)).rejects.toThrow(/authorization/i);
  // no TLS at all: refused as well (the server requires TLS)
  await expect(connectAs(null, false)).rejects.toThrow();
  // the CLI says what is wrong and what to do
  const r = await run(["status", "--node", "1", "--nats", url, "--nats-ca", tls.caFile, "--nats-cert", tls.certFile, "--nats-key", tls.keyFile]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/\[nats_unauthorized\].*--nats-nkey/);
  // an agent with a key the server does not know does not start, and says why
  const stranger = path.join(dir, "stranger.nk");
  const { nkeys } = require("@nats-io/transport-node") as typeof import("@nats-io/transport-node");
  fs.writeFileSync(stranger, new TextDecoder().decode(nkeys.createUser().getSeed()) + "\n", { mode: 0o600 });
  const a = await run(["run", "--nats", url, "--nats-nkey", stranger, "--nats-ca", tls.caFile, "--nats-cert", tls.certFile, "--nats-key", tls.keyFile, "--data", path.join(dir, "stranger-data"), "--no-chain"]);
  expect(a.code).toBe(1);
  expect(a.stderr).toMatch(/\[nats_unauthorized\]/);
  expect(a.stdout + a.stderr).not.toContain(fs.readFileSync(stranger, "utf8").trim());
  // an unreadable seed file is named, before any connection
  const missing = await run(["status", "--node", "1", "--nats", url, "--nats-nkey", path.join(dir, "nope.nk")]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/\[nats_credentials_invalid\] --nats-nkey: cannot read .*nope\.nk: ENOENT/);
}, 30_000);

test("no credential appears in any log line or CLI output", async () => {
  const secrets = Object.values(users).map((u) => /\bSU[A-Z2-7]{56}\b/.exec(fs.readFileSync(u.seedFile, "utf8"))![0]);
  expect(secrets).toHaveLength(4);
  const texts = [...agents.flatMap((a) => a.lines), ...chain.lines, ...cliRuns.flatMap((r) => [r.stdout, r.stderr])];
  expect(texts.length).toBeGreaterThan(20);
  for (const s of secrets) expect(texts.filter((t) => t.includes(s))).toEqual([]);
  // the seed files are private
  for (const u of Object.values(users)) expect(fs.statSync(u.seedFile).mode & 0o777).toBe(0o600);
});
