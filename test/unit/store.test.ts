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
