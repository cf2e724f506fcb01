/** The bench report helpers: percentiles, and the BENCHMARKS.md rendering of verdicts. */
import { markdown, percentile, table, type BenchReport } from "../../scripts/bench/report";

test("percentile is nearest-rank over a sorted copy", () => {
  const xs = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
  expect(percentile(xs, 50)).toBe(5);
  expect(percentile(xs, 99)).toBe(10);
  expect(percentile(xs, 0)).toBe(1);
  expect(xs[0]).toBe(5); // not sorted in place
  expect(percentile([], 50)).toBeNaN();
});

const r: BenchReport = {
  bench: "node-api",
  title: "node API",
  rows: [
    { name: "bare (baseline)", value: 0.25, unit: "ms" },
    { name: "deploy p50", value: 1.5, unit: "ms", baseline: { name: "bare", value: 0.25 }, ratio: 6, target: { text: "p50 <= 2x bare", met: false }, note: "one fsync per decision" },
    { name: "change to wire p99", value: 0.9, unit: "ms", target: { text: "p99 <= 5 ms", met: true } },
  ],
};

test("the markdown says target met or missed per line, lists the missed ones with their evidence, and the load", () => {
  const md = markdown([r], { date: "2026-12-02T07:00:00Z", machine: "2 x CPU", mode: "full", loadBefore: [3, 2, 1], loadAfter: [4, 3, 2], seconds: 500, failures: [{ bench: "gossip", error: "timed out after 90 s" }] }, "intro");
  expect(md).toContain("| deploy p50 (one fsync per decision) | 1.50 ms | bare: 0.25 ms | 6.00x | p50 <= 2x bare: **target missed** |");
  expect(md).toContain("p99 <= 5 ms: **target met**");
  expect(md).toContain("before: 3.00, 2.00, 1.00; after: 4.00, 3.00, 2.00");
  expect(md).toMatch(/## Targets missed in this run\n\n- node-api: deploy p50: 1.50 ms \(p50 <= 2x bare\): one fsync per decision/);
  expect(md).toContain("- gossip: timed out after 90 s");
  expect(table(r)).toContain("[p50 <= 2x bare: target missed]");
});

test("a missed target's evidence (Row.limits) is printed under it, in the table and in the missed list; a met one's is not", () => {
  const withLimits: BenchReport = {
    bench: "gossip",
    title: "gossip",
    rows: [
      { name: "accept path", value: 120, unit: "µs", target: { text: "<= 1.2x raw verify", met: false }, limits: "81% verifyOneShot" },
      { name: "met one", value: 1, unit: "ms", target: { text: "p99 <= 5 ms", met: true }, limits: "not shown" },
    ],
  };
  const md = markdown([withLimits], { date: "d", machine: "m", mode: "full", loadBefore: [0, 0, 0], loadAfter: [0, 0, 0], seconds: 1, failures: [] }, "intro");
  expect(md).toMatch(/- gossip: accept path: 120 µs \(<= 1.2x raw verify\)\n  - what limits it \(measured in this run\): 81% verifyOneShot/);
  expect(md).not.toContain("not shown");
  expect(table(withLimits)).toContain("what limits it: 81% verifyOneShot");
  expect(table(withLimits)).not.toContain("not shown");
});
