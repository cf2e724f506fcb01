import type { Systeminformation } from "systeminformation";
import type { Disk, DiskClass } from "./types";

/** Why a block device is not counted as a disk (debug logs and tests). */
export type DiskExclusion =
  /** lsblk type other than "disk": partitions, lvm, crypt, raid*, rom, loop, ... */
  | "not_disk"
  /** zram*: compressed RAM swap */
  | "zram"
  /** loop*: a file mounted as a device */
  | "loop"
  /** ram*: RAM disks */
  | "ram"
  /** dm-*: device-mapper (LVM, crypt, multipath) volumes on top of real disks */
  | "device_mapper"
  /** md*: software RAID arrays and their partitions, on top of real disks */
  | "md"
  /** USB sticks, card readers, optical drives */
  | "removable"
  /** size 0 (empty zram, loop, card reader without a card) or not a byte count */
  | "zero_size";

/** Inputs of `classifyDisks`, as the probe gathers them. */
export interface DiskInputs {
  /** systeminformation `blockDevices()` */
  blockDevices: readonly Systeminformation.BlockDevicesData[];
  /** systeminformation `diskLayout()`; may be empty (the probe reads it only when a class is still unknown) */
  diskLayout: readonly Systeminformation.DiskLayoutData[];
  /** kernel name -> /sys/block/<name>/queue/rotational is 1; a name missing here has no readable flag */
  rotational: Readonly<Record<string, boolean | undefined>>;
  /** kernel name -> operator's class (options.diskOverrides) */
  overrides: Readonly<Record<string, DiskClass | undefined>>;
}

const NAME_RULES: Array<[RegExp, DiskExclusion]> = [
  [/^zram\d+$/, "zram"],
  [/^loop\d+$/, "loop"],
  [/^ram\d+$/, "ram"],
  [/^dm-\d+$/, "device_mapper"],
  [/^md\d+(p\d+)?$/, "md"],
];

/** Null for a real whole disk, else why the device is not counted. */
export function diskExclusion(dev: Pick<Systeminformation.BlockDevicesData, "name" | "type" | "removable" | "size">): DiskExclusion | null {
  for (const [re, reason] of NAME_RULES) if (re.test(dev.name)) return reason;
  if (dev.type !== "disk") return "not_disk";
  if (dev.removable) return "removable";
  if (!Number.isSafeInteger(dev.size) || dev.size <= 0) return "zero_size";
  return null;
}

/** The class a diskLayout device type stands for: "SSD" and "NVMe" are SSD, "HD" is HDD. */
export function classFromType(type: string | undefined): DiskClass | null {
  switch ((type ?? "").trim().toUpperCase()) {
    case "SSD":
    case "NVME":
      return "ssd";
    case "HD":
    case "HDD":
      return "hdd";
    default:
      return null;
  }
}

/** True when the class of `name` is known without diskLayout (override or rotational flag). */
export function classKnownWithoutLayout(name: string, inputs: Pick<DiskInputs, "rotational" | "overrides">): boolean {
  return inputs.overrides[name] !== undefined || inputs.rotational[name] !== undefined;
}

/**
 * The node's disks: real whole disks only (see `diskExclusion`), each classed SSD or HDD.
 *
 * The class comes from, in order:
 *  1. the operator's override (classSource "override");
 *  2. the kernel's rotational flag, 1 => HDD, 0 => SSD (classSource "rotational"), the cheap
 *     equivalent of zos's random-read timing;
 *  3. diskLayout's device type, SSD or NVMe => SSD, HD => HDD (classSource "type");
 *  4. HDD (classSource "type"): when nothing is known, the conservative answer (SSD capacity
 *     is what VMs need, so it is never promised without evidence).
 *
 * Virtual disks (virtio, QEMU, most cloud volumes) usually report rotational=1 whatever backs
 * them, so a VM on NVMe shows HDD here: that is why the override exists.
 */
export function classifyDisks(inputs: DiskInputs): Disk[] {
  const layoutByDevice = new Map<string, Systeminformation.DiskLayoutData>();
  for (const l of inputs.diskLayout) layoutByDevice.set(l.device, l);
  const seen = new Set<string>();
  const disks: Disk[] = [];
  for (const dev of inputs.blockDevices) {
    if (diskExclusion(dev) !== null || seen.has(dev.name)) continue;
    seen.add(dev.name);
    const device = dev.device || `/dev/${dev.name}`;
    const layout = layoutByDevice.get(device) ?? layoutByDevice.get(`/dev/${dev.name}`);
    const override = inputs.overrides[dev.name];
    const rotational = inputs.rotational[dev.name];
    let cls: DiskClass;
    let classSource: Disk["classSource"];
    if (override !== undefined) {
      cls = override;
      classSource = "override";
    } else if (rotational !== undefined) {
      cls = rotational ? "hdd" : "ssd";
      classSource = "rotational";
    } else {
      cls = classFromType(layout?.type) ?? "hdd";
      classSource = "type";
    }
    disks.push({
      name: dev.name,
      device,
      sizeBytes: dev.size,
      class: cls,
      classSource,
      model: (dev.model || layout?.name || "").trim(),
    });
  }
  return disks;
}

/** SRU = sum of SSD sizes, HRU = sum of HDD sizes, bytes. */
export function storageUnits(disks: readonly Disk[]): { sru: number; hru: number } {
  let sru = 0;
  let hru = 0;
  for (const d of disks) {
    if (d.class === "ssd") sru += d.sizeBytes;
    else hru += d.sizeBytes;
  }
  return { sru, hru };
}

/**
 * When the node has no SSD capacity (SRU 0), what to tell the farmer: on a VM every virtual disk
 * is "rotational" to the kernel, so everything counts as HDD and no VM (which needs SSD) fits.
 * Names the disks and the config that classes them SSD. Null when there is SSD capacity.
 */
export function noSsdAdvice(report: { total: { sru: number }; disks: readonly Disk[] }): { disks: string[]; config: string; hint: string } | null {
  if (report.total.sru > 0) return null;
  const names = report.disks.map((d) => d.name);
  const config = JSON.stringify({ hardware: { diskOverrides: Object.fromEntries((names.length ? names : ["vda"]).map((n) => [n, "ssd"])) } });
  return {
    disks: names,
    config,
    hint: `write ${config} to a file (only disks that really are SSDs) and start with --config FILE; capacity-agent hardware shows each disk's class`,
  };
}
