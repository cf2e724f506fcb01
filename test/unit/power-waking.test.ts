import { DecisionLog } from "../../agent/api/decisions";
import { zeroUnits } from "../../agent/capacity/units";
import type { Announcement } from "../../agent/gossip/wire";
import { decodeAnnouncementPayload, encodeAnnouncement } from "../../agent/gossip/wire";
import { powerRows } from "../../agent/power/client";
import { WakingBoard } from "../../agent/power/waking";

const ann = (nodeId: number, power: "up" | "standby", extra: Partial<Announcement> = {}): Announcement => ({
  nodeId, farmId: 1, twinId: nodeId, sequence: 1, timestampMs: 1000, total: zeroUnits(), reserved: zeroUnits(), reservable: zeroUnits(), used: zeroUnits(), free: zeroUnits(),
  deployments: 0, power, heartbeatMs: 30_000, agentVersion: "t", powerSinceMs: 1000, powerReason: power === "up" ? "start" : "idle", ...extra,
});

test("power rows: a node some peer announces waking (newer than its last change) is waking with the wake's time and reason", () => {
  const rows = powerRows([ann(1, "up", { waking: [{ nodeId: 2, sinceMs: 5000, reason: "usage_high" }, { nodeId: 3, sinceMs: 500, reason: "periodic" }, { nodeId: 4, sinceMs: 6000, reason: "random" }] }), ann(2, "standby"), ann(3, "standby")], [2, 3, 4, 5]);
  expect(rows).toEqual([
    { nodeId: 1, state: "up", since: new Date(1000).toISOString(), reason: "start" },
    { nodeId: 2, state: "waking", since: new Date(5000).toISOString(), reason: "usage_high" },
    // a wake older than the node's last change is over
    { nodeId: 3, state: "standby", since: new Date(1000).toISOString(), reason: "idle" },
    // silent (powered off), but a peer is waking it
    { nodeId: 4, state: "waking", since: new Date(6000).toISOString(), reason: "random" },
    { nodeId: 5, state: "down", since: null, reason: "" },
  ]);
  // an up node is up, whoever still lists it
  expect(powerRows([ann(1, "up", { waking: [{ nodeId: 2, sinceMs: 5000, reason: "requested" }] }), ann(2, "up")])[1].state).toBe("up");
});

test("the waking list survives the wire and is validated", () => {
  const a = ann(1, "up", { waking: [{ nodeId: 2, sinceMs: 5000, reason: "usage_high" }] });
  expect(decodeAnnouncementPayload(encodeAnnouncement(a), 4096).waking).toEqual(a.waking);
  expect(decodeAnnouncementPayload(encodeAnnouncement(ann(1, "up")), 4096).waking).toBeUndefined();
  expect(() => decodeAnnouncementPayload(encodeAnnouncement(ann(1, "up", { waking: [{ nodeId: 2, sinceMs: 1, reason: "Bad Reason" }] })), 4096)).toThrow(/waking\[0\]\.reason/);
  expect(() => decodeAnnouncementPayload(encodeAnnouncement(ann(1, "up", { waking: [{ nodeId: 0, sinceMs: 1, reason: "x" }] })), 4096)).toThrow(/waking\[0\]\.nodeId/);
});

test("waking board: noted once, cleared when up, gone after the timeout; changes are told", () => {
  let now = 0;
  const b = new WakingBoard(() => now, 1000);
  let changes = 0;
  b.onChange(() => changes++);
  b.note(3, "usage_high");
  now = 500;
  b.note(3, "random"); // a wake in progress keeps its start and reason
  expect(b.list()).toEqual([{ nodeId: 3, sinceMs: 0, reason: "usage_high" }]);
  b.note(2, "periodic");
  b.clear(2);
  expect(b.list().map((w) => w.nodeId)).toEqual([3]);
  now = 1001;
  expect(b.list()).toEqual([]);
  expect(b.has(3)).toBe(false);
  expect(changes).toBe(3);
});

test("decision ring: newest first, bounded, limit", () => {
  const log = new DecisionLog(3);
  for (let i = 1; i <= 5; i++) log.record({ op: "deploy", result: i % 2 ? "create" : "refused", deploymentId: i, version: 1, twinId: 7, timeMs: i, latencyUs: 10, rejection: i % 2 ? undefined : { code: "insufficient_capacity", message: "m", unit: "mru", requested: 9, free: 8 } });
  expect(log.total).toBe(5);
  expect(log.list().map((d) => d.seq)).toEqual([5, 4, 3]);
  expect(log.list(2).map((d) => d.deploymentId)).toEqual([5, 4]);
  expect(log.list()[1].rejection).toEqual({ code: "insufficient_capacity", message: "m", unit: "mru", requested: 9, free: 8 });
  expect(log.list()[0]).not.toHaveProperty("rejection");
});
