import { invalidOption } from "./errors";
import type { DiskClass } from "./types";
import { intInRange } from "../util/ints";

/** Options of the hardware module; `parseHardwareOptions` checks each one and names the bad field. */
export interface HardwareOptions {
  /**
   * public IPv4 addresses the farm assigned to this node (default 0). IPV4U is farm-owned and
   * cannot be measured on the node, so it comes from config.
   */
  ipv4u: number;
  /**
   * disk class per kernel name, e.g. `{"vda": "ssd"}` (default {}). Wins over the kernel's
   * rotational flag, which virtual disks usually misreport as 1 (HDD).
   */
  diskOverrides: Record<string, DiskClass>;
  /** the GPU scan (nvidia-smi, lspci in a worker thread) is abandoned after this long, ms (default 5000) */
  gpuTimeoutMs: number;
  /** a successful GPU scan is reused for this long, ms (default 300000; 0 scans on every probe) */
  gpuCacheMs: number;
  /** where the cgroup filesystem is mounted; v2 files at the top, v1 controllers below (default "/sys/fs/cgroup") */
  cgroupRoot: string;
  /** the monitor re-probes the hardware this often, ms (default 60000; 0 disables re-probing) */
  reprobeIntervalMs: number;
}

export const HARDWARE_DEFAULTS: Readonly<HardwareOptions> = Object.freeze({
  ipv4u: 0,
  diskOverrides: Object.freeze({}) as Record<string, DiskClass>,
  gpuTimeoutMs: 5000,
  gpuCacheMs: 300_000,
  cgroupRoot: "/sys/fs/cgroup",
  reprobeIntervalMs: 60_000,
});

/** Inclusive integer ranges of the numeric options. */
const RANGES: Record<"ipv4u" | "gpuTimeoutMs" | "gpuCacheMs" | "reprobeIntervalMs", [number, number]> = {
  ipv4u: [0, 65_535],
  gpuTimeoutMs: [1, 600_000],
  gpuCacheMs: [0, 86_400_000],
  reprobeIntervalMs: [0, 86_400_000],
};

/** A kernel block device name as in /sys/block: "vda", "sda", "nvme0n1" (no "/dev/" prefix). */
const KERNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

const KEYS = new Set(Object.keys(HARDWARE_DEFAULTS));

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Validates raw hardware options (from the config file's `hardware` object) and fills in the
 * defaults. Throws a HardwareError `invalid_option` whose message and `field` name the bad field,
 * e.g. `hardware.diskOverrides.vda: expected "ssd" or "hdd", got "fast"`.
 */
export function parseHardwareOptions(raw: unknown, path = "hardware"): HardwareOptions {
  if (raw === undefined || raw === null) raw = {};
  if (!isObject(raw)) throw invalidOption(path, `expected an object, got ${JSON.stringify(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!KEYS.has(key)) throw invalidOption(`${path}.${key}`, `unknown option (known: ${[...KEYS].join(", ")})`);
  }
  const o: HardwareOptions = { ...HARDWARE_DEFAULTS, diskOverrides: {} };
  for (const [field, [min, max]] of Object.entries(RANGES) as Array<[keyof typeof RANGES, [number, number]]>) {
    const v = raw[field];
    if (v === undefined) continue;
    const r = intInRange(v, min, max);
    if (!r.ok) throw invalidOption(`${path}.${field}`, r.problem);
    o[field] = r.value;
  }
  if (raw.cgroupRoot !== undefined) {
    const v = raw.cgroupRoot;
    if (typeof v !== "string" || !v.startsWith("/")) throw invalidOption(`${path}.cgroupRoot`, `expected an absolute path, got ${JSON.stringify(v)}`);
    o.cgroupRoot = v.replace(/\/+$/, "") || "/";
  }
  if (raw.diskOverrides !== undefined) {
    const overrides = raw.diskOverrides;
    if (!isObject(overrides)) throw invalidOption(`${path}.diskOverrides`, `expected an object like {"vda": "ssd"}, got ${JSON.stringify(overrides)}`);
    for (const [name, cls] of Object.entries(overrides)) {
      if (!KERNEL_NAME.test(name)) throw invalidOption(`${path}.diskOverrides.${name}`, `expected a kernel device name like "vda" or "nvme0n1" (no /dev/)`);
      if (cls !== "ssd" && cls !== "hdd") throw invalidOption(`${path}.diskOverrides.${name}`, `expected "ssd" or "hdd", got ${JSON.stringify(cls)}`);
      o.diskOverrides[name] = cls;
    }
  }
  return o;
}
