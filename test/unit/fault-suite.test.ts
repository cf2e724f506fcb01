/** The fault suite runner's pure parts: what it reads from a test's output and what it writes. */
import { printedFigures, renderDoc, renderTable, SCENARIOS, type ScenarioResult } from "../../scripts/faults/suite";

const result = (name: string, over: Partial<ScenarioResult> = {}): ScenarioResult => ({
  name,
  mode: "quick",
  status: "pass",
  seconds: 12.5,
  date: "2026-12-02T06:30:00.000Z",
  commit: "abc1234",
  tests: { passed: 1, failed: 0, skipped: 0 },
  failures: [],
  figures: {},
  load1m: 3.5,
  ...over,
});

test("figures are read from JSON lines a test printed: by scenario when named, in order otherwise", () => {
  const out = [
    "  console.log",
    '    {"scenario":"crash-storm","mode":"full","figures":{"kills":500,"acknowledgedLost":0}}',
    "      at recordFigures (test/faults/report.ts:15:11)",
    '    {"sent":20000,"peakMiB":104.2}',
    "    {not json}",
  ].join("\n");
  expect(printedFigures(out)).toEqual({ "crash-storm": { kills: 500, acknowledgedLost: 0 }, "printed-1": { sent: 20000, peakMiB: 104.2 } });
});

test("the table and the document say each scenario's mode and result; scenarios not run say so", () => {
  const results = [result("crash-storm", { mode: "full", figures: { "crash-storm": { kills: 500, acknowledgedLost: 0 } } }), result("secrets", { status: "fail", tests: { passed: 1, failed: 1, skipped: 0 }, failures: ["a test: expected 0"] })];
  const table = renderTable(results);
  expect(table).toMatch(/crash-storm\s+full\s+PASS\s+12.5\s+1 passed/);
  expect(table).toMatch(/secrets\s+quick\s+FAIL\s+12.5\s+1 passed, 1 failed/);
  const doc = renderDoc({ machine: { cpu: "2 x test", memoryGiB: 4, os: "Linux", node: "v20", natsServer: "nats-server: v2" }, scenarios: Object.fromEntries(results.map((r) => [r.name, r])) });
  expect(doc).toContain("| crash-storm | full | PASS | 12.5 | 3.5 | 2026-12-02 06:30 | abc1234 |");
  expect(doc).toContain("- Figures (crash-storm): kills=500, acknowledgedLost=0.");
  expect(doc).toContain("- Failure: a test: expected 0");
  expect(doc).toContain("2 x test, 4 GiB RAM");
  // every scenario has a section; those without results say they have not run
  for (const s of SCENARIOS) expect(doc).toContain(`## ${s.name}\n`);
  expect(doc.match(/- Not run yet\./g)).toHaveLength(SCENARIOS.length - 2);
});
