/** The power policy (farmerbot's rules), its options and the agreement state machine, as tables. */
import { zeroUnits, type Units } from "../../agent/capacity/units";
import { PowerAgreement } from "../../agent/power/agreement";
import { parsePowerOptions } from "../../agent/power/options";
import { decide, lastPeriodicMs, periodicOffsetMs, randomWake, standbyAllowed, usageShare, type FarmNode } from "../../agent/power/policy";

const o = parsePowerOptions({});
const MIN = 60_000;
const NOW = 10 * 24 * 3600_000;
const u = (p: Partial<Units>): Units => ({ ...zeroUnits(), ...p });
const node = (nodeId: number, over: Partial<FarmNode> = {}): FarmNode => ({
  nodeId, state: "up", sinceMs: NOW - 60 * MIN, total: u({ cru: 10, mru: 100 }), used: zeroUnits(), deployments: 0, publicConfig: false, lastClaimMs: 0, ...over,
});
const busy = (nodeId: number, cru: number, over: Partial<FarmNode> = {}) => node(nodeId, { used: u({ cru }), deployments: 1, ...over });
// a standby node that went down after its last periodic wake-up and draws no random one now
const asleep = (nodeId: number, over: Partial<FarmNode> = {}) => node(nodeId, { state: "standby", sinceMs: lastPeriodicMs(nodeId, NOW, o) + 1, ...over });

describe("decide: farmerbot's rules", () => {
  const cases: Array<[string, FarmNode[], string[]]> = [
    ["usage above 80% of any unit wakes one node, the lowest id", [busy(1, 9), asleep(3), asleep(2)], ["wake 2 usage_high"]],
    ["memory alone above 80% wakes too", [node(1, { used: u({ mru: 81 }), deployments: 1 }), asleep(2)], ["wake 2 usage_high"]],
    ["exactly 80% is not above", [busy(1, 8), asleep(2)], []],
    ["usage is over online nodes: a waking node's capacity counts, and nobody else wakes meanwhile", [busy(1, 9), node(2, { state: "waking" }), asleep(3)], []],
    ["no up node at all: wake one", [asleep(1), asleep(2)], ["wake 1 usage_high"]],
    ["idle farm: unused nodes go to standby, highest id first, never the last up node", [node(1), node(2), node(3)], ["standby 3 idle", "standby 2 idle"]],
    ["never a node with workloads", [node(1), busy(2, 1)], ["standby 1 idle"]],
    ["never a node with a public config", [node(1, { publicConfig: true }), node(2)], ["standby 2 idle"]],
    ["never a node with capacity claimed in the last 30 minutes", [node(1), node(2, { lastClaimMs: NOW - 29 * MIN })], ["standby 1 idle"]],
    ["a claim 30 minutes ago no longer blocks", [node(1), node(2, { lastClaimMs: NOW - 30 * MIN })], ["standby 2 idle"]],
    ["never a node that changed state less than 30 minutes ago", [node(1, { sinceMs: NOW - 29 * MIN }), node(2, { sinceMs: NOW - 10 * MIN })], []],
    ["never the last online node (the other one sleeps)", [node(1), asleep(2)], []],
    ["not when usage without the node would reach the threshold", [busy(1, 8), node(2)], []],
    ["yes when usage without the node stays below", [busy(1, 7), node(2, { total: u({ cru: 2, mru: 10 }) })], ["standby 2 idle"]],
    ["not while usage is high (wake instead)", [busy(1, 9), busy(2, 9), asleep(3)], ["wake 3 usage_high"]],
    ["not while a node is waking", [busy(1, 1), node(2), node(3, { state: "waking" })], []],
    ["the daily wake-up: a node asleep since before its periodic instant wakes", [node(1), asleep(2, { sinceMs: lastPeriodicMs(2, NOW, o) - 1 })], ["wake 2 periodic"]],
  ];
  test.each(cases)("%s", (_n, nodes, want) => {
    expect(decide(nodes, NOW, o).map((d) => `${d.action} ${d.nodeId} ${d.reason}`)).toEqual(want);
  });

  test("standbyAllowed is the same rule for one node", () => {
    expect(standbyAllowed([node(1), node(2)], 2, NOW, o)).toBe(true);
    expect(standbyAllowed([node(1), asleep(2)], 1, NOW, o)).toBe(false);
    expect(standbyAllowed([busy(1, 8), node(2)], 2, NOW, o)).toBe(false);
    expect(standbyAllowed([node(1)], 5, NOW, o)).toBe(false);
  });

  test("usageShare: the tightest unit; used on a zero total is infinite", () => {
    expect(usageShare([node(1, { used: u({ cru: 5, mru: 90 }) })])).toBeCloseTo(0.9);
    expect(usageShare([node(1, { total: zeroUnits(), used: u({ sru: 1 }) })])).toBe(Infinity);
    expect(usageShare([])).toBe(0);
  });
});

describe("wake-ups spread over time", () => {
  test("daily offsets spread nodes over the day (not all at once)", () => {
    const offsets = Array.from({ length: 1000 }, (_x, i) => periodicOffsetMs(i + 1, o));
    const hours = new Set(offsets.map((x) => Math.floor(x / 3600_000)));
    expect(hours.size).toBe(24);
    expect(lastPeriodicMs(7, NOW, o)).toBeLessThanOrEqual(NOW);
    expect(NOW - lastPeriodicMs(7, NOW, o)).toBeLessThan(o.periodicWakeMs);
  });

  test("random wake-ups: about randomWakesPerMonth per node per 30 days", () => {
    let n = 0;
    const slots = (30 * 24 * 3600_000) / o.checkMs;
    for (let id = 1; id <= 200; id++) for (let s = 0; s < slots; s++) if (randomWake(id, s * o.checkMs, o)) n++;
    expect(n / 200).toBeGreaterThan(7);
    expect(n / 200).toBeLessThan(13);
  });
});

describe("parsePowerOptions names the bad field", () => {
  const cases: Array<[string, Record<string, unknown>, string | null]> = [
    ["defaults", {}, null],
    ["seconds for tests", { minStateMs: 5000, claimQuietMs: 5000, checkMs: 2000, windowMs: 1000 }, null],
    ["threshold above 1", { wakeThreshold: 1.5 }, "power.wakeThreshold"],
    ["standby threshold above wake threshold", { standbyThreshold: 0.9 }, "power.standbyThreshold"],
    ["window not below the check interval", { windowMs: 300_000 }, "power.windowMs"],
    ["minimum state time not above twice the window", { minStateMs: 120_000 }, "power.minStateMs"],
    ["fractional ms", { checkMs: 1.5 }, "power.checkMs"],
    ["negative random wakes", { randomWakesPerMonth: -1 }, "power.randomWakesPerMonth"],
  ];
  test.each(cases)("%s", (_n, raw, field) => {
    const run = () => parsePowerOptions(raw as never);
    if (field === null) expect(run()).toMatchObject({ wakeThreshold: 0.8 });
    else expect(run).toThrow(expect.objectContaining({ code: "invalid_options", field }));
  });
});

describe("PowerAgreement: who acts", () => {
  const farm = () => [node(1), node(2), node(3)];
  test("a node announces its intent, and goes after the window when nothing came", () => {
    const a = new PowerAgreement(3, o);
    expect(a.check(farm(), NOW)).toEqual([{ kind: "intent" }]);
    expect(a.check(farm(), NOW + 1000)).toEqual([]);
    expect(a.check(farm(), NOW + o.windowMs)).toEqual([{ kind: "standby" }]);
  });
  test("an objection stops it", () => {
    const a = new PowerAgreement(3, o);
    a.check(farm(), NOW);
    a.onObjection(3);
    expect(a.check(farm(), NOW + o.windowMs)[0]).toEqual({ kind: "abort", why: "objection" });
  });
  test("concurrent intents: the lower id goes, the higher yields", () => {
    const a2 = new PowerAgreement(2, o);
    const a3 = new PowerAgreement(3, o);
    a2.check(farm(), NOW);
    a3.check(farm(), NOW);
    expect(a2.onIntent(3, farm(), NOW + 10)).toEqual([]);
    a3.onIntent(2, farm(), NOW + 10);
    expect(a2.check(farm(), NOW + o.windowMs)).toEqual([{ kind: "standby" }]);
    expect(a3.check(farm(), NOW + o.windowMs)[0]).toEqual({ kind: "abort", why: "lower_intent" });
  });
  test("a peer objects to an intent that would leave the farm without an up node", () => {
    const a1 = new PowerAgreement(1, o);
    expect(a1.onIntent(2, [node(1, { sinceMs: NOW }), node(2)], NOW)).toEqual([]);
    expect(a1.onIntent(2, [node(1), node(2), asleep(3)], NOW).length).toBe(0);
    const b = new PowerAgreement(1, o);
    expect(b.onIntent(2, [busy(1, 8), node(2)], NOW)).toEqual([{ kind: "object", nodeId: 2 }]);
  });
  test("no intent while a peer's intent is outstanding; the peer counts as standby meanwhile", () => {
    const a = new PowerAgreement(3, o);
    a.onIntent(2, farm(), NOW);
    expect(a.check(farm(), NOW + 1000)).toEqual([]);
    // after 2 windows the peer's intent is over (it went, or it aborted)
    expect(a.check(farm(), NOW + 2 * o.windowMs)).toEqual([{ kind: "intent" }]);
  });
  test("only the leader (lowest up id) wakes; it wakes a node once until the wake times out", () => {
    const v = [busy(1, 9), busy(2, 9), asleep(3)];
    expect(new PowerAgreement(2, o).check(v, NOW)).toEqual([]);
    const l = new PowerAgreement(1, o);
    expect(l.check(v, NOW)).toEqual([{ kind: "wake", nodeId: 3, reason: "usage_high" }]);
    expect(l.check(v, NOW + o.checkMs)).toEqual([]);
  });
});
