/**
 * The CLI as a person uses it: real processes, this machine's hardware, real files.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../../agent/bus/nats";
import { AGENT_VERSION } from "../../agent/version";
import { CLI, cli, startAgent, tmpDir } from "../utils/agent";

// CAPACITY_AGENT_* variables from the developer's shell must not leak into these runs
const cleanEnv = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith("CAPACITY_AGENT_")).map((k) => [k, undefined]));

test("run with no options: dev identity in ./.capacity-agent, embedded nats-server when nothing answers, clean stop on SIGTERM", async () => {
  const cwd = tmpDir("run-defaults-");
  const unused = await freePort();
  // The default URL is nats://127.0.0.1:4222, which may be taken on a developer machine; point the
  // default at a port where nothing listens to exercise the embedded fallback.
  fs.writeFileSync(path.join(cwd, "c.json"), JSON.stringify({ nats: { servers: [`nats://127.0.0.1:${unused}`], embedded: true } }));
  const agent = await startAgent([], { ...cleanEnv, CAPACITY_AGENT_CONFIG: path.join(cwd, "c.json") }, cwd);
  try {
    const started = agent.logs.find((l) => l.event === "nats_embedded_started");
    expect(started).toBeDefined();
    const key = path.join(cwd, ".capacity-agent", "node-key.json");
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    const reg = JSON.parse(fs.readFileSync(path.join(cwd, ".capacity-agent", "registry.json"), "utf8"));
    expect(reg.nodes).toEqual([expect.objectContaining({ id: 1, farmId: 1, publicKey: JSON.parse(fs.readFileSync(key, "utf8")).publicKey })]);
    const st = await cli(["status", "--node", "1", "--nats", String(started!.url), "--json"]);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ nodeId: 1, farmId: 1, deployments: [] });
  } finally {
    expect(await agent.stop()).toBe(0);
  }
  expect(agent.logs.some((l) => l.event === "agent_stopped")).toBe(true);
});

test("an embedded nats-server is found by client commands run in the same directory (nats.url, 0600), and the export line is logged", async () => {
  const cwd = tmpDir("run-natsurl-");
  const unused = await freePort();
  fs.writeFileSync(path.join(cwd, "c.json"), JSON.stringify({ nats: { servers: [`nats://127.0.0.1:${unused}`], embedded: true } }));
  const agent = await startAgent(["--no-chain"], { ...cleanEnv, CAPACITY_AGENT_CONFIG: path.join(cwd, "c.json") }, cwd);
  const file = path.join(cwd, ".capacity-agent", "nats.url");
  try {
    const started = agent.logs.find((l) => l.event === "nats_embedded_started")!;
    expect(fs.readFileSync(file, "utf8").trim()).toBe(started.url);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(agent.logs.find((l) => l.event === "nats_url_written")).toMatchObject({ file, export: `export CAPACITY_AGENT_NATS=${started.url}` });
    // no --nats, no CAPACITY_AGENT_NATS: the client reads ./.capacity-agent/nats.url
    const st = await cli(["status", "--node", "1", "--json"], cleanEnv, cwd);
    expect({ code: st.code, err: st.stderr }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(st.stdout)).toMatchObject({ nodeId: 1 });
    // SRU 0 (every disk rotational, as on a VM): a warning that says how to set a disk override
    const known = agent.logs.find((l) => l.event === "capacity_known") as { total: { sru: number } };
    const warning = agent.logs.find((l) => l.event === "no_ssd_capacity");
    if (known.total.sru === 0) expect(warning).toMatchObject({ level: 40, config: expect.stringContaining('"diskOverrides"'), hint: expect.stringContaining("--config FILE") });
    else expect(warning).toBeUndefined();
  } finally {
    expect(await agent.stop()).toBe(0);
  }
  expect(fs.existsSync(file)).toBe(false);
  // a file that holds something else is an error that says what to do (not a silent fallback)
  fs.mkdirSync(path.join(cwd, ".capacity-agent"), { recursive: true });
  fs.writeFileSync(file, "not a url\n");
  const junk = await cli(["status", "--node", "1"], cleanEnv, cwd);
  expect(junk.code).toBe(1);
  expect(junk.stderr).toContain("holds no NATS URL");
});

test("a corrupt store stops the agent with a clear error and is left as it was", async () => {
  const dir = tmpDir("corrupt-");
  fs.mkdirSync(path.join(dir, "data"));
  const junk = Buffer.from("this is not a database ".repeat(400));
  fs.writeFileSync(path.join(dir, "data", "agent.db"), junk);
  const r = await cli(["run", "--data", path.join(dir, "data"), "--nats", "nats://127.0.0.1:1"], cleanEnv, dir);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("[corrupt]");
  expect(fs.readFileSync(path.join(dir, "data", "agent.db")).equals(junk)).toBe(true);
});

test.each([
  [["deploy", "--file", "x.json", "--key", "k.json"], "--node is required"],
  [["status", "--node", "abc"], "--node expects an integer"],
  [["status", "--node", "1", "--bogus"], "Unknown option '--bogus'"],
  [["keys", "new"], "--out is required"],
  [["keys", "new", "--out", "/tmp/x", "--type", "rsa"], "--type must be ed25519 or sr25519"],
  [["nonsense"], 'unknown command "nonsense"'],
  [["run", "--node-id", "abc"], "--node-id: expected an integer"],
  [["run", "--period", "0"], "--period: expected an integer"],
  [["run", "--log-level", "loud"], "--log-level: expected one of"],
])("usage errors exit 2: %p", async (args, message) => {
  const r = await cli(args, cleanEnv);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(message);
});

test("--version, -v and version print the agent version; the usage text names them", async () => {
  for (const a of ["--version", "-v", "version"]) {
    const r = await cli([a], cleanEnv);
    expect({ a, code: r.code, out: r.stdout.trim() }).toEqual({ a, code: 0, out: AGENT_VERSION });
  }
  const help = await cli(["--help"], cleanEnv);
  expect(help.stdout).toMatch(/--version, -v, version/);
});

test("cold start: --help and an ed25519 `keys new` load none of the heavy libraries (@polkadot's WASM crypto, nats, protobufjs, pino)", () => {
  const dir = tmpDir("coldstart-");
  const loaded = (argv: string[]): string[] => {
    const script = `const m = require(${JSON.stringify(CLI)}); m.main(${JSON.stringify(argv)}, { out: () => {}, err: (s) => process.stderr.write(s) }).then((code) => { process.stdout.write(JSON.stringify({ code, mods: Object.keys(require.cache) })); });`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, ...cleanEnv } as NodeJS.ProcessEnv });
    const out = JSON.parse(r.stdout) as { code: number; mods: string[] };
    expect(out.code).toBe(0);
    return out.mods.map((m) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m)?.[1]).filter((x): x is string => !!x);
  };
  const heavy = (pkgs: string[]): string[] => [...new Set(pkgs.filter((p) => /^@polkadot\/|^@nats-io\/|^protobufjs$|^pino$|^systeminformation$/.test(p)))];
  for (const c of ["deploy", "delete", "status", "decisions", "find", "peers", "registry", "proofs", "hardware", "keys"]) expect({ c, heavy: heavy(loaded([c, "--help"])) }).toEqual({ c, heavy: [] });
  expect(heavy(loaded(["--help"]))).toEqual([]);
  expect(heavy(loaded(["keys", "new", "--out", path.join(dir, "k.json")]))).toEqual([]);
  // an sr25519 key loads the WASM crypto it needs
  expect(heavy(loaded(["keys", "new", "--out", path.join(dir, "s.json"), "--type", "sr25519"]))).toContain("@polkadot/util-crypto");
});

test("every command has --help", async () => {
  for (const c of ["run", "hardware", "keys", "deploy", "delete", "status", "registry"]) {
    const r = await cli([c, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: capacity-agent/);
  }
});

test("an invalid config names the field and exits 1", async () => {
  const dir = tmpDir("badcfg-");
  fs.writeFileSync(path.join(dir, "c.json"), JSON.stringify({ capacity: { overprovision: { cru: 9 } } }));
  const r = await cli(["run", "--config", path.join(dir, "c.json")], cleanEnv, dir);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("capacity.overprovision.cru");
});

test("a deployment file with a bad field is refused locally with invalid_spec and its path", async () => {
  const dir = tmpDir("badspec-");
  await cli(["keys", "new", "--out", path.join(dir, "k.json")]);
  fs.writeFileSync(path.join(dir, "d.json"), JSON.stringify({ id: 1, twinId: 7, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "4 XB" }] }));
  const r = await cli(["deploy", "--node", "1", "--file", path.join(dir, "d.json"), "--key", path.join(dir, "k.json"), "--json"], cleanEnv);
  expect(r.code).toBe(1);
  expect(JSON.parse(r.stdout)).toMatchObject({ accepted: false, code: "invalid_spec", path: "workloads[0].memory" });
});

test("hardware --json matches this machine", async () => {
  const r = await cli(["hardware", "--json"], cleanEnv);
  expect(r.code).toBe(0);
  const hw = JSON.parse(r.stdout);
  const memTotal = Number(/MemTotal:\s+(\d+) kB/.exec(fs.readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;
  const readLimit = (f: string): number | undefined => {
    try {
      const v = fs.readFileSync(f, "utf8").trim().split(/\s+/);
      if (v[0] === "max") return undefined;
      return v.length === 2 ? Math.ceil(Number(v[0]) / Number(v[1])) : Number(v[0]);
    } catch {
      return undefined;
    }
  };
  const cpuLimit = readLimit("/sys/fs/cgroup/cpu.max");
  const memLimit = readLimit("/sys/fs/cgroup/memory.max");
  expect(hw.total.cru).toBe(Math.min(os.cpus().length, cpuLimit ?? Infinity));
  expect(hw.total.mru).toBe(Math.min(memTotal, memLimit ?? Infinity));
  expect(hw.total.sru + hw.total.hru).toBe(hw.disks.reduce((s: number, d: { sizeBytes: number }) => s + d.sizeBytes, 0));
  expect(hw.reserved.mru).toBe(Math.min(hw.total.mru, Math.max(Math.floor(hw.total.mru * 0.1), 2 * 1024 ** 3)));
  expect(hw.allocatable.mru).toBe(hw.total.mru - hw.reserved.mru);
  for (const d of hw.disks) expect(d.name).not.toMatch(/^(zram|loop|ram)/);
  expect(Array.isArray(hw.gpus)).toBe(true);
});
