import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { HardwareError } from "./errors";

/**
 * cgroup limits on this process, as whole units the grid counts. `null` means no limit: the
 * file says "max" (v2), -1 or a huge value (v1), or there is no such file.
 */
export interface CgroupLimits {
  /** whole CPUs the cpu quota allows (a fraction rounds up, at least 1) */
  cpus: number | null;
  /** memory limit, bytes */
  memoryBytes: number | null;
  /** the file that gave `cpus`, null when no cpu file exists (for logs) */
  cpuFile: string | null;
  /** the file that gave `memoryBytes`, null when no memory file exists (for logs) */
  memoryFile: string | null;
}

export const NO_CGROUP_LIMITS: Readonly<CgroupLimits> = Object.freeze({ cpus: null, memoryBytes: null, cpuFile: null, memoryFile: null });

/** The kernel's default CFS period, µs (used when cpu.max gives only a quota). */
export const DEFAULT_CFS_PERIOD_US = 100_000;

const UINT = /^\d+$/;

function malformed(file: string, text: string): HardwareError<"probe_failed"> {
  return new HardwareError("probe_failed", `cgroup ${file}: unexpected content ${JSON.stringify(text.trim().slice(0, 80))}`, { step: "cgroup" });
}

/** Whole CPUs a quota of `quotaUs` per `periodUs` allows: 1.5 CPUs count as 2, never fewer than 1. */
export function cpusFromQuota(quotaUs: number, periodUs: number): number {
  return Math.max(1, Math.ceil(quotaUs / periodUs));
}

/**
 * cgroup v2 `cpu.max`: "$QUOTA $PERIOD" in µs, QUOTA "max" for no limit.
 * "max 100000" => null; "200000 100000" => 2; "150000 100000" => 2; "50000 100000" => 1.
 */
export function parseCpuMax(text: string): number | null {
  const parts = text.trim().split(/\s+/);
  if (parts.length < 1 || parts.length > 2) throw malformed("cpu.max", text);
  const [quota, period = String(DEFAULT_CFS_PERIOD_US)] = parts;
  if (!UINT.test(period) || Number(period) === 0) throw malformed("cpu.max", text);
  if (quota === "max") return null;
  if (!UINT.test(quota) || Number(quota) === 0) throw malformed("cpu.max", text);
  return cpusFromQuota(Number(quota), Number(period));
}

/**
 * A byte count that may mean "unlimited": anything above 2^53 (v1 reports "no limit" as
 * PAGE_COUNTER_MAX pages, 9223372036854771712 with 4 KiB pages) is no limit; no node has 8 PiB.
 */
function limitBytes(file: string, text: string, unlimited: "max" | "-1"): number | null {
  const t = text.trim();
  if (t === unlimited) return null;
  if (!UINT.test(t)) throw malformed(file, text);
  const n = Number(t);
  return n > Number.MAX_SAFE_INTEGER ? null : n;
}

/** cgroup v2 `memory.max`: "max" => null, else bytes. */
export function parseMemoryMax(text: string): number | null {
  return limitBytes("memory.max", text, "max");
}

/**
 * cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: quota -1 => null, else whole CPUs as
 * for v2.
 */
export function parseCfsQuota(quotaText: string, periodText: string = String(DEFAULT_CFS_PERIOD_US)): number | null {
  const quota = quotaText.trim();
  const period = periodText.trim();
  if (!UINT.test(period) || Number(period) === 0) throw malformed("cpu.cfs_period_us", periodText);
  if (quota === "-1") return null;
  if (!UINT.test(quota) || Number(quota) === 0) throw malformed("cpu.cfs_quota_us", quotaText);
  return cpusFromQuota(Number(quota), Number(period));
}

/** cgroup v1 `memory.limit_in_bytes`: bytes; a huge value (9223372036854771712) or -1 => null. */
export function parseMemoryLimitInBytes(text: string): number | null {
  return limitBytes("memory.limit_in_bytes", text, "-1");
}

/** CRU: the logical CPU count, unless a cgroup cpu limit is set and lower. */
export function effectiveCru(logicalCpus: number, limits: Pick<CgroupLimits, "cpus">): { cru: number; source: "cpus" | "cgroup" } {
  if (limits.cpus !== null && limits.cpus < logicalCpus) return { cru: limits.cpus, source: "cgroup" };
  return { cru: logicalCpus, source: "cpus" };
}

/** MRU: total memory, unless a cgroup memory limit is set and lower. */
export function effectiveMru(totalBytes: number, limits: Pick<CgroupLimits, "memoryBytes">): { mru: number; source: "meminfo" | "cgroup" } {
  if (limits.memoryBytes !== null && limits.memoryBytes < totalBytes) return { mru: limits.memoryBytes, source: "cgroup" };
  return { mru: totalBytes, source: "meminfo" };
}

/** The file's text, or null when it does not exist. Other errors (EACCES, EIO) are thrown. */
async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (err: unknown) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw new HardwareError("probe_failed", `cannot read ${file}`, { step: "cgroup" }, { cause: err });
  }
}

/**
 * Reads the cgroup limits under `root` (default mount /sys/fs/cgroup): v2 `cpu.max` and
 * `memory.max` at the top, else v1 `cpu/cpu.cfs_quota_us` + `cpu/cpu.cfs_period_us` and
 * `memory/memory.limit_in_bytes`. Each resource falls back on its own (hybrid hosts mount v1
 * controllers next to an empty v2 tree). Missing files mean no limit.
 *
 * In a container the cgroup namespace makes `root` the container's own cgroup. On a host
 * without a cgroup namespace the top files are the root cgroup's, which has no limits.
 */
export async function readCgroupLimits(root: string): Promise<CgroupLimits> {
  const limits: CgroupLimits = { cpus: null, memoryBytes: null, cpuFile: null, memoryFile: null };

  const cpuMax = join(root, "cpu.max");
  const cpuMaxText = await readOptional(cpuMax);
  if (cpuMaxText !== null) {
    limits.cpus = parseCpuMax(cpuMaxText);
    limits.cpuFile = cpuMax;
  } else {
    const quotaFile = join(root, "cpu", "cpu.cfs_quota_us");
    const quotaText = await readOptional(quotaFile);
    if (quotaText !== null) {
      const periodText = await readOptional(join(root, "cpu", "cpu.cfs_period_us"));
      limits.cpus = parseCfsQuota(quotaText, periodText ?? undefined);
      limits.cpuFile = quotaFile;
    }
  }

  const memMax = join(root, "memory.max");
  const memMaxText = await readOptional(memMax);
  if (memMaxText !== null) {
    limits.memoryBytes = parseMemoryMax(memMaxText);
    limits.memoryFile = memMax;
  } else {
    const limitFile = join(root, "memory", "memory.limit_in_bytes");
    const limitText = await readOptional(limitFile);
    if (limitText !== null) {
      limits.memoryBytes = parseMemoryLimitInBytes(limitText);
      limits.memoryFile = limitFile;
    }
  }
  return limits;
}
