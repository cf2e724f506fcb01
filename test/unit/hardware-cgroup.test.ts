import { GiB } from "../../agent/capacity/units";
import { HardwareError, cpusFromQuota, effectiveCru, effectiveMru, parseCfsQuota, parseCpuMax, parseMemoryLimitInBytes, parseMemoryMax } from "../../agent/hardware";

// cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages: these are real values of
// memory.limit_in_bytes with 4 KiB and 64 KiB pages.
const V1_UNLIMITED_4K = "9223372036854771712\n";
const V1_UNLIMITED_64K = "9223372036854710272\n";

describe("cgroup v2 cpu.max", () => {
  test.each<[string, number | null]>([
    ["max 100000\n", null],
    ["max", null],
    ["max 50000", null],
    ["200000 100000\n", 2],
    ["100000 100000", 1],
    ["400000 100000", 4],
    ["150000 100000", 2],
    ["250000 100000", 3],
    ["50000 100000", 1],
    ["1000 100000", 1],
    ["100001 100000", 2],
    ["300000 150000", 2],
    ["200000", 2],
  ])("%j => %p CPUs", (text, want) => {
    expect(parseCpuMax(text)).toBe(want);
  });

  test.each(["", "unlimited", "max 0", "-1 100000", "0 100000", "200000 0", "2.5 100000", "1 2 3", "max abc"])("%j is malformed", (text) => {
    expect(() => parseCpuMax(text)).toThrow(HardwareError);
    try {
      parseCpuMax(text);
    } catch (err: unknown) {
      expect(err).toMatchObject({ code: "probe_failed", payload: { step: "cgroup" } });
      expect((err as Error).message).toContain("cpu.max");
    }
  });
});

describe("cgroup v2 memory.max", () => {
  test.each<[string, number | null]>([
    ["max\n", null],
    ["max", null],
    ["4294967296\n", 4 * GiB],
    ["536870912", 512 * 1024 * 1024],
    ["0", 0],
    // larger than any node's memory (2^53): no limit
    ["18446744073709551615", null],
  ])("%j => %p", (text, want) => {
    expect(parseMemoryMax(text)).toBe(want);
  });

  test.each(["", "4G", "1.5", "-5", "-1", "max max"])("%j is malformed", (text) => {
    expect(() => parseMemoryMax(text)).toThrow(/memory\.max: unexpected content/);
  });
});

describe("cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us", () => {
  test.each<[string, string | undefined, number | null]>([
    ["-1\n", "100000\n", null],
    ["-1", undefined, null],
    ["200000\n", "100000\n", 2],
    ["150000", "100000", 2],
    ["50000", "100000", 1],
    ["100000", "50000", 2],
    ["300000", undefined, 3],
  ])("quota %j, period %j => %p", (quota, period, want) => {
    expect(parseCfsQuota(quota, period)).toBe(want);
  });

  test.each<[string, string, RegExp]>([
    ["", "100000", /cpu\.cfs_quota_us/],
    ["0", "100000", /cpu\.cfs_quota_us/],
    ["-2", "100000", /cpu\.cfs_quota_us/],
    ["max", "100000", /cpu\.cfs_quota_us/],
    ["200000", "0", /cpu\.cfs_period_us/],
    ["200000", "", /cpu\.cfs_period_us/],
  ])("quota %j, period %j is malformed", (quota, period, file) => {
    expect(() => parseCfsQuota(quota, period)).toThrow(file);
  });
});

describe("cgroup v1 memory.limit_in_bytes", () => {
  test.each<[string, number | null]>([
    [V1_UNLIMITED_4K, null],
    [V1_UNLIMITED_64K, null],
    ["-1", null],
    ["2147483648\n", 2 * GiB],
    ["9007199254740991", Number.MAX_SAFE_INTEGER],
    ["9007199254740993", null],
  ])("%j => %p", (text, want) => {
    expect(parseMemoryLimitInBytes(text)).toBe(want);
  });

  test.each(["", "max", "2G"])("%j is malformed", (text) => {
    expect(() => parseMemoryLimitInBytes(text)).toThrow(/memory\.limit_in_bytes/);
  });
});

test.each<[number, number, number]>([
  [100_000, 100_000, 1],
  [1, 100_000, 1],
  [199_999, 100_000, 2],
  [1_600_000, 100_000, 16],
])("cpusFromQuota(%p, %p) = %p", (quota, period, want) => {
  expect(cpusFromQuota(quota, period)).toBe(want);
});

describe("CRU: logical CPUs, unless a cgroup limit is set and lower", () => {
  test.each<[string, number, number | null, number, "cpus" | "cgroup"]>([
    ["no limit", 8, null, 8, "cpus"],
    ["a lower limit", 8, 2, 2, "cgroup"],
    ["a limit equal to the CPUs", 8, 8, 8, "cpus"],
    ["a higher limit", 2, 16, 2, "cpus"],
    ["the smallest limit", 64, 1, 1, "cgroup"],
  ])("%s", (_name, logical, limit, cru, source) => {
    expect(effectiveCru(logical, { cpus: limit })).toEqual({ cru, source });
  });
});

describe("MRU: total memory, unless a cgroup limit is set and lower", () => {
  test.each<[string, number, number | null, number, "meminfo" | "cgroup"]>([
    ["no limit", 32 * GiB, null, 32 * GiB, "meminfo"],
    ["a lower limit", 32 * GiB, 4 * GiB, 4 * GiB, "cgroup"],
    ["a limit equal to the memory", 32 * GiB, 32 * GiB, 32 * GiB, "meminfo"],
    ["a higher limit", 8 * GiB, 64 * GiB, 8 * GiB, "meminfo"],
    ["v2 max parsed", 8 * GiB, parseMemoryMax("max"), 8 * GiB, "meminfo"],
    ["v1 huge value parsed", 8 * GiB, parseMemoryLimitInBytes(V1_UNLIMITED_4K), 8 * GiB, "meminfo"],
    ["v1 limit parsed", 8 * GiB, parseMemoryLimitInBytes("1073741824"), 1 * GiB, "cgroup"],
  ])("%s", (_name, total, limit, mru, source) => {
    expect(effectiveMru(total, { memoryBytes: limit })).toEqual({ mru, source });
  });
});
