/** Ranking of find answers, gossip options and the wire round trip, as tables. */
import { GiB, zeroUnits, type Units } from "../../agent/capacity/units";
import { rankAnnouncements, rankScore } from "../../agent/gossip/find";
import { gossipOptionsFrom, parseGossipOptions } from "../../agent/gossip/options";
import { decodeAnnouncementPayload, decodeFindRequest, encodeAnnouncement, encodeFindRequest, type Announcement } from "../../agent/gossip/wire";

const u = (p: Partial<Units>): Units => ({ ...zeroUnits(), ...p });

describe("rankScore: share of the tightest requested unit left after placing the request", () => {
  const node = { reservable: u({ cru: 8, mru: 16 * GiB, sru: 100 * GiB }), free: u({ cru: 8, mru: 8 * GiB, sru: 100 * GiB }) };
  const cases: Array<[string, Units, number]> = [
    ["nothing asked: the tightest of cru, mru, sru (mru half used)", zeroUnits(), 0.5],
    ["2 cpus: (8-2)/8", u({ cru: 2 }), 0.75],
    ["4 GiB memory: (8-4)/16", u({ mru: 4 * GiB }), 0.25],
    ["cpu and memory: the tighter one counts", u({ cru: 1, mru: 4 * GiB }), 0.25],
    ["all the free memory: 0", u({ mru: 8 * GiB }), 0],
    ["a unit the node has none of is skipped when not asked", u({ sru: 50 * GiB }), 0.5],
  ];
  test.each(cases)("%s -> %p", (_n, want, score) => {
    expect(rankScore(want, node)).toBeCloseTo(score, 10);
  });
});

describe("rankAnnouncements: best first", () => {
  const a = (nodeId: number, freeMru: number, reservableMru = 16 * GiB, freeCru = 8) => ({ nodeId, reservable: u({ cru: 8, mru: reservableMru }), free: u({ cru: freeCru, mru: freeMru }) });
  const cases: Array<[string, Units, ReturnType<typeof a>[], number[]]> = [
    ["most memory headroom first", u({ mru: GiB }), [a(1, 4 * GiB), a(2, 12 * GiB), a(3, 8 * GiB)], [2, 3, 1]],
    ["share, not bytes: a half-empty small node beats a quarter-empty big one", u({ mru: GiB }), [a(1, 9 * GiB, 64 * GiB), a(2, 5 * GiB, 8 * GiB)], [2, 1]],
    ["ties: more free memory, then lower node id", u({ cru: 1 }), [a(3, 4 * GiB), a(2, 8 * GiB), a(1, 8 * GiB)], [1, 2, 3]],
    ["the tightest unit decides", u({ cru: 2, mru: GiB }), [a(1, 15 * GiB, 16 * GiB, 2), a(2, 4 * GiB, 16 * GiB, 8)], [2, 1]],
  ];
  test.each(cases)("%s", (_n, want, list, order) => {
    expect(rankAnnouncements(want, list).map((x) => x.nodeId)).toEqual(order);
  });
});

describe("parseGossipOptions names the bad field", () => {
  const base = { nodeId: 1, farmId: 1, twinId: 1 };
  const cases: Array<[string, Record<string, unknown>, string | null]> = [
    ["defaults", {}, null],
    ["heartbeat 1 s", { heartbeatMs: 1000 }, null],
    ["heartbeat below 100 ms", { heartbeatMs: 50 }, "gossip.heartbeatMs"],
    ["debounce above 100 ms", { debounceMs: 150 }, "gossip.debounceMs"],
    ["expiry of 1 heartbeat", { expiryHeartbeats: 1 }, "gossip.expiryHeartbeats"],
    ["a fractional block", { sequenceBlock: 1.5 }, "gossip.sequenceBlock"],
    ["an unknown scope", { scope: "world" }, "gossip.scope"],
    ["sync max below quiet", { syncQuietMs: 500, syncMaxMs: 100 }, "gossip.syncMaxMs"],
    ["node id 0", { nodeId: 0 }, "gossip.nodeId"],
  ];
  test.each(cases)("%s", (_n, over, field) => {
    const run = () => parseGossipOptions({ ...base, ...over } as never);
    if (field === null) expect(run()).toMatchObject({ expiryHeartbeats: 3, debounceMs: 75 });
    else expect(run).toThrow(expect.objectContaining({ code: "invalid_options", field }));
  });

  test("from the agent config: run --heartbeat seconds become ms", () => {
    expect(gossipOptionsFrom({ nodeId: 4, farmId: 2, twinId: 9, gossip: { heartbeatSeconds: 1.5, scope: "grid" } })).toMatchObject({ nodeId: 4, farmId: 2, twinId: 9, heartbeatMs: 1500, scope: "grid" });
  });
});

describe("wire round trips", () => {
  test("an announcement decodes to what was encoded, 64-bit values included", () => {
    const a: Announcement = {
      nodeId: 4294967295,
      farmId: 7,
      twinId: 12,
      sequence: 1_700_000_000_000_123,
      timestampMs: 1_700_000_000_000,
      total: u({ cru: 64, mru: 512 * GiB, sru: 8 * 1024 * GiB, hru: 32 * 1024 * GiB, ipv4u: 4, gpu: 2 }),
      reserved: u({ mru: 51 * GiB, sru: 5 * GiB }),
      reservable: u({ cru: 128, mru: 461 * GiB }),
      used: u({ cru: 3 }),
      free: u({ cru: 125, mru: 461 * GiB }),
      deployments: 3,
      power: "standby",
      heartbeatMs: 30_000,
      agentVersion: "0.1.0",
    };
    expect(decodeAnnouncementPayload(encodeAnnouncement(a), 4096)).toEqual(a);
    // a find answer about a deployment the node holds
    const held = { ...a, holds: { id: 2 ** 40 + 1, version: 3, twinId: 9 } };
    expect(decodeAnnouncementPayload(encodeAnnouncement(held), 4096)).toEqual(held);
  });

  test("a find request round trips", () => {
    const q = { want: u({ cru: 2, mru: 4 * GiB }), farmId: 3, limit: 5 };
    expect(decodeFindRequest(encodeFindRequest(q))).toEqual(q);
    const withId = { ...q, deploymentId: 2 ** 40 };
    expect(decodeFindRequest(encodeFindRequest(withId))).toEqual(withId);
  });
});
