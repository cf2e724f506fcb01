/**
 * Evidence for a missed target, from the same run: a V8 CPU profile of one phase of a bench
 * (node:inspector's sampling profiler, what `node --cpu-prof` writes), summarised as where the
 * time went: self time per category (idle, GC, node's crypto, SQLite, nats.js, protobufjs, the
 * agent's own modules...), as shares of the phase's wall time. The summary is what the report
 * prints next to a `target missed` line (Row.limits); `--save-profile DIR` also writes the raw
 * .cpuprofile for Chrome DevTools or speedscope.
 */
import * as fs from "node:fs";
import * as inspector from "node:inspector";
import * as path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** wall time covered by the samples, ms */
  ms: number;
  /** share of the samples per category, largest first (0..1) */
  shares: Array<{ what: string; share: number }>;
}

function post<T>(s: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => s.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** The category of a frame with code (a URL): a package, a node built-in, an agent module. */
function categoryOf(url: string, fn: string): string | null {
  if (!url) return null;
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "node_modules/".length).split("/");
    return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith("node:")) {
    const p = url.replace(/^node:(internal\/)?/, "");
    if (p.startsWith("crypto/")) return `node:crypto ${fn || p}`;
    if (p.startsWith("streams") || p.startsWith("stream_base") || p === "net" || p.startsWith("net")) return "node:net (sockets)";
    if (p.startsWith("timers") || p.startsWith("process/task_queues")) return "node:timers, microtasks";
    return `node:${p.split("/")[0]}`;
  }
  const a = url.match(/\/dist\/(agent\/[^/]+)\//);
  if (a) return a[1];
  if (url.includes("/dist/scripts/")) return "the bench itself (requesters, timing)";
  return url.split("/").pop() ?? url;
}

/** Summarise a profile: self time per category; a native function counts under its caller's category. */
export function summarise(p: CpuProfile): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const cat = new Map<number, string>();
  const categorise = (id: number): string => {
    const hit = cat.get(id);
    if (hit) return hit;
    const n = byId.get(id)!;
    const { functionName: fn, url } = n.callFrame;
    let c: string;
    if (fn === "(idle)") c = "idle (the thread waited: for I/O, timers, or a core)";
    else if (fn === "(garbage collector)") c = "GC";
    else if (fn === "(program)") c = "(program: V8/native outside JS)";
    else if (fn === "(root)") c = "(root)";
    else {
      const own = categoryOf(url, fn);
      if (own) c = own;
      else {
        // native (a C++ binding): named by itself, under whoever called it
        const up = parent.get(id);
        const callerCat = up !== undefined ? categorise(up) : "?";
        c = `${fn || "native"}() native, from ${callerCat.replace(/ \(native from .*$/, "")}`;
      }
    }
    cat.set(id, c);
    return c;
  };
  const ms = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000; // a sample's time runs to the next one
    const c = categorise(p.samples[i]);
    ms.set(c, (ms.get(c) ?? 0) + dt);
    total += dt;
  }
  const shares = [...ms].map(([what, t]) => ({ what, share: total > 0 ? t / total : 0 })).sort((a, b) => b.share - a.share);
  return { ms: Math.max(total, (p.endTime - p.startTime) / 1000), shares };
}

/** "CPU profile (V8 sampling, 1234 ms of this run): 46.6% idle ..., 25.0% node:crypto verify, ..." */
export function describe(s: ProfileSummary, top = 7): string {
  const parts = s.shares
    .filter((x) => x.share >= 0.005)
    .slice(0, top)
    .map((x) => `${(x.share * 100).toFixed(1)}% ${x.what}`);
  return `CPU profile of this phase (V8 sampling profiler, ${Math.round(s.ms)} ms of this run, self time): ${parts.join("; ")}`;
}

/** Share of the profile spent in categories whose name matches `re`. */
export function shareOf(s: ProfileSummary, re: RegExp): number {
  return s.shares.filter((x) => re.test(x.what)).reduce((a, x) => a + x.share, 0);
}

/**
 * Run fn under the CPU profiler (this process only; a sample every 1 ms: the profiler's own cost
 * shows up as `dispatch() native, from node:inspector`). With `--save-profile DIR`
 * on the command line the raw profile is written to DIR/<name>.cpuprofile too.
 */
export async function profiled<T>(name: string, fn: () => Promise<T>): Promise<{ result: T; summary: ProfileSummary }> {
  const s = new inspector.Session();
  s.connect();
  try {
    await post(s, "Profiler.enable");
    await post(s, "Profiler.setSamplingInterval", { interval: 1000 });
    await post(s, "Profiler.start");
    const result = await fn();
    const { profile } = await post<{ profile: CpuProfile }>(s, "Profiler.stop");
    const i = process.argv.indexOf("--save-profile");
    if (i >= 0 && process.argv[i + 1]) {
      fs.mkdirSync(process.argv[i + 1], { recursive: true });
      fs.writeFileSync(path.join(process.argv[i + 1], `${name}.cpuprofile`), JSON.stringify(profile));
    }
    return { result, summary: summarise(profile) };
  } finally {
    s.disconnect();
  }
}
