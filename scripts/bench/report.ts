/**
 * What every bench prints: rows of one figure each, with the baseline measured in the same run,
 * the ratio, and the target when the issue sets one (`target met` / `target missed`). A bench run
 * with `--json` prints one JSON line `{ bench, title, rows }` instead of a table; `scripts/bench/all`
 * collects those lines into docs/BENCHMARKS.md.
 */
import * as os from "node:os";

export interface Row {
  /** what was measured */
  name: string;
  value: number;
  /** "µs", "ms", "/s", "MB", "%", "B/h", "msgs" ... */
  unit: string;
  /** the baseline measured in the same run (omitted for a row that is itself a baseline) */
  baseline?: { name: string; value: number };
  /** value / baseline (or as the row defines it, e.g. concurrent / serial) */
  ratio?: number;
  /** the issue's target, in words, and whether this run met it */
  target?: { text: string; met: boolean };
  /** what limits it, when missed; or any remark */
  note?: string;
  /**
   * the evidence of what limits a missed target, from this run: a profile summary of the phase
   * (profile.ts `describe`) or a decomposition into measured parts; printed under the
   * `target missed` line (table and BENCHMARKS.md)
   */
  limits?: string;
}

export interface BenchReport {
  bench: string;
  title: string;
  rows: Row[];
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

/**
 * Say which phase a bench is in (stderr, `bench-phase: NAME`): the runner reports the last one
 * when the bench times out or fails.
 */
export function phase(name: string): void {
  process.stderr.write(`bench-phase: ${name}\n`);
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "n/a";
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`;
}

/** One table line per row. */
export function table(r: BenchReport): string {
  const lines = [`${r.title}`];
  for (const x of r.rows) {
    const base = x.baseline ? `  vs ${x.baseline.name} ${fmt(x.baseline.value, x.unit)}` : "";
    const ratio = x.ratio !== undefined && Number.isFinite(x.ratio) ? `  x${x.ratio.toFixed(2)}` : "";
    const target = x.target ? `  [${x.target.text}: ${x.target.met ? "target met" : "target missed"}]` : "";
    lines.push(`  ${x.name.padEnd(62)} ${fmt(x.value, x.unit).padStart(12)}${ratio}${base}${target}${x.note ? `  (${x.note})` : ""}`);
    if (x.limits && x.target && !x.target.met) lines.push(`      what limits it: ${x.limits}`);
  }
  return lines.join("\n");
}

/** Print the report: a table, or one JSON line with --json. */
export function report(r: BenchReport): void {
  if (flag("json")) process.stdout.write(JSON.stringify(r) + "\n");
  else process.stdout.write(table(r) + "\n");
}

/** The machine a figure was measured on, and how busy it was. */
export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" ");
  return `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}, node ${process.version}, load average ${load}`;
}

export interface RunMeta {
  date: string;
  machine: string;
  mode: "full" | "quick";
  loadBefore: number[];
  loadAfter: number[];
  seconds: number;
  /** benches that failed or timed out, with why */
  failures: Array<{ bench: string; error: string }>;
}

function cell(v: number, unit: string): string {
  return fmt(v, unit).replace(/\|/g, "\\|");
}

/** docs/BENCHMARKS.md from one run: every figure with its baseline, ratio and target verdict. */
export function markdown(reports: BenchReport[], meta: RunMeta, intro: string): string {
  const out: string[] = [];
  out.push("# Benchmarks", "");
  out.push(`Written by \`npm run ${meta.mode === "quick" ? "bench:quick" : "bench"}\` on ${meta.date} (${meta.seconds.toFixed(0)} s). Do not edit by hand: run it again.`, "");
  out.push(`- Machine: ${meta.machine}`);
  out.push(`- Load average (1, 5, 15 min) before: ${meta.loadBefore.map((l) => l.toFixed(2)).join(", ")}; after: ${meta.loadAfter.map((l) => l.toFixed(2)).join(", ")}`);
  if (meta.mode === "quick") out.push("- Mode: quick (tiny sizes, a smoke run): the figures are not the ones the targets are judged on.");
  out.push("", intro, "");
  const missed: Array<{ bench: string; row: Row }> = [];
  for (const r of reports) {
    out.push(`## ${r.bench}`, "", r.title, "");
    out.push("| figure | value | baseline (same run) | ratio | target |", "|---|---|---|---|---|");
    for (const x of r.rows) {
      const base = x.baseline ? `${x.baseline.name}: ${cell(x.baseline.value, x.unit)}` : "";
      const ratio = x.ratio !== undefined && Number.isFinite(x.ratio) ? `${x.ratio.toFixed(2)}x` : "";
      const target = x.target ? `${x.target.text}: **${x.target.met ? "target met" : "target missed"}**` : "";
      const note = x.note ? ` (${x.note})` : "";
      out.push(`| ${x.name}${note} | ${cell(x.value, x.unit)} | ${base} | ${ratio} | ${target} |`);
      if (x.target && !x.target.met) missed.push({ bench: r.bench, row: x });
    }
    out.push("");
  }
  if (meta.failures.length) {
    out.push("## Benches that did not finish", "");
    for (const f of meta.failures) out.push(`- ${f.bench}: ${f.error}`);
    out.push("");
  }
  out.push("## Targets missed in this run", "");
  if (missed.length === 0) out.push("None.");
  for (const m of missed) {
    out.push(`- ${m.bench}: ${m.row.name}: ${fmt(m.row.value, m.row.unit)} (${m.row.target!.text})${m.row.note ? `: ${m.row.note}` : ""}`);
    if (m.row.limits) out.push(`  - what limits it (measured in this run): ${m.row.limits}`);
  }
  out.push("");
  return out.join("\n");
}
