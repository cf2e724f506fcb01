import { HARDWARE_DEFAULTS, HardwareError, parseHardwareOptions, type HardwareOptions } from "../../agent/hardware";

test("no options give the documented defaults", () => {
  const expected: HardwareOptions = { ipv4u: 0, diskOverrides: {}, gpuTimeoutMs: 5000, gpuCacheMs: 300_000, cgroupRoot: "/sys/fs/cgroup", reprobeIntervalMs: 60_000 };
  expect(parseHardwareOptions(undefined)).toEqual(expected);
  expect(parseHardwareOptions(null)).toEqual(expected);
  expect(parseHardwareOptions({})).toEqual(expected);
  expect(HARDWARE_DEFAULTS).toEqual(expected);
});

test("the parsed overrides are a fresh object (the defaults are never shared or mutated)", () => {
  const a = parseHardwareOptions({});
  a.diskOverrides.vda = "ssd";
  expect(parseHardwareOptions({}).diskOverrides).toEqual({});
  expect(HARDWARE_DEFAULTS.diskOverrides).toEqual({});
});

test.each<[string, unknown, Partial<HardwareOptions>]>([
  ["ipv4u", { ipv4u: 4 }, { ipv4u: 4 }],
  ["ipv4u at its maximum", { ipv4u: 65_535 }, { ipv4u: 65_535 }],
  ["one SSD override", { diskOverrides: { vda: "ssd" } }, { diskOverrides: { vda: "ssd" } }],
  ["several overrides", { diskOverrides: { sda: "hdd", nvme0n1: "ssd", "sdb.1": "hdd" } }, { diskOverrides: { sda: "hdd", nvme0n1: "ssd", "sdb.1": "hdd" } }],
  ["gpuTimeoutMs", { gpuTimeoutMs: 1 }, { gpuTimeoutMs: 1 }],
  ["gpuCacheMs 0 (scan on every probe)", { gpuCacheMs: 0 }, { gpuCacheMs: 0 }],
  ["cgroupRoot", { cgroupRoot: "/mnt/cgroup" }, { cgroupRoot: "/mnt/cgroup" }],
  ["cgroupRoot with a trailing slash", { cgroupRoot: "/sys/fs/cgroup/" }, { cgroupRoot: "/sys/fs/cgroup" }],
  ["cgroupRoot /", { cgroupRoot: "/" }, { cgroupRoot: "/" }],
  ["reprobeIntervalMs 0 (disabled)", { reprobeIntervalMs: 0 }, { reprobeIntervalMs: 0 }],
  ["reprobeIntervalMs", { reprobeIntervalMs: 5000 }, { reprobeIntervalMs: 5000 }],
])("accepts %s", (_name, raw, want) => {
  expect(parseHardwareOptions(raw)).toEqual({ ...HARDWARE_DEFAULTS, diskOverrides: {}, ...want });
});

test.each<[string, unknown, string, string]>([
  ["not an object", "vda=ssd", "hardware", 'hardware: expected an object, got "vda=ssd"'],
  ["an array", [], "hardware", "hardware: expected an object"],
  ["an unknown option", { ipv4: 1 }, "hardware.ipv4", "hardware.ipv4: unknown option"],
  ["ipv4u negative", { ipv4u: -1 }, "hardware.ipv4u", "hardware.ipv4u: expected an integer from 0 to 65535, got -1"],
  ["ipv4u fractional", { ipv4u: 1.5 }, "hardware.ipv4u", "hardware.ipv4u: expected an integer"],
  ["ipv4u as a string", { ipv4u: "2" }, "hardware.ipv4u", 'hardware.ipv4u: expected an integer from 0 to 65535, got "2"'],
  ["ipv4u too large", { ipv4u: 70_000 }, "hardware.ipv4u", "hardware.ipv4u: expected an integer"],
  ["gpuTimeoutMs 0", { gpuTimeoutMs: 0 }, "hardware.gpuTimeoutMs", "hardware.gpuTimeoutMs: expected an integer from 1 to 600000, got 0"],
  ["gpuTimeoutMs NaN", { gpuTimeoutMs: Number.NaN }, "hardware.gpuTimeoutMs", "hardware.gpuTimeoutMs: expected an integer"],
  ["gpuCacheMs negative", { gpuCacheMs: -5 }, "hardware.gpuCacheMs", "hardware.gpuCacheMs: expected an integer from 0 to 86400000, got -5"],
  ["reprobeIntervalMs null", { reprobeIntervalMs: null }, "hardware.reprobeIntervalMs", "hardware.reprobeIntervalMs: expected an integer from 0 to 86400000, got null"],
  ["reprobeIntervalMs too large", { reprobeIntervalMs: 86_400_001 }, "hardware.reprobeIntervalMs", "hardware.reprobeIntervalMs: expected an integer"],
  ["cgroupRoot relative", { cgroupRoot: "sys/fs/cgroup" }, "hardware.cgroupRoot", 'hardware.cgroupRoot: expected an absolute path, got "sys/fs/cgroup"'],
  ["cgroupRoot not a string", { cgroupRoot: 1 }, "hardware.cgroupRoot", "hardware.cgroupRoot: expected an absolute path, got 1"],
  ["diskOverrides an array", { diskOverrides: ["vda"] }, "hardware.diskOverrides", 'hardware.diskOverrides: expected an object like {"vda": "ssd"}'],
  ["diskOverrides a string", { diskOverrides: "vda:ssd" }, "hardware.diskOverrides", "hardware.diskOverrides: expected an object"],
  ["an override class that is not ssd/hdd", { diskOverrides: { vda: "nvme" } }, "hardware.diskOverrides.vda", 'hardware.diskOverrides.vda: expected "ssd" or "hdd", got "nvme"'],
  ["an upper-case class", { diskOverrides: { sda: "SSD" } }, "hardware.diskOverrides.sda", 'hardware.diskOverrides.sda: expected "ssd" or "hdd", got "SSD"'],
  ["an override class that is not a string", { diskOverrides: { vda: true } }, "hardware.diskOverrides.vda", 'hardware.diskOverrides.vda: expected "ssd" or "hdd", got true'],
  ["the bad override among good ones", { diskOverrides: { sda: "ssd", sdb: "fast" } }, "hardware.diskOverrides.sdb", 'hardware.diskOverrides.sdb: expected "ssd" or "hdd", got "fast"'],
  ["an override named by /dev path", { diskOverrides: { "/dev/vda": "ssd" } }, "hardware.diskOverrides./dev/vda", 'hardware.diskOverrides./dev/vda: expected a kernel device name like "vda"'],
  ["an empty override name", { diskOverrides: { "": "ssd" } }, "hardware.diskOverrides.", "hardware.diskOverrides.: expected a kernel device name"],
])("rejects %s, naming the field", (_name, raw, field, message) => {
  let caught: unknown;
  try {
    parseHardwareOptions(raw);
  } catch (err: unknown) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(HardwareError);
  const err = caught as HardwareError<"invalid_option">;
  expect(err.code).toBe("invalid_option");
  expect(err.payload).toEqual({ field });
  expect(err.field).toBe(field);
  expect(err.message.startsWith(message)).toBe(true);
});

test("the path prefix is the caller's", () => {
  expect(() => parseHardwareOptions({ diskOverrides: { vda: "x" } }, "nodes[2].hardware")).toThrow('nodes[2].hardware.diskOverrides.vda: expected "ssd" or "hdd"');
});
