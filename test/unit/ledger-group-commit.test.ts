/**
 * Group commit of admission decisions on a real on-disk SQLite store: decisions taken in one
 * event-loop turn are written in one transaction (one fsync), and no promise resolves (so no reply
 * says accepted) before its decision is on disk. The flush is driven by the test (`defer`), so each
 * step is checked between "decided" and "written".
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Ledger, type LedgerChange } from "../../agent/admission/ledger";
import type { Decision } from "../../agent/admission/admit";
import { parseDeployment } from "../../agent/admission/spec";
import { DEFAULT_POLICY } from "../../agent/capacity/model";
import { GiB } from "../../agent/capacity/units";
import { silentLogger } from "../../agent/log/logger";
import { createMetrics } from "../../agent/metrics/metrics";
import { Store, type DeploymentWrite } from "../../agent/store/store";

const T = 1_700_000_000_000;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function input(id: number, sru = 1, version = 1) {
  const r = parseDeployment({ id, twinId: 7, version, workloads: [{ name: "d", type: "zmount", size: `${sru}GiB` }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return { spec: r.value, units: { cru: 0, mru: 0, sru: sru * GiB, hru: 0, ipv4u: 0, gpu: 0 }, hash: `h${id}.${version}` };
}

function setup(sruGiB = 100) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "group-commit-"));
  dirs.push(dir);
  const store = Store.open(dir);
  const batches: number[] = [];
  const apply = store.applyDeploymentWrites.bind(store);
  store.applyDeploymentWrites = (w: readonly DeploymentWrite[]) => {
    batches.push(w.length);
    apply(w);
  };
  let flush: (() => void) | null = null;
  const metrics = createMetrics();
  const ledger = new Ledger(
    { power: "up", rented: false, policy: DEFAULT_POLICY },
    { store, logger: silentLogger(), now: () => T, metrics, defer: (fn) => void (flush = fn) },
    { cru: 4, mru: 16 * GiB, sru: sruGiB * GiB, hru: 0, ipv4u: 0, gpu: 0 },
  );
  const changes: LedgerChange[] = [];
  ledger.onChange((c) => changes.push(c));
  const runFlush = async () => {
    const f = flush;
    flush = null;
    f?.();
    await new Promise((r) => setImmediate(r)); // let the resolved promises run
  };
  return { dir, store, ledger, batches, changes, metrics, runFlush };
}

function track(p: Promise<Decision>) {
  const t: { d?: Decision } = {};
  void p.then((d) => (t.d = d));
  return t;
}

const req = (id: number) => new TextEncoder().encode(`request ${id}`);

test("decisions of one turn are one transaction; none resolves before it is on disk; events follow the commit", async () => {
  const { store, ledger, batches, changes, metrics, runFlush } = setup();
  const got = Array.from({ length: 10 }, (_, i) => track(ledger.deployDurably(input(i + 1), req(i + 1))));
  await new Promise((r) => setImmediate(r));
  // decided (memory holds them, so the next decision sees them) but not written, not answered
  expect(ledger.used().sru).toBe(10 * GiB);
  expect(got.every((g) => g.d === undefined)).toBe(true);
  expect(store.loadDeployments()).toHaveLength(0);
  expect(changes).toHaveLength(0);
  await runFlush();
  expect(batches).toEqual([10]);
  expect(got.every((g) => g.d?.ok === true)).toBe(true);
  expect(store.loadDeployments().map((d) => d.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  expect(changes).toHaveLength(10);
  expect(metrics.groupCommits.get()).toBe(1);
  expect(metrics.groupCommitWrites.get()).toBe(10);
  expect(metrics.decisions.get({ op: "deploy", result: "create" })).toBe(10);
  store.close();
});

test("of concurrent requests for the last capacity exactly one wins, within one group", async () => {
  const { store, ledger, runFlush } = setup(100);
  const got = [1, 2, 3, 4].map((id) => track(ledger.deployDurably(input(id, 60), req(id))));
  await runFlush();
  expect(got.filter((g) => g.d?.ok).length).toBe(1);
  expect(got.filter((g) => g.d && !g.d.ok && g.d.refusal.code === "insufficient_capacity").length).toBe(3);
  expect(store.loadDeployments()).toHaveLength(1);
  store.close();
});

test("a duplicate, update and delete of a pending create wait for the group; all land in order", async () => {
  const { store, ledger, batches, runFlush } = setup();
  const create = track(ledger.deployDurably(input(1), req(1)));
  const dup = track(ledger.deployDurably(input(1), req(1)));
  const update = track(ledger.deployDurably(input(1, 3, 2), req(1)));
  const other = track(ledger.deployDurably(input(2), req(2)));
  const del = track(ledger.deleteDurably({ id: 2, twinId: 7 }));
  await new Promise((r) => setImmediate(r));
  expect(dup.d).toBeUndefined(); // its "accepted" must not be said before the create is on disk
  await runFlush();
  expect(create.d).toMatchObject({ ok: true, value: { kind: "create" } });
  expect(dup.d).toMatchObject({ ok: true, value: { kind: "duplicate" } });
  expect(update.d).toMatchObject({ ok: true, value: { kind: "update" } });
  expect(other.d).toMatchObject({ ok: true, value: { kind: "create" } });
  expect(del.d).toMatchObject({ ok: true, value: { kind: "delete" } });
  expect(batches).toEqual([4]);
  const onDisk = store.loadDeployments();
  expect(onDisk.map((d) => [d.id, d.version])).toEqual([[1, 2]]);
  expect(store.loadTombstones().get(2)).toBe(1);
  expect(ledger.used().sru).toBe(3 * GiB);
  store.close();
});

test("a rejection with nothing pending is answered at once, without a write", async () => {
  const { store, ledger, batches } = setup(1);
  const d = await ledger.deployDurably(input(1, 2), req(1));
  expect(d).toMatchObject({ ok: false, refusal: { code: "insufficient_capacity" } });
  expect(batches).toEqual([]);
  store.close();
});

test("a group that cannot be written: memory rolls back and every accepted decision of it is store_full", async () => {
  const { store, ledger, changes, runFlush } = setup(10);
  await runFlush();
  const first = track(ledger.deployDurably(input(1, 1), req(1)));
  await runFlush();
  expect(first.d).toMatchObject({ ok: true });
  const pages = store.db.pragma("page_count", { simple: true }) as number;
  store.db.pragma(`max_page_count = ${pages}`);
  const big = new TextEncoder().encode("x".repeat(64 * 1024));
  const a = track(ledger.deployDurably(input(2, 2), big));
  const dup = track(ledger.deployDurably(input(2, 2), big));
  const tooBig = track(ledger.deployDurably(input(3, 100), big));
  const del = track(ledger.deleteDurably({ id: 1, twinId: 7 }));
  await runFlush();
  expect(a.d).toMatchObject({ ok: false, refusal: { code: "store_full" } });
  expect(dup.d).toMatchObject({ ok: false, refusal: { code: "store_full" } });
  expect(del.d).toMatchObject({ ok: false, refusal: { code: "store_full" } });
  expect(tooBig.d).toMatchObject({ ok: false, refusal: { code: "insufficient_capacity" } });
  expect(ledger.deployments().map((d) => d.id)).toEqual([1]);
  expect(ledger.used().sru).toBe(GiB);
  expect(changes).toHaveLength(1); // only the first, committed create
  store.db.pragma("max_page_count = 1073741823");
  const again = track(ledger.deployDurably(input(2, 2), big));
  await runFlush();
  expect(again.d).toMatchObject({ ok: true, value: { kind: "create" } });
  expect(store.loadDeployments().map((d) => d.id)).toEqual([1, 2]);
  store.close();
});
