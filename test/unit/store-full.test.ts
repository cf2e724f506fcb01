/**
 * A store that has no room, on real SQLite: `PRAGMA max_page_count` at the current size makes every
 * write that needs a new page fail with SQLITE_FULL, as a full disk does (the integration test
 * test/integration/full-disk.test.ts fills a real file system).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Ledger } from "../../agent/admission/ledger";
import { parseDeployment } from "../../agent/admission/spec";
import { DEFAULT_POLICY } from "../../agent/capacity/model";
import { GiB } from "../../agent/capacity/units";
import { clockFloor, SequenceSource, SEQUENCE_COUNTER } from "../../agent/gossip/sequence";
import { silentLogger } from "../../agent/log/logger";
import { StoreError } from "../../agent/store/errors";
import { Store } from "../../agent/store/store";

const T = 1_700_000_000_000;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function open(events: boolean[] = []): Store {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "store-full-"));
  dirs.push(d);
  return Store.open(d, { onFullChange: (full) => events.push(full) });
}

/** No new page can be allocated from now on (like a disk with no room). */
function fillUp(s: Store): void {
  const pages = s.db.pragma("page_count", { simple: true }) as number;
  s.db.pragma(`max_page_count = ${pages}`);
}
function makeRoom(s: Store): void {
  s.db.pragma("max_page_count = 1073741823");
}

const big = "x".repeat(64 * 1024); // a request large enough to need new pages
function input(id: number) {
  const r = parseDeployment({ id, twinId: 7, version: 1, workloads: [{ name: "d", type: "zmount", size: "1GiB" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return { spec: r.value, units: { cru: 0, mru: 0, sru: GiB, hru: 0, ipv4u: 0, gpu: 0 }, hash: `h${id}` };
}

test("a write without room throws store_full, changes nothing, and the store says full until a write succeeds", () => {
  const events: boolean[] = [];
  const s = open(events);
  fillUp(s);
  expect(() => s.setMeta("k", big)).toThrow(expect.objectContaining({ code: "store_full" }));
  expect(s.full).toBe(true);
  expect(s.getMeta("k")).toBeUndefined();
  expect(() => s.setMeta("k2", big)).toThrow(StoreError);
  expect(events).toEqual([true]); // reported once
  makeRoom(s);
  s.setMeta("k", big);
  expect(s.full).toBe(false);
  expect(events).toEqual([true, false]);
  expect(s.db.pragma("integrity_check", { simple: true })).toBe("ok");
  s.close();
});

test("the ledger refuses with store_full and keeps memory as it was; the same request is accepted once there is room", () => {
  const s = open();
  const total = { cru: 4, mru: 16 * GiB, sru: 100 * GiB, hru: 0, ipv4u: 0, gpu: 0 };
  const ledger = new Ledger({ power: "up", rented: false, policy: DEFAULT_POLICY }, { store: s, logger: silentLogger(), now: () => T, metrics: null }, total);
  expect(ledger.deploy(input(1), new TextEncoder().encode(big))).toMatchObject({ ok: true });
  fillUp(s);
  const refused = ledger.deploy(input(2), new TextEncoder().encode(big));
  expect(refused).toMatchObject({ ok: false, refusal: { code: "store_full" } });
  expect(ledger.deployments().map((d) => d.id)).toEqual([1]);
  expect(ledger.used().sru).toBe(GiB);
  makeRoom(s);
  expect(ledger.deploy(input(2), new TextEncoder().encode(big))).toMatchObject({ ok: true, value: { kind: "create" } });
  expect(s.loadDeployments().map((d) => d.id)).toEqual([1, 2]);
  s.close();
});

test("gossip sequences go on without room (above the clock floor) and a block is reserved above them afterwards", () => {
  const s = open();
  let now = T;
  fillUp(s);
  // the first block cannot be reserved: numbers come from memory
  const seq = new SequenceSource(s, 10, now, () => now);
  const got: number[] = [];
  for (let i = 0; i < 25; i++) {
    now += 5;
    got.push(seq.take());
  }
  expect(got[0]).toBeGreaterThan(clockFloor(T));
  expect(got.every((v, i) => i === 0 || v > got[i - 1])).toBe(true);
  makeRoom(s);
  const next = seq.take();
  expect(next).toBeGreaterThan(got[24]);
  expect(s.counter(SEQUENCE_COUNTER)).toBeGreaterThanOrEqual(next); // durable again
  s.close();
});
