import { formatAmount } from "../../agent/capacity/size";
import { isoTime, unitsLine } from "../../agent/cli/format";

const GiB = 1024 ** 3;

test.each([
  ["sru", 60 * GiB, "60 GiB"],
  ["mru", 1.5 * GiB, "1.5 GiB"],
  ["hru", 2 * 1024 * GiB, "2 TiB"],
  ["mru", 2 * GiB + 1, `2 GiB (${2 * GiB + 1} bytes)`],
  ["sru", 0, "0 B"],
  ["cru", 4, "4"],
  ["ipv4u", 1, "1"],
  ["gpu", 2, "2"],
])("formatAmount(%s, %d) = %s", (unit, n, text) => {
  expect(formatAmount(unit, n)).toBe(text);
});

test("times as ISO 8601 UTC, '-' when there is none", () => {
  expect(isoTime(1796182753254)).toBe("2026-12-02T03:39:13.254Z");
  expect(isoTime("1796182753254")).toBe("2026-12-02T03:39:13.254Z");
  expect([isoTime(0), isoTime(Number.NaN), isoTime(1e17)]).toEqual(["-", "-", "-"]);
});

test("a capacity line in 1024-based units", () => {
  expect(unitsLine({ cru: 8, mru: 16 * GiB, sru: 64424509440, hru: 0, ipv4u: 1, gpu: 0 })).toBe("cru 8  mru 16 GiB  sru 60 GiB  hru 0 B  ipv4u 1  gpu 0");
});
