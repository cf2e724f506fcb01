/**
 * Resource use of another process, read from /proc (Linux): resident memory and CPU time. The
 * flood tests measure the agent process with these before, during and after a flood.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";

let ticksPerSecond: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/PID/stat (100 on Linux; asked of getconf once). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    const n = Number((r.stdout ?? "").trim());
    ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** Resident set size of a process in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}: the process exited`);
  return Number(m[1]) * 1024;
}

/** CPU time (user + system, all threads) a process has used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / clockTicks();
}

/** CPU a process uses over `ms` of wall time, in % of one core. */
export async function cpuPercentOver(pid: number, ms: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, ms));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return ((cpuSeconds(pid) - c0) / wall) * 100;
}

/** A window of CPU use: started now, read with `end()`. */
export function cpuWindow(pid: number): { end(): { cpuS: number; wallS: number; percent: number } } {
  const c0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  return {
    end() {
      const cpuS = cpuSeconds(pid) - c0;
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      return { cpuS: +cpuS.toFixed(2), wallS: +wallS.toFixed(2), percent: +((cpuS / wallS) * 100).toFixed(1) };
    },
  };
}

/** The CPU figures of a flood (its window, idle use before and after, cost per input), as the flood tests record them. */
export function floodCpuFigures(cpu: { cpuS: number; wallS: number; percent: number }, idleBeforePct: number, idleAfterPct: number, inputs: number): Record<string, number> {
  return {
    idleCpuPctBefore: +idleBeforePct.toFixed(1),
    floodCpuS: cpu.cpuS,
    floodWallS: cpu.wallS,
    floodCpuPct: cpu.percent,
    cpuUsPerInput: Math.round((cpu.cpuS / inputs) * 1e6),
    idleCpuPctAfter: +idleAfterPct.toFixed(1),
  };
}
