import type { Units } from "../capacity/units";

export type DiskClass = "ssd" | "hdd";

export interface Disk {
  /** kernel name, e.g. "vda", "nvme0n1" */
  name: string;
  /** /dev path */
  device: string;
  sizeBytes: number;
  class: DiskClass;
  /** where the class came from: the config override, the kernel rotational flag, or the device type */
  classSource: "override" | "rotational" | "type";
  model: string;
}

export interface Gpu {
  vendor: string;
  model: string;
  /** video memory in bytes, 0 when unknown */
  memoryBytes: number;
  /** a stable id, e.g. the PCI bus address when known, else "gpu<index>" */
  id: string;
}

export interface HardwareReport {
  /** hardware totals: cru, mru, sru, hru; ipv4u from config; gpu = number of GPUs */
  total: Units;
  disks: Disk[];
  gpus: Gpu[];
  /** where cru and mru came from */
  sources: { cru: "cpus" | "cgroup"; mru: "meminfo" | "cgroup" };
  /** ms since epoch when probed */
  probedAt: number;
}

export interface HardwareProbe {
  probe(): Promise<HardwareReport>;
}
