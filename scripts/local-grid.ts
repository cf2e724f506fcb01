/**
 * A local grid on this machine: (when needed) a nats-server on a free port, a registry, keys, and
 * N agents in one or more farms, each with its own data dir, key and node id. They all measure the
 * same real hardware, so they announce the same totals: a demo and test bed for gossip, not N
 * machines. Ctrl-C (SIGINT/SIGTERM) stops everything this script started.
 *
 * Run: scripts/local-grid [--nodes N] [--farms F] [--nats URL] [--dir DIR] [--heartbeat S]
 *                         [--period S] [--no-chain] [--ssd] [--ipv4 K] [--log-level L] [--json]
 *                         [--power dev [--power-fast] [--power-boot S]]
 * (the wrapper builds dist/ when needed, then runs: node dist/scripts/local-grid.js ...)
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findNatsServer, freePort, natsAnswers } from "../agent/bus/nats";
import { redact } from "../agent/log/redact";
import { createKeyFile } from "../agent/identity/keys";
import { upsertRegistryFile } from "../agent/registry/file";
import { scriptArgs, scriptFail } from "./script-util";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "dist", "agent", "cli", "main.js");
/** the demo deployer's twin id without the chain (with it, the chain assigns the id: printed) */
export const DEMO_TWIN = 1000;
/** what local-grid funds the demo twin with on the chain stand-in (smallest units: plenty for a demo) */
const DEMO_FUNDS = "1000000000000000";

const HELP = `usage: scripts/local-grid [--nodes N] [--farms F] [--nats URL] [--dir DIR] [--heartbeat S]
                         [--period S] [--no-chain] [--ssd] [--ipv4 K] [--log-level L] [--json]

Starts N capacity agents on this machine (the i-th in farm ((i-1) mod F)+1), with their own data
dirs and keys, the chain stand-in (capacity-agent chain, which the agents register with and send
usage proofs to), a registry file naming them and a demo twin, and a nats-server on a free port
unless --nats names one that answers. With the chain, the agents start one by one and each learns
its node id (and its twin id) from the chain, which assigns them (1..N on a new chain); the demo
twin is registered on the chain too and gets the next twin id. The ids are printed. The farms are
not registered on the chain (a dev grid: the chain takes a node's farm id as given). With
--no-chain the agents get node ids 1..N and the demo twin ${DEMO_TWIN}. All agents measure the SAME
real hardware of this machine. Ctrl-C stops everything it started.
  --nodes N        agents to start (default 3)
  --farms F        farms to spread them over (default 1)
  --nats URL       use this NATS server instead of starting one
  --dir DIR        where keys, registry, data and logs go (default: a new directory in /tmp)
  --heartbeat S    announcement heartbeat in seconds (default 30)
  --period S       usage proof period in seconds (default 3600; e.g. 10 to watch proofs arrive)
  --no-chain       do not start the chain stand-in (agents then keep their proofs in the outbox)
  --ssd            count every disk as SSD (virtual disks report rotational, i.e. HDD)
  --ipv4 K         public IPv4 addresses per node (default 0)
  --log-level L    agent log level (default info); logs go to DIR/node-<id>.log
  --power dev      power management by the nodes (docs/power.md) with the dev driver: idle nodes go
                   to standby (they keep running and refuse deployments with node_standby), peers
                   and deploy --auto wake them; the demo twin may send power wake/standby
  --power-fast     with --power: the policy in seconds, to watch it (state changes 10 s apart,
                   claims quiet for 10 s, a check every 2 s, agreement window 1 s, boot 3 s)
  --power-boot S   with --power: seconds a woken dev node takes to "boot" (announced waking
                   meanwhile, so power status and the dashboard show it; default 0, 3 with --power-fast)
  --json           print one JSON line describing the grid when it is ready (for scripts and tests)`;

interface NodeInfo {
  nodeId: number;
  /** the node's twin (the chain's id for the node key; without the chain, the node id) */
  twinId: number;
  farmId: number;
  pid: number;
  data: string;
  log: string;
  key: string;
}

function fail(msg: string): never {
  return scriptFail("local-grid", msg);
}

/** Wait until `file` holds a JSON log line with `event`; returns it parsed. */
async function waitForLine(file: string, event: string, child: ChildProcess, ms: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    const line = text.split("\n").find((l) => l.includes(`"event":"${event}"`));
    if (line) {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    }
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`an agent exited before ${event}; see ${file}:\n${text.split("\n").slice(-5).join("\n")}`);
    if (Date.now() > deadline) throw new Error(`no ${event} within ${ms} ms; see ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess, ms = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill("SIGKILL"), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function main(): Promise<void> {
  const cli = scriptArgs(
    fail,
    {
      strings: ["nodes", "farms", "nats", "dir", "heartbeat", "period", "ipv4", "log-level", "power", "power-boot"],
      booleans: ["no-chain", "ssd", "json", "power-fast"],
    },
    { help: HELP },
  );
  if (!fs.existsSync(CLI)) fail(`${CLI} is missing: build first (npx tsc -p tsconfig.json)`);
  const nodes = cli.int("nodes", 3, 1, 200);
  const farms = cli.int("farms", 1, 1, nodes);
  const ipv4 = cli.int("ipv4", 0, 0, 1024);
  const heartbeat = cli.str("heartbeat") ?? "30";
  if (!/^\d+(\.\d+)?$/.test(heartbeat) || Number(heartbeat) < 0.1 || Number(heartbeat) > 3600) fail(`--heartbeat expects seconds from 0.1 to 3600, got ${JSON.stringify(heartbeat)}`);
  const period = String(cli.int("period", 3600, 1, 14_400));
  const withChain = !cli.bool("no-chain");
  const powerDriver = cli.str("power");
  if (powerDriver !== undefined && powerDriver !== "dev") fail(`--power: only "dev" runs on a local grid (zos and command drive real machines), got ${JSON.stringify(powerDriver)}`);
  const powerFast = cli.bool("power-fast");
  if (powerFast && powerDriver === undefined) fail("--power-fast needs --power dev");
  if (cli.str("power-boot") !== undefined && powerDriver === undefined) fail("--power-boot needs --power dev");
  const powerBoot = cli.int("power-boot", powerFast ? 3 : 0, 0, 3600);
  const json = cli.bool("json");
  const logLevel = cli.str("log-level") ?? "info";
  const say = (s: string): void => {
    if (!json) process.stdout.write(s + "\n");
  };
  const dir = path.resolve(cli.str("dir") ?? fs.mkdtempSync(path.join(os.tmpdir(), "local-grid-")));
  fs.mkdirSync(path.join(dir, "keys"), { recursive: true });

  const children: ChildProcess[] = [];
  let natsChild: ChildProcess | null = null;
  let chainChild: ChildProcess | null = null;
  let stopping = false;
  const stopAll = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      say("\nstopping the agents...");
      await Promise.all(children.map((c) => stopChild(c)));
      if (chainChild) await stopChild(chainChild);
      if (natsChild) await stopChild(natsChild);
      say(`stopped. keys, registry, data and logs are kept in ${dir}`);
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));

  try {
    // NATS: the one given, else a new nats-server on a free loopback port
    let natsUrl = cli.str("nats");
    if (natsUrl) {
      if (!(await natsAnswers(natsUrl, 1000))) fail(`nothing answers at ${redact(natsUrl)}`);
    } else {
      const bin = findNatsServer();
      if (!bin) fail("no nats-server binary found (apt-get install nats-server, or pass --nats URL)");
      const port = await freePort();
      natsUrl = `nats://127.0.0.1:${port}`;
      natsChild = spawn(bin, ["-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", fs.openSync(path.join(dir, "nats.log"), "a")] });
      const deadline = Date.now() + 10_000;
      while (!(await natsAnswers(natsUrl, 300))) {
        if (natsChild.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not start; see ${path.join(dir, "nats.log")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    // hardware config shared by every agent: public IPv4 count, and disks classed SSD with --ssd
    const hardware: Record<string, unknown> = { ipv4u: ipv4 };
    if (cli.bool("ssd")) {
      const hw = spawnSync(process.execPath, [CLI, "hardware", "--json"], { encoding: "utf8" });
      if (hw.status !== 0) throw new Error(`capacity-agent hardware failed: ${hw.stderr}`);
      const disks = (JSON.parse(hw.stdout) as { disks: Array<{ name: string }> }).disks;
      hardware.diskOverrides = Object.fromEntries(disks.map((d) => [d.name, "ssd"]));
    }
    // keys and registry: one key per node, and a demo twin to deploy with. Without the chain the
    // ids are chosen here (nodes 1..N, twin DEMO_TWIN); with it the chain assigns them (below)
    const registry = path.join(dir, "registry.json");
    const twinKey = path.join(dir, "keys", "demo-twin.json");
    if (!fs.existsSync(twinKey)) await createKeyFile(twinKey, "ed25519");
    const twin = JSON.parse(fs.readFileSync(twinKey, "utf8")) as { publicKey: string };
    const config = path.join(dir, "config.json");
    // --power dev: the demo twin acts as every farm's farmer (power wake/standby)
    const power = powerDriver
      ? { manage: true, driver: "dev", farmerKey: twin.publicKey, devBootSeconds: powerBoot, ...(powerFast ? { minStateSeconds: 10, claimQuietSeconds: 10, checkSeconds: 2, windowSeconds: 1 } : {}) }
      : undefined;
    fs.writeFileSync(config, JSON.stringify({ hardware, ...(power ? { power } : {}) }, null, 2) + "\n");
    let twinId = DEMO_TWIN;
    if (!withChain) upsertRegistryFile(registry, { kind: "twin", id: DEMO_TWIN, publicKey: twin.publicKey, scheme: "ed25519" }, { force: true });
    const infos: NodeInfo[] = [];
    for (let i = 1; i <= nodes; i++) {
      const key = path.join(dir, "keys", `node-${i}.json`);
      if (!fs.existsSync(key)) await createKeyFile(key, "ed25519");
      const farmId = ((i - 1) % farms) + 1;
      const kf = JSON.parse(fs.readFileSync(key, "utf8")) as { publicKey: string };
      if (!withChain) upsertRegistryFile(registry, { kind: "node", id: i, farmId, twinId: i, publicKey: kf.publicKey, scheme: "ed25519" }, { force: true });
      infos.push({ nodeId: withChain ? 0 : i, twinId: withChain ? 0 : i, farmId, pid: 0, data: path.join(dir, `node-${i}`), log: path.join(dir, `node-${i}.log`), key });
    }
    if (!fs.existsSync(registry)) fs.writeFileSync(registry, JSON.stringify({ twins: [], nodes: [] }, null, 2) + "\n");

    // the chain stand-in: the agents register with it and send it their usage proofs
    const chainLog = path.join(dir, "chain.log");
    if (withChain) {
      const out = fs.openSync(chainLog, "a");
      chainChild = spawn(process.execPath, [CLI, "chain", "--nats", natsUrl, "--data", path.join(dir, "chain"), "--log-level", logLevel], { stdio: ["ignore", out, out] });
      fs.closeSync(out);
      chainChild.once("exit", (code, sig) => {
        if (!stopping) process.stderr.write(`local-grid: the chain stand-in exited (${sig ?? code}); see ${chainLog}\n`);
      });
      await waitForLine(chainLog, "chain_started", chainChild, 30_000);
    }

    // the agents. With the chain, one by one: each learns its node id from the chain (logged in
    // agent_started), and the registry file then names it (for clients that verify with the file)
    const startAgent = (n: NodeInfo): ChildProcess => {
      const out = fs.openSync(n.log, "a");
      const idArgs = withChain ? [] : ["--node-id", String(n.nodeId)];
      const child = spawn(
        process.execPath,
        [CLI, "run", "--nats", natsUrl!, "--data", n.data, ...idArgs, "--farm-id", String(n.farmId), "--key", n.key, "--registry", registry, "--config", config, "--heartbeat", heartbeat, "--period", period, "--log-level", logLevel],
        { stdio: ["ignore", out, out] },
      );
      fs.closeSync(out);
      n.pid = child.pid ?? 0;
      children.push(child);
      child.once("exit", (code, sig) => {
        if (!stopping) process.stderr.write(`local-grid: agent ${n.nodeId || n.log} exited (${sig ?? code}); see ${n.log}\n`);
      });
      return child;
    };
    if (withChain) {
      for (const n of infos) {
        const child = startAgent(n);
        const started = await waitForLine(n.log, "agent_started", child, 60_000);
        const registered = await waitForLine(n.log, "node_registered", child, 1000).catch(() => null);
        if (!registered) throw new Error(`the agent in ${n.data} started without an id from the chain; see ${n.log}`);
        n.nodeId = Number(started.nodeId);
        n.twinId = Number(started.twinId);
        const kf = JSON.parse(fs.readFileSync(n.key, "utf8")) as { publicKey: string };
        upsertRegistryFile(registry, { kind: "node", id: n.nodeId, farmId: n.farmId, twinId: n.twinId, publicKey: kf.publicKey, scheme: "ed25519" }, { replaceKey: true });
      }
      // the demo twin: registered on the chain, which assigns its id
      const reg = spawnSync(process.execPath, [CLI, "registry", "add", "--chain", "--key", twinKey, "--nats", natsUrl], { encoding: "utf8" });
      if (reg.status !== 0) throw new Error(`registering the demo twin on the chain failed: ${reg.stderr}`);
      twinId = (JSON.parse(reg.stdout) as { twin: number }).twin;
      upsertRegistryFile(registry, { kind: "twin", id: twinId, publicKey: twin.publicKey, scheme: "ed25519" }, { force: true });
      // the chain bills the demo twin every period: fund it, or its deployments would soon be
      // refused (twin_in_debt)
      const funded = spawnSync(process.execPath, [CLI, "chain", "fund", "--twin", String(twinId), "--amount", DEMO_FUNDS, "--nats", natsUrl], { encoding: "utf8" });
      if (funded.status !== 0) throw new Error(`funding the demo twin failed: ${funded.stderr}`);
    } else {
      const started = infos.map(startAgent);
      await Promise.all(infos.map((n, i) => waitForLine(n.log, "agent_started", started[i], 30_000)));
    }

    if (json) {
      process.stdout.write(JSON.stringify({ event: "local_grid_ready", nats: redact(natsUrl), natsStarted: natsChild !== null, dir, registry, config, twin: { id: twinId, key: twinKey }, sharedHardware: true, chain: withChain ? { log: chainLog, data: path.join(dir, "chain"), pid: chainChild?.pid ?? 0 } : null, periodSeconds: Number(period), nodes: infos }) + "\n");
    } else {
      say(`local grid ready: ${nodes} agent${nodes === 1 ? "" : "s"} in ${farms} farm${farms === 1 ? "" : "s"}, NATS ${redact(natsUrl)}${natsChild ? " (started here)" : ""}${withChain ? `, chain stand-in (log ${chainLog})` : ", no chain"}; usage period ${period} s`);
      say(`NOTE: every agent measures the SAME real hardware of this machine, so they announce the same totals;`);
      say(`      the capacity is counted once per agent. This is a test bed for gossip, not ${nodes} machines.`);
      say("");
      say(`  node  twin  farm  pid      data / log${withChain ? "   (node and twin ids assigned by the chain)" : ""}`);
      for (const n of infos) say(`  ${String(n.nodeId).padEnd(4)}  ${String(n.twinId).padEnd(4)}  ${String(n.farmId).padEnd(4)}  ${String(n.pid).padEnd(7)}  ${n.data}  ${n.log}`);
      say(`  demo twin ${twinId}${withChain ? " (assigned by the chain)" : ""}, key ${twinKey}`);
      say("");
      say("reach them with:");
      say(`  export CAPACITY_AGENT_NATS=${redact(natsUrl)} CAPACITY_AGENT_REGISTRY=${registry}${redact(natsUrl) !== natsUrl ? "   (put your credentials back in for ***)" : ""}`);
      say(`  alias ca="node ${CLI}"`);
      say(`  ca peers --node 1                       # the view node 1 holds`);
      say(`  ca find --cru 1 --mru 1GiB               # nodes with room, best first`);
      say(`  ca status --node 2`);
      say(`  ca deploy --auto --file vm.json --key ${twinKey}   # a deployment owned by twin ${twinId}`);
      say(`     (vm.json: {"id":1,"twinId":${twinId},"version":1,"workloads":[{"name":"vm","type":"zmachine","cpu":1,"memory":"1GiB"}]})`);
      if (withChain) {
        say(`  ca proofs list --node ${infos[0].nodeId}                 # usage proofs the chain holds for node ${infos[0].nodeId} (one per ${period} s)`);
        say(`  ca proofs verify --node ${infos[0].nodeId} --deployment 1   # check a record against the chain's root`);
      }
      if (!cli.bool("ssd")) say(`     VMs need SSD; on a virtual machine every disk reports HDD: restart with --ssd`);
      say("");
      say("Ctrl-C stops everything.");
    }
  } catch (err) {
    process.stderr.write(`local-grid: ${(err as Error).message}\n`);
    await stopAll(1);
  }
  // stay up until a signal
  await new Promise<void>(() => undefined);
}

void main();
