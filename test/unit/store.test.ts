import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import { Store, STORE_FILE } from "../../agent/store/store";
import { tmpDir } from "../utils/agent";

const units = { cru: 1, mru: 2, sru: 3, hru: 4, ipv4u: 0, gpu: 0 };

describe("store (real SQLite on disk)", () => {
  test("reservations, tombstones and events survive close and reopen", () => {
    const dir = tmpDir();
    const s = Store.open(dir);
    expect(s.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(s.db.pragma("synchronous", { simple: true })).toBe(2); // FULL
    const res = { id: 5, twinId: 7, version: 1, units, hash: "h", createdMs: 10, updatedMs: 10 };
    s.putDeployment(res, new Uint8Array([1, 2, 3]), "create");
    s.putDeployment({ ...res, version: 2, updatedMs: 20 }, new Uint8Array([4]), "update");
    s.putDeployment({ ...res, id: 6, createdMs: 30, updatedMs: 30 }, new Uint8Array([5]), "create");
    s.deleteDeployment({ ...res, id: 6 }, 40);
    expect(s.advanceCounter("seq", 100)).toBe(100);
    s.close();
    const t = Store.open(dir);
    expect(t.loadDeployments()).toEqual([{ ...res, version: 2, updatedMs: 20, request: new Uint8Array([4]) }]);
    expect(t.loadTombstones()).toEqual(new Map([[6, 1]]));
    expect(t.reservationEvents(0, 100).map((e) => [e.deploymentId, e.kind, e.atMs])).toEqual([
      [5, "create", 10],
      [5, "update", 20],
      [6, "create", 30],
      [6, "delete", 40],
    ]);
    expect(t.advanceCounter("seq")).toBe(101);
    t.close();
  });

  test("a file that is not a database stops the store with code corrupt and is left untouched", () => {
    const dir = tmpDir();
    const file = path.join(dir, STORE_FILE);
    const junk = Buffer.alloc(8192, 0x5a);
    fs.writeFileSync(file, junk);
    expect(() => Store.open(dir)).toThrow(expect.objectContaining({ code: "corrupt" }));
    expect(fs.readFileSync(file).equals(junk)).toBe(true);
  });

  test("a store written by a newer agent is refused with code newer_schema", () => {
    const dir = tmpDir();
    Store.open(dir).close();
    const db = new Database(path.join(dir, STORE_FILE));
    db.prepare(`UPDATE meta SET value = '99' WHERE key = 'format'`).run();
    db.close();
    expect(() => Store.open(dir)).toThrow(expect.objectContaining({ code: "newer_schema" }));
  });

  test("module schemas: applied once, newer module versions refused", () => {
    const dir = tmpDir();
    const s = Store.open(dir);
    s.ensureSchema("x", ["CREATE TABLE x1 (a INTEGER)", "CREATE TABLE x2 (a INTEGER)"]);
    s.ensureSchema("x", ["CREATE TABLE x1 (a INTEGER)", "CREATE TABLE x2 (a INTEGER)"]);
    expect(() => s.ensureSchema("x", ["CREATE TABLE x1 (a INTEGER)"])).toThrow(expect.objectContaining({ code: "newer_schema" }));
    s.close();
  });
});

/**
 * What the usage meter reads (agent/usage/service.ts): the reservations in force at a period's
 * start and the events inside it, as typed units. Event times never go back (a clock that stepped
 * back stamps an event with the time of the one before it), so the two reads always agree.
 */
describe("store: reservation events for metering", () => {
  const H = 3_600_000;
  const A = { cru: 2, mru: 4, sru: 100, hru: 0, ipv4u: 1, gpu: 0 };
  const B = { cru: 4, mru: 8, sru: 200, hru: 0, ipv4u: 0, gpu: 1 };
  const Z = { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };
  type Write = ["create" | "update" | "delete", number, typeof A, number, number]; // kind, id, units, atMs, version
  interface Case {
    writes: Write[];
    /** [atMs, kind, id, version, units] of every event, in order */
    events: Array<[number, string, number, number, typeof A]>;
    /** reservationsAt(t) for each t: [id, version, units] */
    inForce: Array<[number, Array<[number, number, typeof A]>]>;
  }
  const cases: Array<[string, Case]> = [
    [
      "in order",
      { writes: [["create", 1, A, 100, 1], ["update", 1, B, 200, 2], ["create", 2, A, 300, 1], ["delete", 1, B, 400, 2]], events: [[100, "create", 1, 1, A], [200, "update", 1, 2, B], [300, "create", 2, 1, A], [400, "delete", 1, 2, Z]], inForce: [[100, []], [101, [[1, 1, A]]], [301, [[1, 2, B], [2, 1, A]]], [401, [[2, 1, A]]]] },
    ],
    [
      "a clock that stepped back within a period: later changes keep the earlier time",
      { writes: [["create", 5, A, 1800, 1], ["update", 5, B, 1740, 2], ["create", 6, A, 1000, 1], ["delete", 6, A, 900, 1]], events: [[1800, "create", 5, 1, A], [1800, "update", 5, 2, B], [1800, "create", 6, 1, A], [1800, "delete", 6, 1, Z]], inForce: [[1800, []], [1801, [[5, 2, B]]]] },
    ],
    [
      "a delete stamped before the boundary after a create after it: both count after the boundary",
      { writes: [["create", 5, A, H + 100, 1], ["delete", 5, A, H - 100, 1]], events: [[H + 100, "create", 5, 1, A], [H + 100, "delete", 5, 1, Z]], inForce: [[H, []], [2 * H, []]] },
    ],
    [
      "a create stamped before the boundary after a delete after it: v1 in force at the boundary, then delete and create v2",
      { writes: [["create", 5, A, 600, 1], ["delete", 5, A, H + 100, 1], ["create", 5, A, H - 100, 2]], events: [[600, "create", 5, 1, A], [H + 100, "delete", 5, 1, Z], [H + 100, "create", 5, 2, A]], inForce: [[H, [[5, 1, A]]], [2 * H, [[5, 2, A]]]] },
    ],
  ];
  test.each(cases)("%s", (_name, c) => {
    const s = Store.open(tmpDir());
    try {
      for (const [kind, id, u, atMs, version] of c.writes) {
        const res = { id, twinId: 7, version, units: u, hash: `h${id}.${version}`, createdMs: atMs, updatedMs: atMs };
        if (kind === "delete") s.deleteDeployment(res, atMs);
        else s.putDeployment(res, new Uint8Array([1]), kind);
      }
      const all = s.reservationEvents(0, 10 * H);
      expect(all.map((e) => [e.atMs, e.kind, e.deploymentId, e.version, e.units])).toEqual(c.events);
      expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => a - b));
      for (const [t, want] of c.inForce) {
        expect({ t, inForce: s.reservationsAt(t).map((r) => [r.deploymentId, r.version, r.units]) }).toEqual({ t, inForce: want });
        // what is in force at t, replayed with the events in [t, 10H), is what is in force at the end
        const replay = new Map(s.reservationsAt(t).map((r) => [r.deploymentId, r.version]));
        for (const e of s.reservationEvents(t, 10 * H)) {
          if (e.kind === "delete") replay.delete(e.deploymentId);
          else replay.set(e.deploymentId, e.version);
        }
        expect([...replay].sort((a, b) => a[0] - b[0])).toEqual(s.reservationsAt(10 * H).map((r) => [r.deploymentId, r.version]));
      }
    } finally {
      s.close();
    }
  });
});
