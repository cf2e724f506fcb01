/**
 * The service files in scripts/: the systemd unit passes `systemd-analyze verify` (Debian package
 * "systemd"), the zinit service is a valid zinit service, and both start the agent as installed:
 * the command and environment they give, run from an empty working directory (as an unprivileged
 * user when the test runs as root and setpriv exists), keep all state in the state directory they
 * name and nothing in the working directory. Starting the unit under systemd itself needs systemd
 * as PID 1; where it is not (containers), that part is not run.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT, onLines, requireBuilt, tmpDir } from "../utils/agent";
import { startNats, type NatsServerHandle } from "../utils/nats";

const UNIT = path.join(ROOT, "scripts", "capacity-agent.service");
const ZINIT = path.join(ROOT, "scripts", "capacity-agent.zinit.yaml");
const INSTALL_DIR = "/opt/capacity-agent";
const SYSTEMD_ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => fs.existsSync(p));
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p));
const NOBODY = 65534;

let nats: NatsServerHandle;
beforeAll(async () => {
  requireBuilt();
  nats = await startNats();
});
afterAll(async () => nats?.stop());

/** [Service] settings of a unit file: key -> values in order. */
function unitSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1];
      continue;
    }
    const eq = line.indexOf("=");
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

/** node's own flags in a service's command (what scripts/bench/footprint starts the agent with) */
function nodeFlags(exec: string): string[] {
  const argv = exec.split(/\s+/);
  const bin = argv.indexOf(`${INSTALL_DIR}/bin/capacity-agent`);
  expect(bin).toBeGreaterThan(0);
  return argv.slice(1, bin);
}

/** The installed command, pointed at this checkout (the test's stand-in for /opt/capacity-agent). */
function installedArgv(exec: string): string[] {
  const argv = exec.split(/\s+/);
  expect(argv[0]).toBe("/usr/bin/node");
  const flags = nodeFlags(exec);
  for (const f of flags) expect(f).toMatch(/^--[a-z-]+(=\S+)?$/);
  expect(argv[1 + flags.length]).toBe(`${INSTALL_DIR}/bin/capacity-agent`);
  return [process.execPath, ...flags, path.join(ROOT, "bin", "capacity-agent"), ...argv.slice(2 + flags.length)];
}

/**
 * Run the service's command with its environment from an empty working directory until the agent
 * has started, then stop it with SIGTERM (as systemd and zinit do). Returns the agent's log lines.
 */
async function runAsInstalled(argv: string[], env: Record<string, string>, cwd: string, owned: string[]): Promise<Array<Record<string, unknown>>> {
  let cmd = argv;
  if (process.getuid?.() === 0 && SETPRIV) {
    for (const p of owned) fs.chownSync(p, NOBODY, NOBODY);
    cmd = [SETPRIV, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv];
  }
  const child = spawn(cmd[0], cmd.slice(1), { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env, CAPACITY_AGENT_NATS: nats.url, CAPACITY_AGENT_NO_CHAIN: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const logs: Array<Record<string, unknown>> = [];
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no agent_started within 20 s: ${err}`)), 20_000);
    onLines(child.stdout!, (_line, l) => {
      if (!l) return;
      logs.push(l);
      if (l.event === "agent_started") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the service's command exited (${code}): ${err} ${JSON.stringify(logs.slice(-3))}`));
    });
  });
  try {
    await started;
  } finally {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
  }
  return logs;
}

function expectStateIn(state: string, cwd: string): void {
  expect(fs.readdirSync(cwd)).toEqual([]);
  const key = path.join(state, "node-key.json");
  expect(fs.existsSync(key)).toBe(true);
  expect(fs.statSync(key).mode & 0o777).toBe(0o600);
  expect(fs.readdirSync(state)).toEqual(expect.arrayContaining(["node-key.json", "registry.json"]));
}

test("the systemd unit passes systemd-analyze verify (and a broken copy does not)", () => {
  if (!SYSTEMD_ANALYZE) {
    console.warn("systemd-analyze not found: skipping the unit's verification (apt-get install systemd)");
    return;
  }
  const dir = tmpDir("unit-");
  const file = path.join(dir, "capacity-agent.service");
  fs.copyFileSync(UNIT, file);
  const ok = spawnSync(SYSTEMD_ANALYZE, ["verify", "--man=no", file], { encoding: "utf8" });
  expect({ code: ok.status, out: ok.stdout + ok.stderr }).toEqual({ code: 0, out: "" });
  fs.writeFileSync(file, fs.readFileSync(UNIT, "utf8").replace("ExecStart=", "ExecStrat="));
  const bad = spawnSync(SYSTEMD_ANALYZE, ["verify", "--man=no", file], { encoding: "utf8" });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toMatch(/Unknown key/);
});

test("the systemd unit runs unprivileged with its state in StateDirectory, not the working directory", async () => {
  const s = unitSettings(fs.readFileSync(UNIT, "utf8"));
  expect(s.get("Service.DynamicUser")).toEqual(["yes"]);
  expect(s.get("Service.User")).toBeUndefined();
  expect(s.get("Service.StateDirectory")).toEqual(["capacity-agent"]);
  // systemd's %S is /var/lib for a system unit; here a temporary root stands in for it
  const root = tmpDir("unit-root-");
  fs.chmodSync(root, 0o755); // like /var/lib
  const state = path.join(root, "capacity-agent");
  fs.mkdirSync(state, { mode: 0o700 });
  const env: Record<string, string> = {};
  for (const e of s.get("Service.Environment") ?? []) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1).replace(/%S/g, root);
  }
  expect(env.CAPACITY_AGENT_DATA).toBe(state);
  const cwd = tmpDir("unit-cwd-");
  await runAsInstalled(installedArgv(s.get("Service.ExecStart")![0]), env, cwd, [state, cwd]);
  expectStateIn(state, cwd);
  if (fs.existsSync("/run/systemd/system")) console.warn("systemd runs here as PID 1: `systemctl start` of the unit is left to a manual check (the test does not install units)");
}, 40_000);

test("the zinit service is valid for zinit and keeps its state on the cache disk", async () => {
  // js-yaml comes with jest's dependencies; the zinit format is YAML
  const yaml = require("js-yaml") as { load(s: string): unknown };
  const svc = yaml.load(fs.readFileSync(ZINIT, "utf8")) as Record<string, unknown>;
  // zinit's service keys (zinit/src/zinit/config.rs): anything else is an error there
  for (const k of Object.keys(svc)) expect(["exec", "test", "oneshot", "shutdown_timeout", "after", "signal", "log", "env", "dir"]).toContain(k);
  expect(typeof svc.exec).toBe("string");
  expect(["ring", "stdout", "none", undefined]).toContain(svc.log);
  expect(svc.signal).toEqual({ stop: "SIGTERM" });
  expect(Array.isArray(svc.after) && (svc.after as unknown[]).every((a) => typeof a === "string")).toBe(true);
  const env = svc.env as Record<string, string>;
  for (const v of Object.values(env)) expect(typeof v).toBe("string");
  expect(env.CAPACITY_AGENT_DATA).toBe("/var/cache/modules/capacity-agent");
  // one agent, one memory footprint: the flags the footprint bench measures are those of both services
  expect(nodeFlags(svc.exec as string)).toEqual(nodeFlags(unitSettings(fs.readFileSync(UNIT, "utf8")).get("Service.ExecStart")![0]));
  const root = tmpDir("zinit-root-");
  fs.chmodSync(root, 0o755); // like /var/cache/modules
  const state = path.join(root, "capacity-agent");
  fs.mkdirSync(state, { mode: 0o700 });
  const cwd = tmpDir("zinit-cwd-");
  const logs = await runAsInstalled(installedArgv(svc.exec as string), { ...env, CAPACITY_AGENT_DATA: state, CAPACITY_AGENT_METRICS_PORT: "0" }, cwd, [state, cwd]);
  expect(logs.some((l) => l.event === "metrics_listening")).toBe(true);
  expectStateIn(state, cwd);
}, 40_000);
