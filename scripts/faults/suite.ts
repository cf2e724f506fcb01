/**
 * The fault suite (issue 11 item 9): runs each fault scenario against real processes (nats-server,
 * agents, the chain stand-in) as its own jest run, one worker, prints a table and writes
 * docs/RELIABILITY.md. Results are merged into docs/reliability-results.json by scenario, so a
 * partial run (--only) or a full-mode run of some scenarios updates just those, and the document
 * says which ran in which mode, when and on what machine.
 *
 *   scripts/fault-suite [--quick|--full] [--only NAME[,NAME...]] [--no-write] [--doc-only] [--list]
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const RESULTS = path.join(ROOT, "docs", "reliability-results.json");
const DOC = path.join(ROOT, "docs", "RELIABILITY.md");

export interface Scenario {
  name: string;
  /** what is done to the system */
  fault: string;
  /** what must hold */
  checks: string;
  file: string;
  /** jest -t pattern (a part of a larger test file) */
  only?: string;
  /** what FAULT_MODE changes; empty: the same in both modes */
  full?: string;
}

export const SCENARIOS: Scenario[] = [
  { name: "crash-storm", fault: "SIGKILL of the agent under 4 concurrent deploy/delete clients, restart on its data", checks: "acknowledged lost = 0; phantoms only of unanswered requests; used = sum of reservations after every restart; announcement sequences only grow; proofs 1..n in order", file: "test/faults/crash-storm.test.ts", full: "50 kills quick, 500 full (FAULT_KILLS overrides)" },
  { name: "nats-faults", fault: "nats-server SIGSTOP (4 s quick, 15 s full) then SIGCONT; SIGKILL then a new server on its port", checks: "agent stays up, answers within 10 s, keeps deployments, gossips with a higher sequence", file: "test/faults/nats-faults.test.ts", full: "1 round quick, 5 full" },
  { name: "cluster-member-lost", fault: "one server of a 3-server NATS cluster killed under agents on different servers", checks: "no view broken for longer than two heartbeats", file: "test/integration/gossip-failover.test.ts" },
  { name: "chain-down", fault: "chain stand-in away for many 2 s periods while the agent is SIGKILLed repeatedly", checks: "every proof on the chain once, in order, contiguous and hash-chained; none refused; nothing pending", file: "test/faults/chain-down.test.ts", full: "6 periods / 4 kills quick, 40 / 20 full" },
  { name: "chain-down-graceful", fault: "chain away for several periods, agent stopped for two whole periods", checks: "every proof once, in order; the down period reports its downtime and bills nothing", file: "test/integration/usage-proofs.test.ts", only: "chain away" },
  { name: "fuzz-subjects", fault: "random bytes, mutated real messages, huge repeated fields, wrong domain tags, unregistered keys, replays, other subjects' messages on every served subject", checks: "every process up; deployments, used and chain proofs unchanged; no error logs; new work still decided", file: "test/faults/fuzz-subjects.test.ts", full: "1,000 inputs per subject quick, 100,000 full (FAULT_FUZZ overrides)" },
  { name: "fuzz-decoders", fault: "fast-check properties of codec decode, envelope open, spec parse, proof and gossip decoders", checks: "only typed refusals; limits before work; what opens is what was signed; round trips exact", file: "test/faults/decoders.property.test.ts", full: "500 runs per property quick (300 and 100 for the ones that sign or verify), 100,000 full (10,000 for the one that signs with sr25519: ~8 ms a run; FAULT_RUNS overrides)" },
  { name: "chain-hostile", fault: "garbage bytes on every chain subject, forged, replayed and out-of-order proofs, squatters, a registration flood", checks: "malformed or too_large with a code, the chain keeps answering; forgeries refused; registrations rate_limited per key and for new twins, bounded state, owners still answered", file: "test/integration/chain.test.ts" },
  { name: "flood-api", fault: "20,000 get requests from one connection; 2,000 audits", checks: "deploy decided during the flood; flooder rate_limited; RSS bounded and back to baseline", file: "test/integration/flood.test.ts" },
  { name: "flood-gossip", fault: "20,000 forged announcements of unknown node ids; find and sync floods", checks: "lookups rate-limited, all dropped, memory bounded, answers cut at a bound", file: "test/integration/gossip-flood.test.ts" },
  { name: "disk-full", fault: "the store on a small tmpfs filled up, and a read-only mount", checks: "new work refused with store_full, reads served, service back when space returns, no corruption", file: "test/integration/full-disk.test.ts" },
  { name: "secrets", fault: "failed connections with credentials, key files in use", checks: "no key or credential in any log line", file: "test/integration/secrets.test.ts" },
];

export interface ScenarioResult {
  name: string;
  mode: "quick" | "full";
  status: "pass" | "fail" | "skipped";
  seconds: number;
  date: string;
  commit: string;
  tests: { passed: number; failed: number; skipped: number };
  failures: string[];
  figures: Record<string, Record<string, unknown>>;
  /** the machine's 1-minute load average when the scenario ended (the figures depend on it) */
  load1m?: number;
  /** a person's note on this result (kept in the results file by hand; a new run drops it) */
  note?: string;
}

interface ResultsFile {
  machine: Record<string, string | number>;
  scenarios: Record<string, ScenarioResult>;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8" });
  return (r.stdout || r.stderr || "").trim();
}

function machine(): Record<string, string | number> {
  return {
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}`,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    natsServer: sh(process.env.NATS_SERVER_BIN || "nats-server", ["--version"]).split("\n")[0],
  };
}

/** Figures a test printed as a JSON line (console.log), by scenario name or in order. */
export function printedFigures(output: string): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  let i = 0;
  for (const line of output.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{") || !t.endsWith("}")) continue;
    try {
      const o = JSON.parse(t) as Record<string, unknown>;
      if (typeof o.scenario === "string" && o.figures && typeof o.figures === "object") out[o.scenario] = o.figures as Record<string, unknown>;
      else out[`printed-${++i}`] = o;
    } catch {
      /* not JSON */
    }
  }
  return out;
}

function runScenario(s: Scenario, mode: "quick" | "full", commit: string): ScenarioResult {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fault-suite-"));
  const json = path.join(tmp, "jest.json");
  const args = [path.join(ROOT, "node_modules", "jest", "bin", "jest.js"), s.file, "-w", "1", "--json", "--outputFile", json, ...(s.only ? ["-t", s.only] : [])];
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, FAULT_MODE: mode, FAULT_RESULTS: path.join(tmp, "figures") }, maxBuffer: 256 * 1024 * 1024 });
  const seconds = +((Date.now() - t0) / 1000).toFixed(1);
  const figures = printedFigures(`${r.stdout}\n${r.stderr}`);
  let tests = { passed: 0, failed: 0, skipped: 0 };
  const failures: string[] = [];
  try {
    const j = JSON.parse(fs.readFileSync(json, "utf8")) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number; testResults: Array<{ message: string; assertionResults: Array<{ status: string; title: string; failureMessages: string[] }> }> };
    tests = { passed: j.numPassedTests, failed: j.numFailedTests, skipped: j.numPendingTests + j.numTodoTests };
    for (const f of j.testResults) {
      for (const a of f.assertionResults) if (a.status === "failed") failures.push(`${a.title}: ${firstLines(a.failureMessages[0] ?? "")}`);
      if (f.message && f.assertionResults.every((a) => a.status !== "failed")) failures.push(f.message.split("\n").find((l) => l.trim())?.slice(0, 300) ?? "");
    }
  } catch {
    failures.push(`jest gave no results (exit ${r.status}): ${(r.stderr ?? "").split("\n").slice(-5).join(" ").slice(0, 300)}`);
  }
  const figDir = path.join(tmp, "figures");
  if (fs.existsSync(figDir)) for (const f of fs.readdirSync(figDir)) figures[path.basename(f, ".json")] = (JSON.parse(fs.readFileSync(path.join(figDir, f), "utf8")) as { figures: Record<string, unknown> }).figures;
  fs.rmSync(tmp, { recursive: true, force: true });
  const status = r.status === 0 && tests.failed === 0 && failures.length === 0 ? (tests.passed > 0 ? "pass" : "skipped") : "fail";
  return { name: s.name, mode, status, seconds, date: new Date().toISOString(), commit, tests, failures, figures, load1m: +os.loadavg()[0].toFixed(1) };
}

/** The message of a failure without colours and stack: its first lines, enough to see what differed. */
function firstLines(msg: string): string {
  return msg
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;]*m/g, "")
    .split("\n")
    .filter((l) => l.trim() && !/^\s+at /.test(l))
    .slice(0, 16)
    .map((l) => l.trim())
    .join(" / ")
    .slice(0, 2000);
}

function fmtFigures(f: Record<string, unknown>): string {
  return Object.entries(f)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(", ");
}

export function renderTable(results: ScenarioResult[]): string {
  const rows = [["scenario", "mode", "result", "seconds", "tests"], ...results.map((r) => [r.name, r.mode, r.status.toUpperCase(), String(r.seconds), `${r.tests.passed} passed${r.tests.failed ? `, ${r.tests.failed} failed` : ""}${r.tests.skipped ? `, ${r.tests.skipped} skipped` : ""}`])];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ")).join("\n");
}

export function renderDoc(file: ResultsFile): string {
  const m = file.machine;
  const results = SCENARIOS.map((s) => file.scenarios[s.name]).filter((r): r is ScenarioResult => !!r);
  const lines = [
    "# Reliability: the fault suite",
    "",
    "Generated by `scripts/fault-suite` from `docs/reliability-results.json`; do not edit by hand.",
    "Each scenario runs against real processes (a real nats-server, agents, the chain stand-in, real",
    "keys and on-disk stores, traffic on 127.0.0.1 only) as its own jest run with one worker.",
    "",
    "- Quick mode runs in CI (`npx jest test/faults`, plus the integration tests named below, which",
    "  the full test suite runs anyway).",
    "- Full mode is run by hand: `scripts/fault-suite --full` (all) or `--full --only crash-storm`.",
    "  Each scenario below says in which mode, when and at which commit it last ran. A scenario",
    "  with no \"Modes\" line has one size: its quick and full runs are the same run.",
    "",
    `Machine of the last run: ${m.cpu}, ${m.memoryGiB} GiB RAM, ${m.os}, Node ${m.node}, ${m.natsServer}.`,
    "",
    "Timings depend on the load: the column says the machine's 1-minute load average when each ended.",
    "",
    "| scenario | mode | result | seconds | load | ended (UTC) | commit |",
    "|---|---|---|---|---|---|---|",
    ...results.map((r) => `| ${r.name} | ${r.mode} | ${r.status.toUpperCase()} | ${r.seconds} | ${r.load1m ?? "?"} | ${r.date.slice(0, 16).replace("T", " ")} | ${r.commit} |`),
    "",
  ];
  for (const s of SCENARIOS) {
    const r = file.scenarios[s.name];
    lines.push(`## ${s.name}`, "", `- Fault: ${s.fault}.`, `- Must hold: ${s.checks}.`, `- Test: \`${s.file}\`${s.only ? ` (tests matching "${s.only}")` : ""}.`);
    if (s.full) lines.push(`- Modes: ${s.full}.`);
    if (!r) {
      lines.push("- Not run yet.", "");
      continue;
    }
    lines.push(`- Last run: ${r.mode} mode, ${r.status.toUpperCase()} in ${r.seconds} s, ${r.date.slice(0, 16).replace("T", " ")} UTC, commit ${r.commit}; ${r.tests.passed} tests passed, ${r.tests.failed} failed, ${r.tests.skipped} skipped.`);
    for (const [k, f] of Object.entries(r.figures)) lines.push(`- Figures${k.startsWith("printed-") ? "" : ` (${k})`}: ${fmtFigures(f)}.`);
    for (const f of r.failures) lines.push(`- Failure: ${f}`);
    if (r.note) lines.push(`- Note: ${r.note}`);
    lines.push("");
  }
  return lines.join("\n");
}

function main(): void {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, full: { type: "boolean" }, only: { type: "string", multiple: true }, "no-write": { type: "boolean" }, "doc-only": { type: "boolean" }, list: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(
      "usage: scripts/fault-suite [--quick|--full] [--only NAME[,NAME...]] [--no-write] [--list]\n" +
        "  --quick     CI sizes (default)\n  --full      the sizes of issue 11 (500 kills, 100,000 inputs per subject...): takes long\n" +
        "  --only      run these scenarios only (names: --list); the others keep their last results in the document\n" +
        "  --no-write  print the table only; leave docs/RELIABILITY.md and docs/reliability-results.json as they are\n" +
        "  --doc-only  write docs/RELIABILITY.md again from docs/reliability-results.json; run nothing\n",
    );
    return;
  }
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(20)} ${s.fault}\n`);
    return;
  }
  if (values["doc-only"]) {
    if (!fs.existsSync(RESULTS)) throw new Error(`${RESULTS} is missing: run the suite first`);
    fs.writeFileSync(DOC, renderDoc(JSON.parse(fs.readFileSync(RESULTS, "utf8")) as ResultsFile));
    process.stderr.write(`fault-suite: wrote ${path.relative(ROOT, DOC)} from ${path.relative(ROOT, RESULTS)}\n`);
    return;
  }
  if (values.quick && values.full) throw new Error("--quick and --full: choose one");
  const mode = values.full ? "full" : "quick";
  const names = (values.only ?? []).flatMap((o) => o.split(",")).filter(Boolean);
  const unknown = names.filter((nm) => !SCENARIOS.some((s) => s.name === nm));
  if (unknown.length) {
    process.stderr.write(`fault-suite: unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}\n`);
    process.exit(2);
  }
  const chosen = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  const commit = sh("git", ["rev-parse", "--short", "HEAD"]) || "?";
  const results: ScenarioResult[] = [];
  for (const s of chosen) {
    process.stderr.write(`fault-suite: ${s.name} (${mode})...\n`);
    const r = runScenario(s, mode, commit);
    process.stderr.write(`fault-suite: ${s.name}: ${r.status} in ${r.seconds} s${r.failures.length ? `: ${r.failures[0]}` : ""}\n`);
    results.push(r);
  }
  process.stdout.write(`${renderTable(results)}\n`);
  if (!values["no-write"]) {
    const file: ResultsFile = fs.existsSync(RESULTS) ? (JSON.parse(fs.readFileSync(RESULTS, "utf8")) as ResultsFile) : { machine: {}, scenarios: {} };
    file.machine = machine();
    for (const r of results) file.scenarios[r.name] = r;
    fs.writeFileSync(RESULTS, `${JSON.stringify(file, null, 2)}\n`);
    fs.writeFileSync(DOC, renderDoc(file));
    process.stderr.write(`fault-suite: wrote ${path.relative(ROOT, DOC)} and ${path.relative(ROOT, RESULTS)}\n`);
  }
  process.exit(results.every((r) => r.status !== "fail") ? 0 : 1);
}

if (require.main === module) main();
