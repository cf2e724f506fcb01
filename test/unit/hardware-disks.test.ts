import type { Systeminformation } from "systeminformation";
import { GiB, TiB } from "../../agent/capacity/units";
import { classFromType, classifyDisks, diskExclusion, noSsdAdvice, storageUnits, type Disk, type DiskExclusion, type DiskInputs } from "../../agent/hardware";

/** A systeminformation blockDevices() entry as it comes from `lsblk -bPo ...` on Linux. */
function bd(name: string, fields: Partial<Systeminformation.BlockDevicesData> = {}): Systeminformation.BlockDevicesData {
  return {
    name,
    identifier: "",
    type: "disk",
    fsType: "",
    mount: "",
    size: 480 * GiB,
    physical: "SSD",
    uuid: "",
    label: "",
    model: "",
    serial: "",
    removable: false,
    protocol: "",
    group: "",
    device: `/dev/${name}`,
    ...fields,
  };
}

/** A systeminformation diskLayout() entry (lsblk -ablJO + /sys/block rotational + smartctl). */
function layout(name: string, type: string, fields: Partial<Systeminformation.DiskLayoutData> = {}): Systeminformation.DiskLayoutData {
  return {
    device: `/dev/${name}`,
    type,
    name: "",
    vendor: "",
    size: 480 * GiB,
    bytesPerSector: 512,
    totalCylinders: 0,
    totalHeads: 0,
    totalSectors: 0,
    totalTracks: 0,
    tracksPerCylinder: 0,
    sectorsPerTrack: 0,
    firmwareRevision: "",
    serialNum: "",
    interfaceType: "",
    smartStatus: "unknown",
    temperature: null,
    ...fields,
  };
}

function inputs(i: Partial<DiskInputs>): DiskInputs {
  return { blockDevices: [], diskLayout: [], rotational: {}, overrides: {}, ...i };
}

describe("which block devices are disks", () => {
  test.each<[string, Systeminformation.BlockDevicesData, DiskExclusion | null]>([
    ["a virtio disk", bd("vda", { size: 256 * GiB, physical: "HDD", mount: "/" }), null],
    ["a SATA disk", bd("sda", { model: "Samsung SSD 870", protocol: "sata" }), null],
    ["an NVMe namespace", bd("nvme0n1", { model: "INTEL SSDPE2KX040T8", protocol: "nvme" }), null],
    ["an empty zram (size 0)", bd("zram0", { size: 0 }), "zram"],
    ["a sized zram swap", bd("zram1", { size: 8 * GiB, mount: "[SWAP]" }), "zram"],
    ["a loop device", bd("loop0", { type: "loop", size: 64 * 1024 * 1024, fsType: "squashfs" }), "loop"],
    ["a loop device typed disk", bd("loop3", { size: 1 * GiB }), "loop"],
    ["a RAM disk", bd("ram0", { size: 16 * 1024 * 1024 }), "ram"],
    ["a device-mapper LVM volume", bd("dm-0", { type: "lvm", size: 100 * GiB }), "device_mapper"],
    ["a device-mapper volume typed disk", bd("dm-3", { size: 100 * GiB }), "device_mapper"],
    ["an md RAID array", bd("md0", { type: "raid1", size: 1 * TiB }), "md"],
    ["an md partition", bd("md127p1", { type: "part", size: 1 * TiB }), "md"],
    ["a partition", bd("sda1", { type: "part", size: 100 * GiB, fsType: "ext4", mount: "/boot" }), "not_disk"],
    ["an NVMe partition", bd("nvme0n1p2", { type: "part", size: 100 * GiB }), "not_disk"],
    ["an LVM volume by mapper name", bd("vg0-data", { type: "lvm", size: 100 * GiB }), "not_disk"],
    ["a dm-crypt volume", bd("luks-1234", { type: "crypt", size: 100 * GiB }), "not_disk"],
    ["an optical drive", bd("sr0", { type: "rom", size: 1024, removable: true, physical: "CD/DVD" }), "not_disk"],
    ["a USB stick", bd("sdb", { removable: true, size: 32 * GiB, protocol: "usb" }), "removable"],
    ["a card reader without a card", bd("sdc", { removable: true, size: 0, protocol: "usb" }), "removable"],
    ["a zero-size disk", bd("sdd", { size: 0 }), "zero_size"],
    ["a disk with no size", bd("sde", { size: Number.NaN }), "zero_size"],
  ])("%s", (_name, dev, want) => {
    expect(diskExclusion(dev)).toBe(want);
  });
});

test.each<[string, string | undefined, "ssd" | "hdd" | null]>([
  ["SSD", "SSD", "ssd"],
  ["NVMe", "NVMe", "ssd"],
  ["HD", "HD", "hdd"],
  ["empty", "", null],
  ["missing", undefined, null],
  ["unknown", "Floppy", null],
])("diskLayout type %s => %p", (_name, type, want) => {
  expect(classFromType(type)).toBe(want);
});

describe("class and class source", () => {
  test.each<[string, Partial<DiskInputs>, Pick<Disk, "class" | "classSource">]>([
    ["override ssd beats rotational=1", { overrides: { vda: "ssd" }, rotational: { vda: true } }, { class: "ssd", classSource: "override" }],
    ["override hdd beats rotational=0", { overrides: { vda: "hdd" }, rotational: { vda: false } }, { class: "hdd", classSource: "override" }],
    ["override beats the device type", { overrides: { vda: "hdd" }, diskLayout: [layout("vda", "NVMe")] }, { class: "hdd", classSource: "override" }],
    ["rotational=1 => hdd", { rotational: { vda: true } }, { class: "hdd", classSource: "rotational" }],
    ["rotational=0 => ssd", { rotational: { vda: false } }, { class: "ssd", classSource: "rotational" }],
    ["rotational beats the device type", { rotational: { vda: true }, diskLayout: [layout("vda", "SSD")] }, { class: "hdd", classSource: "rotational" }],
    ["type SSD", { diskLayout: [layout("vda", "SSD")] }, { class: "ssd", classSource: "type" }],
    ["type NVMe", { diskLayout: [layout("vda", "NVMe", { interfaceType: "PCIe" })] }, { class: "ssd", classSource: "type" }],
    ["type HD", { diskLayout: [layout("vda", "HD")] }, { class: "hdd", classSource: "type" }],
    ["nothing known => hdd", {}, { class: "hdd", classSource: "type" }],
    ["an unknown type => hdd", { diskLayout: [layout("vda", "")] }, { class: "hdd", classSource: "type" }],
    ["a layout of another disk does not apply", { diskLayout: [layout("vdb", "SSD")] }, { class: "hdd", classSource: "type" }],
    ["an override of another disk does not apply", { overrides: { vdb: "ssd" }, rotational: { vda: true } }, { class: "hdd", classSource: "rotational" }],
    ["blockDevices' own physical field is not used", { blockDevices: [bd("vda", { size: 256 * GiB, physical: "SSD" })] }, { class: "hdd", classSource: "type" }],
  ])("%s", (_name, i, want) => {
    const disks = classifyDisks(inputs({ blockDevices: [bd("vda", { size: 256 * GiB, physical: "HDD" })], ...i }));
    expect(disks).toHaveLength(1);
    expect(disks[0]).toMatchObject({ name: "vda", device: "/dev/vda", sizeBytes: 256 * GiB, ...want });
  });
});

test("the model comes from blockDevices, else from diskLayout", () => {
  const disks = classifyDisks(
    inputs({
      blockDevices: [bd("sda", { model: "  Samsung SSD 870 EVO 1TB " }), bd("sdb", { model: "" })],
      diskLayout: [layout("sda", "SSD", { name: "other" }), layout("sdb", "HD", { name: "ST4000NM0035-1V4107" })],
    }),
  );
  expect(disks.map((d) => [d.name, d.model])).toEqual([
    ["sda", "Samsung SSD 870 EVO 1TB"],
    ["sdb", "ST4000NM0035-1V4107"],
  ]);
});

test("a device without a device path gets /dev/<name>", () => {
  const dev = bd("sda");
  delete dev.device;
  expect(classifyDisks(inputs({ blockDevices: [dev], diskLayout: [layout("sda", "SSD")] }))[0]).toMatchObject({ device: "/dev/sda", class: "ssd", classSource: "type" });
});

test("a device listed twice counts once", () => {
  expect(classifyDisks(inputs({ blockDevices: [bd("sda"), bd("sda")] }))).toHaveLength(1);
});

// This machine as systeminformation reports it: a 256 GiB virtio disk (rotational=1) and an
// empty zram0.
const VM: DiskInputs = {
  blockDevices: [bd("vda", { size: 274877906944, physical: "HDD", mount: "/" }), bd("zram0", { size: 0, physical: "SSD" })],
  diskLayout: [],
  rotational: { vda: true },
  overrides: {},
};

// A grid server: two NVMe, two HDDs, a USB boot stick, partitions, an md mirror and LVM on top.
const SERVER: DiskInputs = {
  blockDevices: [
    bd("nvme0n1", { size: 1 * TiB, model: "Samsung SSD 980 PRO 1TB", protocol: "nvme" }),
    bd("nvme0n1p1", { type: "part", size: 1 * TiB, fsType: "btrfs" }),
    bd("nvme1n1", { size: 2 * TiB, model: "INTEL SSDPE2KX020T8", protocol: "nvme" }),
    bd("sda", { size: 4 * TiB, model: "ST4000NM0035-1V4107", physical: "HDD", protocol: "sata" }),
    bd("sdb", { size: 8 * TiB, model: "WDC WD80EFZZ-68BTXN0", physical: "HDD", protocol: "sata" }),
    bd("sdb1", { type: "part", size: 8 * TiB }),
    bd("sdc", { size: 16 * GiB, model: "Cruzer Blade", removable: true, protocol: "usb" }),
    bd("md0", { type: "raid1", size: 4 * TiB }),
    bd("dm-0", { type: "lvm", size: 1 * TiB }),
    bd("loop0", { type: "loop", size: 50 * 1024 * 1024 }),
    bd("zram0", { size: 0 }),
    bd("sr0", { type: "rom", size: 1024, removable: true }),
  ],
  diskLayout: [layout("nvme0n1", "NVMe"), layout("nvme1n1", "NVMe"), layout("sda", "HD"), layout("sdb", "HD")],
  rotational: { nvme0n1: false, nvme1n1: false, sda: true },
  overrides: {},
};

describe("SRU and HRU", () => {
  test.each<[string, DiskInputs, string[], { sru: number; hru: number }]>([
    ["this VM: vda is HDD, zram0 is left out", VM, ["vda"], { sru: 0, hru: 274877906944 }],
    ["this VM with vda overridden to SSD", { ...VM, overrides: { vda: "ssd" } }, ["vda"], { sru: 274877906944, hru: 0 }],
    ["a server", SERVER, ["nvme0n1", "nvme1n1", "sda", "sdb"], { sru: 3 * TiB, hru: 12 * TiB }],
    ["a server with one HDD overridden to SSD", { ...SERVER, overrides: { sdb: "ssd" } }, ["nvme0n1", "nvme1n1", "sda", "sdb"], { sru: 11 * TiB, hru: 4 * TiB }],
    ["no disks", inputs({}), [], { sru: 0, hru: 0 }],
    ["only excluded devices", inputs({ blockDevices: [bd("zram0", { size: 0 }), bd("loop0", { type: "loop" })] }), [], { sru: 0, hru: 0 }],
  ])("%s", (_name, i, names, sums) => {
    const disks = classifyDisks(i);
    expect(disks.map((d) => d.name)).toEqual(names);
    expect(storageUnits(disks)).toEqual(sums);
  });

  test("the server's classes and where each came from", () => {
    expect(classifyDisks(SERVER).map((d) => [d.name, d.class, d.classSource])).toEqual([
      ["nvme0n1", "ssd", "rotational"],
      ["nvme1n1", "ssd", "rotational"],
      ["sda", "hdd", "rotational"],
      ["sdb", "hdd", "type"],
    ]);
  });
});

describe("noSsdAdvice", () => {
  const disk = (name: string, cls: "ssd" | "hdd") => ({ name, device: `/dev/${name}`, sizeBytes: 1 << 30, class: cls, classSource: "rotational" as const, model: "" });
  test("no SSD capacity: names the disks and the override that classes them SSD", () => {
    const a = noSsdAdvice({ total: { sru: 0 }, disks: [disk("vda", "hdd"), disk("vdb", "hdd")] });
    expect(a).toEqual({ disks: ["vda", "vdb"], config: '{"hardware":{"diskOverrides":{"vda":"ssd","vdb":"ssd"}}}', hint: expect.stringContaining("--config FILE") });
  });
  test("SSD capacity: nothing to say", () => {
    expect(noSsdAdvice({ total: { sru: 1 << 30 }, disks: [disk("nvme0n1", "ssd")] })).toBeNull();
  });
});
