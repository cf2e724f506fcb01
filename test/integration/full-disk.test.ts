/**
 * A full disk and a read-only disk, for real: the agent's data dir on a small tmpfs this test
 * mounts (root only; skipped with a message otherwise), filled with a filler file. A real
 * nats-server, real agent processes, real signatures, the real on-disk store.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment, type DeploymentSpec } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { cli, startAgent, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

function tryMount(dir: string, size: string): string | null {
  if (process.getuid?.() !== 0) return "not root";
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
    return null;
  } catch (err) {
    return `mount refused: ${(err as Error).message}`;
  }
}

function umount(dir: string): void {
  try {
    execFileSync("umount", [dir], { stdio: "pipe" });
  } catch {
    /* not mounted */
  }
}

/** Write a filler file until the file system has no room left. */
function fill(file: string): void {
  const fd = fs.openSync(file, "a");
  try {
    for (const size of [1 << 16, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 7);
      try {
        for (;;) fs.writeSync(fd, buf);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

const base = tmpDir("full-disk-");
const mnt = path.join(base, "mnt");
const roMnt = path.join(base, "ro");
fs.mkdirSync(mnt);
fs.mkdirSync(roMnt);
const skip = tryMount(mnt, "8m");
if (skip) process.stderr.write(`full-disk tests skipped: ${skip} (they need root and mount -t tmpfs)\n`);
const maybe = skip ? test.skip : test;

let nats: NatsServerHandle;
let nc: NatsConnection;
let client: NodeClient;
let owner: Signer;
let agentArgs: string[];
const data = path.join(mnt, "data");
const filler = path.join(mnt, "filler");

function spec(id: number): DeploymentSpec {
  const r = parseDeployment({ id, twinId: 7, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "256MiB", rootfs: "1GiB" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}
const deploy = (id: number) => client.deploy(1, buildDeployRequest(spec(id), [{ twinId: 7, signer: owner }]));

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  if (skip) return;
  await cryptoReady();
  const keys = { node: path.join(base, "node.json"), owner: path.join(base, "owner.json") };
  for (const f of Object.values(keys)) expect((await cli(["keys", "new", "--out", f])).code).toBe(0);
  const registry = path.join(base, "registry.json");
  expect((await cli(["registry", "add", "--file", registry, "--node", "1", "--farm", "1", "--key", keys.node])).code).toBe(0);
  expect((await cli(["registry", "add", "--file", registry, "--twin", "7", "--key", keys.owner])).code).toBe(0);
  const hw = JSON.parse((await cli(["hardware", "--json"])).stdout) as { disks: Array<{ name: string }> };
  const config = path.join(base, "config.json");
  fs.writeFileSync(config, JSON.stringify({ hardware: { diskOverrides: Object.fromEntries(hw.disks.map((d) => [d.name, "ssd"])) } }));
  agentArgs = ["--nats", nats.url, "--data", data, "--node-id", "1", "--farm-id", "1", "--key", keys.node, "--registry", registry, "--config", config, "--no-chain", "--heartbeat", "1", "--period", "2"];
  owner = await loadKeyFile(keys.owner);
  client = new NodeClient(natsBus(nc), new Subjects());
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  umount(mnt);
  umount(roMnt);
});

/** Announcements of node 1 seen within `ms`. */
async function announcements(ms: number): Promise<number> {
  let n = 0;
  const sub = nc.subscribe(new Subjects().capacity(1, 1), {
    callback: () => {
      n++;
    },
  });
  await new Promise((r) => setTimeout(r, ms));
  sub.unsubscribe();
  return n;
}

maybe("a full disk refuses new work with store_full, keeps serving reads and gossip, and recovers", async () => {
  const agent: AgentProcess = await startAgent(agentArgs);
  try {
    expect(await deploy(1)).toMatchObject({ accepted: true, code: "ok" });
    fill(filler);
    const refused = await deploy(2);
    expect(refused).toMatchObject({ accepted: false, code: "store_full" });
    expect(refused.message).toMatch(/disk is full/);
    await agent.waitForEvent("store_full");
    // reads and gossip go on
    const st = await client.status(1);
    expect(st.deployments.map((d) => d.id)).toEqual([1]);
    expect(st.storeFull).toBe(true);
    expect(await client.get(1, 1)).toMatchObject({ found: true, id: 1 });
    expect(await announcements(2500)).toBeGreaterThanOrEqual(1);
    // a usage period ends while full: it stays open (deferred), nothing is lost
    await agent.waitForEvent("usage_proof_deferred", 10_000);
    const seqWhileFull = (await client.status(1)).usage?.lastSequence ?? 0;
    expect(agent.child.exitCode).toBeNull();
    // space returns: the next deploy is accepted and deferred proofs are built in order
    fs.unlinkSync(filler);
    expect(await deploy(2)).toMatchObject({ accepted: true, code: "ok" });
    await agent.waitForEvent("store_recovered");
    await waitFor(async () => ((await client.status(1)).usage?.lastSequence ?? 0) > seqWhileFull, 10_000, "a proof after recovery");
    const after = await client.status(1);
    expect(after.deployments.map((d) => d.id)).toEqual([1, 2]);
    expect(after.storeFull).toBe(false);
  } finally {
    await agent.stop();
  }
  const db = new Database(path.join(data, "agent.db"), { readonly: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect((db.prepare("SELECT id FROM deployments ORDER BY id").all() as Array<{ id: number }>).map((r) => r.id)).toEqual([1, 2]);
    // proofs are contiguous: sequence 1..n, each period starting where the last ended
    const proofs = db.prepare("SELECT sequence, period_start_ms AS s, period_end_ms AS e FROM usage_proofs ORDER BY sequence").all() as Array<{ sequence: number; s: number; e: number }>;
    proofs.forEach((p, i) => {
      expect(p.sequence).toBe(i + 1);
      if (i > 0) expect(p.s).toBe(proofs[i - 1].e);
    });
  } finally {
    db.close();
  }
}, 120_000);

maybe("an agent started on a full disk starts in store_full mode and serves reads", async () => {
  fill(filler);
  const agent = await startAgent(agentArgs);
  try {
    const full = await agent.waitForEvent("store_full");
    expect(String(full.msg)).toMatch(/free space/);
    expect((await client.status(1)).deployments.map((d) => d.id)).toEqual([1, 2]);
    expect(await deploy(3)).toMatchObject({ accepted: false, code: "store_full" });
    expect(await announcements(2500)).toBeGreaterThanOrEqual(1);
    fs.unlinkSync(filler);
    expect(await deploy(3)).toMatchObject({ accepted: true, code: "ok" });
  } finally {
    await agent.stop();
  }
  const db = new Database(path.join(data, "agent.db"), { readonly: true });
  expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
  db.close();
}, 120_000);

maybe("a fresh data dir on a read-only file system fails with data_dir_read_only (agent and chain stand-in)", async () => {
  const refused = tryMount(roMnt, "1m");
  if (refused) throw new Error(refused);
  execFileSync("mount", ["-o", "remount,ro", roMnt]);
  for (const args of [
    ["run", "--data", path.join(roMnt, "data"), "--no-chain", "--nats", nats.url],
    ["run", "--data", roMnt, "--no-chain", "--nats", nats.url],
    ["chain", "--data", path.join(roMnt, "chain"), "--nats", nats.url],
  ]) {
    const r = await cli(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[data_dir_read_only]");
    expect(r.stderr).toMatch(/read-only file system/);
    expect(r.stderr).not.toContain("ENOENT");
  }
}, 60_000);

test("the data dir is 0700 and the store and registry 0600, whatever the umask; looser ones are tightened", async () => {
  const dir = path.join(base, "perm-data");
  // a umask that would leave everything world-writable (the child inherits it)
  const old = process.umask(0);
  let agent: AgentProcess;
  try {
    agent = await startAgent(["--data", dir, "--nats", nats.url, "--no-chain", "--node-id", "5"]);
  } finally {
    process.umask(old);
  }
  await agent.stop();
  const mode = (f: string) => fs.statSync(f).mode & 0o777;
  expect(mode(dir)).toBe(0o700);
  for (const f of ["agent.db", "registry.json", "node-key.json"]) expect([f, mode(path.join(dir, f))]).toEqual([f, 0o600]);
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, "agent.db"), 0o644);
  fs.chmodSync(path.join(dir, "registry.json"), 0o644);
  const again = await startAgent(["--data", dir, "--nats", nats.url, "--no-chain", "--node-id", "5"]);
  try {
    for (const f of ["agent.db-wal", "agent.db-shm"]) expect([f, mode(path.join(dir, f))]).toEqual([f, 0o600]);
  } finally {
    await again.stop();
  }
  expect(mode(dir)).toBe(0o700);
  expect(mode(path.join(dir, "agent.db"))).toBe(0o600);
  expect(mode(path.join(dir, "registry.json"))).toBe(0o600);
  const tightened = again.logs.filter((l) => l.event === "permissions_tightened").map((l) => path.basename(String(l.file)));
  expect(tightened).toEqual(expect.arrayContaining(["perm-data", "agent.db", "registry.json"]));
}, 60_000);
