import { capacityOf, DEFAULT_POLICY, reservedFor, freeOf } from "../../agent/capacity/model";
import { parseSize, formatBytes } from "../../agent/capacity/size";
import { GiB, MiB, type Units } from "../../agent/capacity/units";

const u = (p: Partial<Units>): Units => ({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...p });

describe("parseSize", () => {
  // The spellings README "Deployment file" documents, exactly: integer bytes, or a number and one
  // of KiB MiB GiB TiB PiB (1024) / kB MB GB TB PB (1000), case-sensitive, no space.
  test.each([
    [0, 0],
    [1024, 1024],
    ["1024", 1024],
    ["4GiB", 4 * GiB],
    ["500MB", 500_000_000],
    ["500MiB", 500 * MiB],
    ["1.5GiB", 1.5 * GiB],
    ["2TB", 2e12],
    ["1kB", 1000],
    ["1KiB", 1024],
    ["3PiB", 3 * 1024 ** 5],
    ["7PB", 7e15],
  ])("%p is %p bytes", (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, value: bytes });
  });

  test.each([
    [-1], [1.5], ["4 XB"], ["GiB"], [""], [null], [{}], ["1.3B"], ["99999999PiB"], [Number.MAX_SAFE_INTEGER + 2],
    // near misses that used to be accepted (issue 8: "4 gb" was billed as 3.73 GiB)
    ["4 gb"], ["4gb"], ["4gib"], ["4 GiB"], ["4KB"], ["4kb"], ["4Gb"], ["4G"], ["10B"], [" 4GiB"], ["4GiB "], ["4mib"], ["-4GiB"], ["4e9"],
  ])("%p is refused", (input) => {
    const r = parseSize(input);
    expect(r.ok).toBe(false);
  });

  test("a wrong case names the spelling that works", () => {
    const r = parseSize("4gib");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.refusal).toContain('did you mean "4GiB"');
  });

  test.each([
    [0, "0 B"],
    [1024, "1 KiB"],
    [4 * GiB, "4 GiB"],
    [1.5 * GiB, "1.5 GiB"],
  ])("formatBytes(%p) = %p", (n, s) => expect(formatBytes(n)).toBe(s));
});

describe("capacity model", () => {
  test.each([
    // [total mru, expected reserved mru]: max(10%, 2 GiB), never above total
    [64 * GiB, Math.floor(64 * GiB * 0.1)],
    [16 * GiB, 2 * GiB],
    [20 * GiB, 2 * GiB],
    [21 * GiB, Math.floor(21 * GiB * 0.1)],
    [1 * GiB, 1 * GiB],
  ])("memory %p keeps %p for the system", (mru, reserved) => {
    expect(reservedFor(u({ mru }), DEFAULT_POLICY).mru).toBe(reserved);
  });

  test("ssd keeps the 5 GiB zos cache, capped at what exists", () => {
    expect(reservedFor(u({ sru: 100 * GiB }), DEFAULT_POLICY).sru).toBe(5 * GiB);
    expect(reservedFor(u({ sru: 1 * GiB }), DEFAULT_POLICY).sru).toBe(1 * GiB);
  });

  test("allocatable x overprovision = reservable, per unit", () => {
    const total = u({ cru: 8, mru: 32 * GiB, sru: 500 * GiB, hru: 2000 * GiB, ipv4u: 3, gpu: 1 });
    const cap = capacityOf(total, DEFAULT_POLICY);
    expect(cap.allocatable).toEqual(u({ cru: 8, mru: 32 * GiB - Math.floor(32 * GiB * 0.1), sru: 495 * GiB, hru: 2000 * GiB, ipv4u: 3, gpu: 1 }));
    expect(cap.reservable.cru).toBe(16);
    expect(cap.reservable.mru).toBe(cap.allocatable.mru);
    const four = capacityOf(total, { ...DEFAULT_POLICY, overprovision: { ...DEFAULT_POLICY.overprovision, cru: 4 } });
    expect(four.reservable.cru).toBe(32);
  });

  test("free never goes below zero", () => {
    const cap = capacityOf(u({ cru: 2, mru: 4 * GiB }), DEFAULT_POLICY);
    expect(freeOf(cap, u({ cru: 10, mru: 100 * GiB }))).toEqual(u({}));
    expect(freeOf(cap, u({ cru: 1 })).cru).toBe(3);
  });
});
