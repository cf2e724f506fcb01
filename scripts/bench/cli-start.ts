/**
 * CLI cold start, as ratios against `node -e 0` measured in the same run (same machine load):
 * the top-level `--help`, every command's `--help`, and real client commands (`keys new`, and
 * `status` against a real agent on a real nats-server, both started here and stopped after).
 * Rounds interleave the commands so that load on the machine falls on all of them alike; the
 * median of N runs is reported. Goal: every client command within 2x `node -e 0`.
 * Run: scripts/bench/cli-start [--n 15] [--json] [--cli dist/agent/cli/main.js of another build]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findNatsServer, startEmbeddedNats } from "../../agent/bus/nats";
import { silentLogger } from "../../agent/log/logger";

/** the built CLI (--cli PATH: another build, e.g. an older commit's, to compare) */
const CLI = path.resolve(process.argv.includes("--cli") ? process.argv[process.argv.indexOf("--cli") + 1] : path.join(__dirname, "..", "..", "agent", "cli", "main.js"));
/** commands a client (a farmer, a deployer) runs; `run` and `chain` are daemons */
const CLIENT = ["hardware", "keys", "deploy", "delete", "status", "registry", "find", "peers", "proofs"];

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Wall time of one process run, ms; it must exit 0. */
function once(args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

async function waitForLine(child: ChildProcess, event: string, ms: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(`"event":"${event}"`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`agent exited ${code}`)));
  });
}

async function main(): Promise<void> {
  const n = arg("n", 15);
  const bin = findNatsServer();
  if (!bin) throw new Error("nats-server not found (apt-get install nats-server)");
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-cli-"));
  const nats = await startEmbeddedNats(bin, path.join(dir, "nats"), silentLogger());
  const agent = spawn(process.execPath, [CLI, "run", "--nats", nats.url, "--data", path.join(dir, "data"), "--no-chain", "--log-level", "info"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    await waitForLine(agent, "agent_started", 30_000);
    let k = 0;
    const cases: Array<{ name: string; args: () => string[] }> = [
      { name: "node -e 0", args: () => ["-e", "0"] },
      { name: "--help", args: () => [CLI, "--help"] },
      ...CLIENT.map((c) => ({ name: `${c} --help`, args: () => [CLI, c, "--help"] })),
      { name: "keys new", args: () => [CLI, "keys", "new", "--out", path.join(dir, `k${k++}.json`)] },
      { name: "status --node 1", args: () => [CLI, "status", "--node", "1", "--nats", nats.url] },
    ];
    for (const c of cases) once(c.args()); // warm the file cache
    const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (let i = 0; i < n; i++) for (const c of cases) times.get(c.name)!.push(once(c.args()));
    const base = median(times.get("node -e 0")!);
    const rows = cases.map((c) => ({ command: c.name, medianMs: Math.round(median(times.get(c.name)!)), ratio: Math.round((median(times.get(c.name)!) / base) * 100) / 100 }));
    if (process.argv.includes("--json")) {
      process.stdout.write(JSON.stringify({ runs: n, baseMs: Math.round(base), rows }) + "\n");
    } else {
      process.stdout.write(`CLI cold start, median of ${n} runs each, ratio to node -e 0 (${base.toFixed(0)} ms) in the same run:\n`);
      for (const r of rows) process.stdout.write(`  ${r.command.padEnd(20)} ${String(r.medianMs).padStart(6)} ms  ${r.ratio.toFixed(2)}x${r.ratio > 2 && r.command !== "node -e 0" ? "  (over 2x)" : ""}\n`);
    }
  } finally {
    agent.kill("SIGTERM");
    await new Promise((r) => agent.once("exit", r));
    await nats.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`cli-start: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
