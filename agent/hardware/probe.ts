import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import * as si from "systeminformation";
import { readCgroupLimits, effectiveCru, effectiveMru, type CgroupLimits } from "./cgroup";
import { classifyDisks, classKnownWithoutLayout, diskExclusion, storageUnits } from "./disks";
import { HardwareError, type ProbeStep } from "./errors";
import { WorkerGpuReader, type GpuReader } from "./gpu";
import type { HardwareOptions } from "./options";
import type { HardwareProbe, HardwareReport } from "./types";

/** Where the kernel lists block devices; /sys/block/<name>/queue/rotational is 1 for spinning disks. */
export const SYS_BLOCK = "/sys/block";

export interface SystemHardwareProbeModules {
  /** the agent's logger; the probe logs through a child `{module: "hardware"}` */
  logger: Logger;
  /** where GPUs come from (default: systeminformation in a worker thread, with options' timeout and cache) */
  gpus?: GpuReader;
}

async function step<T>(name: ProbeStep, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err: unknown) {
    if (err instanceof HardwareError) throw err;
    throw new HardwareError("probe_failed", `hardware probe failed reading ${name}: ${err instanceof Error ? err.message : String(err)}`, { step: name }, { cause: err });
  }
}

/** /sys/block/<name>/queue/rotational as a boolean, undefined when it cannot be read or is not 0/1. */
async function readRotational(name: string): Promise<boolean | undefined> {
  if (!/^[A-Za-z0-9._:-]+$/.test(name)) return undefined;
  try {
    const text = (await readFile(join(SYS_BLOCK, name, "queue", "rotational"), "utf8")).trim();
    return text === "1" ? true : text === "0" ? false : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads this machine's hardware: logical CPUs and total memory (systeminformation; a lower
 * cgroup limit wins), real disks classed SSD/HDD (blockDevices + /sys/block rotational flags +
 * operator overrides; diskLayout only when a class is still unknown, because it runs smartctl
 * on every disk, which is slow and wakes sleeping HDDs), GPUs (a worker thread, cached) and the
 * configured IPv4 count.
 */
export class SystemHardwareProbe implements HardwareProbe {
  private readonly log: Logger;
  private readonly gpus: GpuReader;
  private readonly unmatchedOverrides = new Set<string>();

  constructor(
    private readonly options: HardwareOptions,
    modules: SystemHardwareProbeModules,
  ) {
    this.log = modules.logger.child({ module: "hardware" });
    this.gpus = modules.gpus ?? new WorkerGpuReader({ timeoutMs: options.gpuTimeoutMs, cacheMs: options.gpuCacheMs }, { logger: this.log });
  }

  /** One reading of the hardware. A systeminformation or cgroup failure is a HardwareError "probe_failed" with the cause kept. */
  async probe(): Promise<HardwareReport> {
    const [cpu, mem, blockDevices, limits, gpus] = await Promise.all([
      step("cpu", () => si.cpu()),
      step("memory", () => si.mem()),
      step("block_devices", () => si.blockDevices()),
      step("cgroup", () => readCgroupLimits(this.options.cgroupRoot)),
      this.gpus.read(),
    ]);

    // cores is systeminformation's logical CPU count (threads), physicalCores the cores
    const logical = Number.isSafeInteger(cpu.cores) && cpu.cores > 0 ? cpu.cores : availableParallelism();
    if (!Number.isSafeInteger(mem.total) || mem.total <= 0) {
      throw new HardwareError("probe_failed", `hardware probe failed reading memory: total is ${JSON.stringify(mem.total)}`, { step: "memory" });
    }
    if (!Array.isArray(blockDevices)) {
      throw new HardwareError("probe_failed", "hardware probe failed reading block_devices: not a list", { step: "block_devices" });
    }

    const candidates = blockDevices.filter((d) => diskExclusion(d) === null).map((d) => d.name);
    const rotational: Record<string, boolean | undefined> = {};
    await Promise.all(
      candidates.map(async (name) => {
        rotational[name] = await readRotational(name);
      }),
    );
    const overrides = this.options.diskOverrides;
    const needLayout = candidates.some((name) => !classKnownWithoutLayout(name, { rotational, overrides }));
    const diskLayout = needLayout ? await step("disk_layout", () => si.diskLayout()) : [];
    const disks = classifyDisks({ blockDevices, diskLayout: Array.isArray(diskLayout) ? diskLayout : [], rotational, overrides });
    this.warnUnmatchedOverrides(candidates);

    const cru = effectiveCru(logical, limits);
    const mru = effectiveMru(mem.total, limits);
    const { sru, hru } = storageUnits(disks);
    const report: HardwareReport = {
      total: { cru: cru.cru, mru: mru.mru, sru, hru, ipv4u: this.options.ipv4u, gpu: gpus.length },
      disks,
      gpus,
      sources: { cru: cru.source, mru: mru.source },
      probedAt: Date.now(),
    };
    this.log.debug({ event: "hardware_read", total: report.total, sources: report.sources, cgroup: limitsForLog(limits), disks: disks.length, gpus: gpus.length }, "hardware read");
    return report;
  }

  /** Stops a running GPU worker. */
  async close(): Promise<void> {
    this.gpus.close();
  }

  /** An override naming no disk is most likely a typo: warned once per name. */
  private warnUnmatchedOverrides(names: string[]): void {
    for (const name of Object.keys(this.options.diskOverrides)) {
      if (names.includes(name) || this.unmatchedOverrides.has(name)) continue;
      this.unmatchedOverrides.add(name);
      this.log.warn({ event: "disk_override_unmatched", name, disks: names }, "disk override matches no disk");
    }
  }
}

function limitsForLog(l: CgroupLimits): Record<string, unknown> {
  return { cpus: l.cpus, memoryBytes: l.memoryBytes, cpuFile: l.cpuFile, memoryFile: l.memoryFile };
}
