/**
 * The hardware module on this machine's real hardware: systeminformation, /sys/block, the
 * cgroup files and a real worker thread for the GPU scan. Expectations are computed here
 * independently, from /proc/meminfo, os.cpus(), the cgroup files and `lsblk`.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pino from "pino";
import type { Systeminformation } from "systeminformation";
import { GiB, MiB, zeroUnits } from "../../agent/capacity/units";
import {
  HardwareError,
  HardwareMonitor,
  SystemHardwareProbe,
  WorkerGpuReader,
  gpusFromControllers,
  hardwareChanged,
  parseHardwareOptions,
  readCgroupLimits,
  type Disk,
  type Gpu,
  type HardwareOptions,
  type HardwareProbe,
  type HardwareReport,
} from "../../agent/hardware";

type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A real pino logger whose JSON lines are kept for assertions. */
function capture(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

const WARN = 40;
const INFO = 30;

async function until(cond: () => boolean | Promise<boolean>, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// --- expectations, read directly from the machine ---------------------------------------------

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
}

/** Whole CPUs allowed by /sys/fs/cgroup (v2 cpu.max, else v1 cfs quota), null when unlimited. */
function cgroupCpus(): number | null {
  const v2 = readText("/sys/fs/cgroup/cpu.max");
  if (v2 !== null) {
    const [q, p] = v2.split(/\s+/);
    return q === "max" ? null : Math.max(1, Math.ceil(Number(q) / Number(p)));
  }
  const q = readText("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  if (q === null || q === "-1") return null;
  return Math.max(1, Math.ceil(Number(q) / Number(readText("/sys/fs/cgroup/cpu/cpu.cfs_period_us") ?? "100000")));
}

/** Bytes allowed by /sys/fs/cgroup (v2 memory.max, else v1 limit_in_bytes), null when unlimited. */
function cgroupMemory(): number | null {
  const v = readText("/sys/fs/cgroup/memory.max") ?? readText("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (v === null || v === "max" || BigInt(v) > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(v);
}

const memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;
const cpuLimit = cgroupCpus();
const memLimit = cgroupMemory();
const expectedCru = Math.min(os.cpus().length, cpuLimit ?? Infinity);
const expectedMru = Math.min(memTotal, memLimit ?? Infinity);

/** Real whole disks per `lsblk -b -d -n -o NAME,SIZE,ROTA,RM,TYPE`, by the module's rules. */
const lsblkDisks = execFileSync("lsblk", ["-b", "-d", "-n", "-o", "NAME,SIZE,ROTA,RM,TYPE"], { encoding: "utf8" })
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => {
    const [name, size, rota, rm, type] = l.trim().split(/\s+/);
    return { name, size: Number(size), rota, rm, type };
  })
  .filter((d) => d.type === "disk" && !/^(zram|loop|ram)\d+$/.test(d.name) && !/^(dm-|md)\d+/.test(d.name) && d.rm === "0" && d.size > 0)
  .sort((a, b) => a.name.localeCompare(b.name));
const lsblkBytes = lsblkDisks.reduce((s, d) => s + d.size, 0);

function options(o: Record<string, unknown> = {}): HardwareOptions {
  return parseHardwareOptions(o);
}

const closers: Array<() => unknown> = [];
afterAll(async () => {
  for (const close of closers) await close();
});

/** A temporary directory, removed after the tests. */
function tmp(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  closers.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function probeWith(o: Record<string, unknown>, modules: Partial<ConstructorParameters<typeof SystemHardwareProbe>[1]> = {}): SystemHardwareProbe {
  const probe = new SystemHardwareProbe(options(o), { logger: pino({ level: "silent" }), ...modules });
  closers.push(() => probe.close());
  return probe;
}

// --- the probe on this machine ----------------------------------------------------------------

describe("SystemHardwareProbe on this machine", () => {
  let report: HardwareReport;
  beforeAll(async () => {
    report = await probeWith({ ipv4u: 3 }).probe();
  });

  test("cru is the logical CPU count (or the lower cgroup cpu limit)", () => {
    expect(report.total.cru).toBe(expectedCru);
    expect(report.sources.cru).toBe(cpuLimit !== null && cpuLimit < os.cpus().length ? "cgroup" : "cpus");
  });

  test("mru is MemTotal from /proc/meminfo x 1024 (or the lower cgroup memory limit)", () => {
    expect(report.total.mru).toBe(expectedMru);
    expect(report.sources.mru).toBe(memLimit !== null && memLimit < memTotal ? "cgroup" : "meminfo");
  });

  test("the disks are lsblk's real whole disks, classed by the rotational flag", () => {
    const disks = [...report.disks].sort((a, b) => a.name.localeCompare(b.name));
    expect(disks.map((d) => ({ name: d.name, device: d.device, sizeBytes: d.sizeBytes, class: d.class, classSource: d.classSource }))).toEqual(
      lsblkDisks.map((d) => ({ name: d.name, device: `/dev/${d.name}`, sizeBytes: d.size, class: d.rota === "1" ? "hdd" : "ssd", classSource: "rotational" })),
    );
    for (const d of report.disks) expect(d.name).not.toMatch(/^(zram|loop|ram)\d/);
  });

  test("sru + hru is the sum of those disks' sizes; each is the sum of its class", () => {
    expect(report.total.sru + report.total.hru).toBe(lsblkBytes);
    expect(report.total.sru).toBe(lsblkDisks.filter((d) => d.rota === "0").reduce((s, d) => s + d.size, 0));
    expect(report.total.hru).toBe(lsblkDisks.filter((d) => d.rota === "1").reduce((s, d) => s + d.size, 0));
  });

  test("ipv4u comes from the options, gpu is the number of GPUs, and gpus is an array", () => {
    expect(report.total.ipv4u).toBe(3);
    expect(Array.isArray(report.gpus)).toBe(true);
    expect(report.total.gpu).toBe(report.gpus.length);
    expect(report.probedAt).toBeLessThanOrEqual(Date.now());
  });

  // The machine this was written on: a 256 GiB virtio disk reporting rotational=1, and an empty
  // zram0. Checked only where they exist.
  test("vda (virtio, rotational=1) is HDD and zram0 is left out", () => {
    const vda = lsblkDisks.find((d) => d.name === "vda");
    if (vda) expect(report.disks.find((d) => d.name === "vda")).toMatchObject({ class: "hdd", classSource: "rotational", sizeBytes: vda.size });
    expect(report.disks.find((d) => d.name === "zram0")).toBeUndefined();
  });

  test("an override {vda: \"ssd\"} (or every HDD here) moves its size from hru to sru", async () => {
    const hdds = lsblkDisks.filter((d) => d.rota === "1");
    const overrides = Object.fromEntries(hdds.map((d) => [d.name, "ssd"]));
    const moved = hdds.reduce((s, d) => s + d.size, 0);
    const after = await probeWith({ diskOverrides: overrides }).probe();
    expect(after.total.sru).toBe(report.total.sru + moved);
    expect(after.total.hru).toBe(report.total.hru - moved);
    for (const d of hdds) expect(after.disks.find((x) => x.name === d.name)).toMatchObject({ class: "ssd", classSource: "override", sizeBytes: d.size });
    if (lsblkDisks.some((d) => d.name === "vda" && d.rota === "1")) expect(overrides).toHaveProperty("vda", "ssd");
  });

  test("an override naming no disk is warned about once", async () => {
    const { logger, lines } = capture();
    const probe = probeWith({ diskOverrides: { nosuchdisk9: "ssd" } }, { logger });
    await probe.probe();
    await probe.probe();
    const warned = lines.filter((l) => l.event === "disk_override_unmatched");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: WARN, module: "hardware", name: "nosuchdisk9", msg: "disk override matches no disk" });
  });

  test("a cgroup limit below the hardware wins (v2 files under cgroupRoot)", async () => {
    const root = tmp("cgroup-v2-");
    fs.writeFileSync(path.join(root, "cpu.max"), "100000 100000\n");
    fs.writeFileSync(path.join(root, "memory.max"), `${1 * GiB}\n`);
    const limited = await probeWith({ cgroupRoot: root }).probe();
    expect(limited.total.cru).toBe(1);
    expect(limited.total.mru).toBe(Math.min(1 * GiB, expectedMru));
    expect(limited.sources).toEqual({ cru: os.cpus().length > 1 ? "cgroup" : "cpus", mru: 1 * GiB < expectedMru ? "cgroup" : "meminfo" });
  });

  test("unreadable cgroup content fails the probe with probe_failed", async () => {
    const root = tmp("cgroup-bad-");
    fs.writeFileSync(path.join(root, "cpu.max"), "lots\n");
    const err = await probeWith({ cgroupRoot: root })
      .probe()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(HardwareError);
    expect(err).toMatchObject({ code: "probe_failed", payload: { step: "cgroup" } });
  });
});

// --- cgroup files -----------------------------------------------------------------------------

describe("readCgroupLimits", () => {
  function tree(files: Record<string, string>): string {
    const root = tmp("cgroup-");
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), text);
    }
    return root;
  }

  test.each<[string, Record<string, string>, { cpus: number | null; memoryBytes: number | null }, [string | null, string | null]]>([
    ["no files: no limits", {}, { cpus: null, memoryBytes: null }, [null, null]],
    ["v2 max", { "cpu.max": "max 100000\n", "memory.max": "max\n" }, { cpus: null, memoryBytes: null }, ["cpu.max", "memory.max"]],
    ["v2 limits", { "cpu.max": "250000 100000\n", "memory.max": "2147483648\n" }, { cpus: 3, memoryBytes: 2 * GiB }, ["cpu.max", "memory.max"]],
    ["v1 unlimited", { "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n", "memory/memory.limit_in_bytes": "9223372036854771712\n" }, { cpus: null, memoryBytes: null }, ["cpu/cpu.cfs_quota_us", "memory/memory.limit_in_bytes"]],
    ["v1 limits", { "cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n", "memory/memory.limit_in_bytes": "1073741824\n" }, { cpus: 2, memoryBytes: 1 * GiB }, ["cpu/cpu.cfs_quota_us", "memory/memory.limit_in_bytes"]],
    ["v1 quota without a period file uses 100 ms", { "cpu/cpu.cfs_quota_us": "50000\n" }, { cpus: 1, memoryBytes: null }, ["cpu/cpu.cfs_quota_us", null]],
    ["v2 wins over v1", { "cpu.max": "100000 100000", "cpu/cpu.cfs_quota_us": "400000", "memory.max": "max", "memory/memory.limit_in_bytes": "1073741824" }, { cpus: 1, memoryBytes: null }, ["cpu.max", "memory.max"]],
    ["hybrid: v2 memory, v1 cpu", { "cpu/cpu.cfs_quota_us": "300000", "memory.max": "536870912" }, { cpus: 3, memoryBytes: 512 * MiB }, ["cpu/cpu.cfs_quota_us", "memory.max"]],
  ])("%s", async (_name, files, want, [cpuFile, memoryFile]) => {
    const root = tree(files);
    expect(await readCgroupLimits(root)).toEqual({ ...want, cpuFile: cpuFile && path.join(root, cpuFile), memoryFile: memoryFile && path.join(root, memoryFile) });
  });

  test("a missing root means no limits", async () => {
    expect(await readCgroupLimits("/nonexistent/cgroup")).toEqual({ cpus: null, memoryBytes: null, cpuFile: null, memoryFile: null });
  });

  test("this machine's /sys/fs/cgroup agrees with the files read directly", async () => {
    const l = await readCgroupLimits("/sys/fs/cgroup");
    expect({ cpus: l.cpus, memoryBytes: l.memoryBytes }).toEqual({ cpus: cpuLimit, memoryBytes: memLimit });
  });
});

// --- GPUs -------------------------------------------------------------------------------------

describe("GPUs", () => {
  function controller(c: Partial<Systeminformation.GraphicsControllerData>): Systeminformation.GraphicsControllerData {
    return { vendor: "", model: "", bus: "", vram: null, vramDynamic: false, ...c };
  }

  const A40 = controller({ vendor: "NVIDIA Corporation", model: "GA102GL [A40]", bus: "Onboard", busAddress: "41:00.0", pciBus: "00000000:41:00.0", vram: 46068, memoryTotal: 46068, name: "NVIDIA A40" });
  const MI50 = controller({ vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", model: "Vega 20 [Radeon Pro VII/Radeon Instinct MI50 32GB]", busAddress: "c3:00.0", vram: 32768 });
  const ASPEED = controller({ vendor: "ASPEED Technology, Inc.", model: "ASPEED Graphics Family", busAddress: "03:00.0", vram: 64 });

  test.each<[string, Systeminformation.GraphicsControllerData[], Gpu[]]>([
    ["an NVIDIA GPU (nvidia-smi merged: pciBus, memory.total)", [A40], [{ vendor: "NVIDIA Corporation", model: "GA102GL [A40]", memoryBytes: 46068 * MiB, id: "00000000:41:00.0" }]],
    ["an AMD GPU (lspci only: busAddress)", [MI50], [{ vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", model: MI50.model, memoryBytes: 32 * GiB, id: "c3:00.0" }]],
    ["memory unknown => 0; no bus => gpu<index>", [controller({ vendor: "NVIDIA Corporation", model: "TU104GL [Tesla T4]" })], [{ vendor: "NVIDIA Corporation", model: "TU104GL [Tesla T4]", memoryBytes: 0, id: "gpu0" }]],
    ["model from name when model is empty", [controller({ vendor: "NVIDIA Corporation", name: "NVIDIA L4", pciBus: "00000000:01:00.0", memoryTotal: 23034 })], [{ vendor: "NVIDIA Corporation", model: "NVIDIA L4", memoryBytes: 23034 * MiB, id: "00000000:01:00.0" }]],
    ["no vendor and no model: ignored", [controller({ bus: "PCI", busAddress: "00:02.0" })], []],
    ["the BMC's ASPEED VGA next to a GPU", [ASPEED, A40], [{ vendor: "NVIDIA Corporation", model: "GA102GL [A40]", memoryBytes: 46068 * MiB, id: "00000000:41:00.0" }]],
    ["Matrox G200 server VGA", [controller({ vendor: "Matrox Electronics Systems Ltd.", model: "Integrated Matrox G200eW3 Graphics Controller", busAddress: "03:00.0" })], []],
    ["QEMU stdvga", [controller({ vendor: "Device 1234", model: "QEMU Standard VGA", busAddress: "00:02.0", vram: 16 })], []],
    ["Bochs", [controller({ vendor: "Bochs", model: "bochs-drmfb" })], []],
    ["Cirrus", [controller({ vendor: "Cirrus Logic", model: "GD 5446", busAddress: "00:02.0" })], []],
    ["VMware SVGA", [controller({ vendor: "VMware", model: "SVGA II Adapter", busAddress: "00:0f.0", vram: 8 })], []],
    ["virtio-gpu", [controller({ vendor: "Red Hat, Inc.", model: "Virtio 1.0 GPU", busAddress: "00:01.0" })], []],
    ["Hyper-V", [controller({ vendor: "Microsoft Corporation", model: "Hyper-V virtual VGA" })], []],
    ["Microsoft Basic Display Adapter", [controller({ vendor: "(Standard display types)", model: "Microsoft Basic Display Adapter" })], []],
    ["VirtualBox", [controller({ vendor: "InnoTek Systemberatung GmbH", model: "VirtualBox Graphics Adapter" })], []],
    [
      "indexes count kept GPUs only",
      [ASPEED, controller({ vendor: "NVIDIA Corporation", model: "GA100 [A100 PCIe 40GB]" }), controller({ vendor: "NVIDIA Corporation", model: "GA100 [A100 PCIe 40GB]" })],
      [
        { vendor: "NVIDIA Corporation", model: "GA100 [A100 PCIe 40GB]", memoryBytes: 0, id: "gpu0" },
        { vendor: "NVIDIA Corporation", model: "GA100 [A100 PCIe 40GB]", memoryBytes: 0, id: "gpu1" },
      ],
    ],
  ])("%s", (_name, controllers, want) => {
    expect(gpusFromControllers(controllers)).toEqual(want);
  });

  test("the real scan (a worker thread running systeminformation) resolves with an array", async () => {
    const { logger, lines } = capture();
    const report = await probeWith({}, { logger }).probe();
    expect(Array.isArray(report.gpus)).toBe(true);
    expect(report.total.gpu).toBe(report.gpus.length);
    expect(lines.filter((l) => l.event === "gpu_probe_failed")).toEqual([]);
  });

  test("with gpuTimeoutMs 1 the real probe still resolves (timed out or not)", async () => {
    const report = await probeWith({ gpuTimeoutMs: 1, gpuCacheMs: 0 }).probe();
    expect(Array.isArray(report.gpus)).toBe(true);
    expect(report.total.cru).toBe(expectedCru);
  });

  // A worker blocked synchronously, as graphics() is while nvidia-smi hangs, never answers:
  // the timeout path is taken whatever the machine's speed.
  const HANG = { source: "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);" };

  test("timeout path: gpuTimeoutMs 1 and a scan that never answers => the probe resolves with no GPUs and a warning", async () => {
    const { logger, lines } = capture();
    const o = options({ gpuTimeoutMs: 1 });
    const gpus = new WorkerGpuReader({ timeoutMs: o.gpuTimeoutMs, cacheMs: o.gpuCacheMs }, { logger: logger.child({ module: "hardware" }), worker: HANG });
    const probe = probeWith({ gpuTimeoutMs: 1 }, { logger, gpus });
    const report = await probe.probe();
    expect(report.gpus).toEqual([]);
    expect(report.total.gpu).toBe(0);
    expect(report.total.cru).toBe(expectedCru);
    expect(lines.filter((l) => l.event === "gpu_probe_timeout")).toEqual([expect.objectContaining({ level: WARN, module: "hardware", timeoutMs: 1, gpus: 0, cached: false, msg: "GPU scan timed out" })]);
  });

  describe("a scan stuck in a child process (gate file controls when it returns)", () => {
    // not tmp(): removed only once no worker waits on it (see afterAll)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gpu-gate-"));
    const gate = path.join(dir, "open");
    // like graphics() waiting on nvidia-smi: blocked in execFileSync until the test opens the gate
    const STUCK = `
      const { parentPort, workerData } = require("node:worker_threads");
      require("node:child_process").execFileSync("sh", ["-c", 'while [ ! -e "$1" ]; do sleep 0.02; done', "sh", workerData.gate]);
      parentPort.postMessage({ ok: true, controllers: workerData.controllers });
    `;
    const controllers = [
      { vendor: "ASPEED Technology, Inc.", model: "ASPEED Graphics Family", bus: "", vram: 64, vramDynamic: false },
      { vendor: "NVIDIA Corporation", model: "GA102GL [A40]", bus: "", pciBus: "00000000:41:00.0", vram: 46068, vramDynamic: false },
    ];
    const A40_GPU: Gpu = { vendor: "NVIDIA Corporation", model: "GA102GL [A40]", memoryBytes: 46068 * MiB, id: "00000000:41:00.0" };
    const readers: WorkerGpuReader[] = [];
    function reader(timeoutMs: number, cacheMs: number, logger: pino.Logger): WorkerGpuReader {
      const r = new WorkerGpuReader({ timeoutMs, cacheMs }, { logger, worker: { source: STUCK, workerData: { gate, controllers } } });
      readers.push(r);
      return r;
    }
    /** True while some process (a stuck worker's sh) still waits on the gate. */
    function waiting(): boolean {
      return fs.readdirSync("/proc").some((pid) => /^\d+$/.test(pid) && (readText(`/proc/${pid}/cmdline`) ?? "").includes(gate));
    }
    afterAll(async () => {
      // release any thread still blocked, or the test process would wait for it at exit
      fs.writeFileSync(gate, "");
      for (const r of readers) r.close();
      await until(() => !waiting(), "stuck GPU workers to be released");
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test("times out, starts no second scan while the first is stuck, recovers, then falls back to the last good result", async () => {
      const { logger, lines } = capture();
      const r = reader(2000, 0, logger);
      expect(await r.read()).toEqual([]);
      expect(lines.map((l) => l.event)).toEqual(["gpu_probe_timeout"]);
      expect(lines[0]).toMatchObject({ level: WARN, cached: false, gpus: 0 });
      expect(await r.read()).toEqual([]);
      expect(lines.map((l) => l.event)).toEqual(["gpu_probe_timeout", "gpu_probe_skipped"]);
      expect(lines[1]).toMatchObject({ level: WARN, reason: "previous_scan_stuck" });

      fs.writeFileSync(gate, "");
      let gpus: Gpu[] = [];
      await until(async () => (gpus = await r.read()).length > 0, "the scan to recover once the stuck worker exited");
      expect(gpus).toEqual([A40_GPU]);

      fs.rmSync(gate);
      lines.length = 0;
      expect(await r.read()).toEqual([A40_GPU]);
      expect(lines).toEqual([expect.objectContaining({ event: "gpu_probe_timeout", cached: true, gpus: 1 })]);
    });

    test("a good result is reused for cacheMs without a new scan", async () => {
      const { logger, lines } = capture();
      fs.writeFileSync(gate, "");
      const r = reader(10_000, 60_000, logger);
      expect(await r.read()).toEqual([A40_GPU]);
      fs.rmSync(gate);
      expect(await r.read()).toEqual([A40_GPU]);
      expect(lines).toEqual([]);
    });

    test("concurrent reads share one scan", async () => {
      const { logger } = capture();
      fs.writeFileSync(gate, "");
      const r = reader(10_000, 0, logger);
      const [a, b] = await Promise.all([r.read(), r.read()]);
      expect(a).toBe(b);
      expect(a).toEqual([A40_GPU]);
    });
  });
});

// --- the monitor ------------------------------------------------------------------------------

function report(over: Partial<HardwareReport> = {}): HardwareReport {
  const vda: Disk = { name: "vda", device: "/dev/vda", sizeBytes: 256 * GiB, class: "hdd", classSource: "rotational", model: "" };
  return { total: { ...zeroUnits(), cru: 2, mru: 16 * GiB, hru: 256 * GiB }, disks: [vda], gpus: [], sources: { cru: "cpus", mru: "meminfo" }, probedAt: 1, ...over };
}

test.each<[string, boolean, HardwareReport]>([
  ["the same report probed later", false, report({ probedAt: 2 })],
  ["disks in another order", false, report({ disks: [...report().disks].reverse() })],
  ["a disk's model text", false, report({ disks: [{ ...report().disks[0], model: "QEMU HARDDISK" }] })],
  ["more memory", true, report({ total: { ...report().total, mru: 32 * GiB } })],
  ["ipv4u", true, report({ total: { ...report().total, ipv4u: 1 } })],
  ["a disk renamed, same size", true, report({ disks: [{ ...report().disks[0], name: "vdb", device: "/dev/vdb" }] })],
  ["a disk reclassed", true, report({ disks: [{ ...report().disks[0], class: "ssd", classSource: "override" }] })],
  ["a GPU added", true, report({ gpus: [{ vendor: "NVIDIA Corporation", model: "A40", memoryBytes: 48 * GiB, id: "41:00.0" }] })],
])("hardwareChanged: %s => %p", (_name, want, after) => {
  expect(hardwareChanged(report(), after)).toBe(want);
});

/** A probe that answers from a script: the monitor's input, not what the monitor test checks. */
class ScriptedProbe implements HardwareProbe {
  calls = 0;
  constructor(private readonly script: Array<HardwareReport | Error>) {}
  async probe(): Promise<HardwareReport> {
    const next = this.script[Math.min(this.calls, this.script.length - 1)];
    this.calls++;
    if (next instanceof Error) throw next;
    return next;
  }
}

describe("HardwareMonitor", () => {
  test("with the real probe: start() gives this machine's report; a re-probe finds no change", async () => {
    const { logger, lines } = capture();
    const probe = probeWith({}, { logger });
    const monitor = new HardwareMonitor(options({ reprobeIntervalMs: 0 }), { probe, logger });
    closers.push(() => monitor.close());
    const changes: HardwareReport[] = [];
    monitor.onChange((r) => changes.push(r));
    const first = await monitor.start();
    expect(first.total.cru).toBe(expectedCru);
    expect(first.total.mru).toBe(expectedMru);
    expect(monitor.current()).toBe(first);
    expect(lines.find((l) => l.event === "hardware_probed")).toMatchObject({ level: INFO, module: "hardware", msg: "hardware probed", total: first.total });
    const second = await monitor.reprobe();
    expect(second.probedAt).toBeGreaterThanOrEqual(first.probedAt);
    expect(monitor.current()).toBe(second);
    expect(changes).toEqual([]);
    expect(lines.filter((l) => l.event === "hardware_changed")).toEqual([]);
  });

  test("current() before start() is a not_started error", () => {
    const monitor = new HardwareMonitor(options(), { probe: new ScriptedProbe([report()]), logger: pino({ level: "silent" }) });
    expect(() => monitor.current()).toThrow(HardwareError);
    expect(() => monitor.current()).toThrow(expect.objectContaining({ code: "not_started" }));
  });

  test("a change is logged as hardware_changed and reaches the listeners; no change, nothing", async () => {
    const { logger, lines } = capture();
    const bigger = report({ total: { ...report().total, mru: 32 * GiB }, probedAt: 3 });
    const probe = new ScriptedProbe([report(), report({ probedAt: 2 }), bigger, bigger]);
    const monitor = new HardwareMonitor(options({ reprobeIntervalMs: 0 }), { probe, logger });
    const seen: HardwareReport[] = [];
    const unsubscribe = monitor.onChange((r) => seen.push(r));
    await monitor.start();
    await monitor.reprobe();
    expect(seen).toEqual([]);
    await monitor.reprobe();
    expect(seen).toEqual([bigger]);
    expect(monitor.current()).toBe(bigger);
    const changed = lines.filter((l) => l.event === "hardware_changed");
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({
      level: INFO,
      module: "hardware",
      msg: "hardware changed",
      before: { total: report().total, disks: [{ name: "vda", class: "hdd", sizeBytes: 256 * GiB }], gpus: [] },
      after: { total: bigger.total },
    });
    await monitor.reprobe();
    expect(seen).toHaveLength(1);
    unsubscribe();
    await monitor.close();
  });

  test("a failed re-probe logs hardware_probe_failed and keeps the last report", async () => {
    const { logger, lines } = capture();
    const failure = new HardwareError("probe_failed", "hardware probe failed reading memory: boom", { step: "memory" });
    const probe = new ScriptedProbe([report(), failure]);
    const monitor = new HardwareMonitor(options({ reprobeIntervalMs: 0 }), { probe, logger });
    const seen: HardwareReport[] = [];
    monitor.onChange((r) => seen.push(r));
    const first = await monitor.start();
    expect(await monitor.reprobe()).toBe(first);
    expect(monitor.current()).toBe(first);
    expect(seen).toEqual([]);
    expect(lines.find((l) => l.event === "hardware_probe_failed")).toMatchObject({ level: WARN, module: "hardware", code: "probe_failed", msg: "hardware probe failed" });
  });

  test("a failed first probe rejects start(); start() can be called again", async () => {
    const failure = new HardwareError("probe_failed", "no", { step: "cpu" });
    const probe = new ScriptedProbe([failure, report()]);
    const monitor = new HardwareMonitor(options({ reprobeIntervalMs: 0 }), { probe, logger: pino({ level: "silent" }) });
    await expect(monitor.start()).rejects.toBe(failure);
    await expect(monitor.start()).resolves.toEqual(report());
  });

  test("re-probes on its timer until closed, and notifies a change it finds", async () => {
    const changed = report({ gpus: [{ vendor: "NVIDIA Corporation", model: "A40", memoryBytes: 48 * GiB, id: "41:00.0" }], total: { ...report().total, gpu: 1 } });
    const probe = new ScriptedProbe([report(), report(), changed]);
    const monitor = new HardwareMonitor(options({ reprobeIntervalMs: 10 }), { probe, logger: pino({ level: "silent" }) });
    const seen: HardwareReport[] = [];
    monitor.onChange((r) => seen.push(r));
    await monitor.start();
    await until(() => seen.length === 1 && probe.calls >= 4, "timer re-probes and the change");
    expect(seen[0].total.gpu).toBe(1);
    await monitor.close();
    // after close no timer is armed
    expect((monitor as unknown as { timer: unknown }).timer).toBeNull();
  });

  test("an aborted signal closes the monitor", async () => {
    const ac = new AbortController();
    const monitor = new HardwareMonitor(options({ reprobeIntervalMs: 10 }), { probe: new ScriptedProbe([report()]), logger: pino({ level: "silent" }), signal: ac.signal });
    await monitor.start();
    expect((monitor as unknown as { timer: unknown }).timer).not.toBeNull();
    ac.abort();
    expect((monitor as unknown as { timer: unknown }).timer).toBeNull();
  });
});
