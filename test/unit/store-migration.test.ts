import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MemoryBus } from "../../agent/bus/memory";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, type Units } from "../../agent/capacity/units";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { buildProof } from "../../agent/proofs/build";
import { decodeProofHeader, proofHash, ZERO_HASH } from "../../agent/proofs/proof";
import { ensureSchema, openDatabase, Store, STORE_FILE, STORE_FORMAT } from "../../agent/store/store";
import { meterPeriod } from "../../agent/usage/meter";
import { UsageOutbox } from "../../agent/usage/outbox";
import { UsageService } from "../../agent/usage/service";
import { UptimeLog } from "../../agent/usage/uptime";

/**
 * A data dir written by agents from before the tables got one owner each (core schema 4, usage
 * schema 1 with the up-time table and the reservation_events index in it, the proof head as JSON
 * in the store's meta table) opens with this code, migrates, keeps every row, and metering goes on
 * from where it stopped. The old statements are in fixtures/schema-before-table-owners.sql, a frozen
 * copy of what is on disk.
 */

/** The old migrations of `module`, from the frozen schema file: one step per "-- migration MODULE" line. */
function oldMigrations(module: string): string[] {
  const text = fs.readFileSync(path.join(__dirname, "fixtures", "schema-before-table-owners.sql"), "utf8");
  const steps: Array<{ module: string; sql: string[] }> = [];
  for (const line of text.split("\n")) {
    const m = /^-- migration (\w+)$/.exec(line);
    if (m) steps.push({ module: m[1], sql: [] });
    else if (steps.length > 0 && !line.startsWith("--")) steps[steps.length - 1].sql.push(line);
  }
  return steps.filter((s) => s.module === module).map((s) => s.sql.join("\n").trim());
}
const OLD_CORE = oldMigrations("core");
const OLD_USAGE = oldMigrations("usage");

test("the frozen schema file holds core schema 4 and usage schema 1", () => {
  expect([OLD_CORE.length, OLD_USAGE.length]).toEqual([4, 1]);
  expect(OLD_CORE[0]).toMatch(/^CREATE TABLE deployments \(/);
  expect(OLD_USAGE[0]).toContain("CREATE INDEX reservation_events_at ON reservation_events(at_ms);");
});

const HOUR = 3_600_000;
const S = 472_222 * HOUR;
const NODE = 17;
const FARM = 3;
const A: Units = { cru: 2, mru: 4 * GiB, sru: 100 * GiB, hru: 0, ipv4u: 1, gpu: 0 };
const B: Units = { cru: 4, mru: 8 * GiB, sru: 200 * GiB, hru: 0, ipv4u: 0, gpu: 1 };
const ZERO: Units = { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

let signer: Signer;
beforeAll(async () => {
  await cryptoReady();
  signer = signerFromSeed("ed25519", new Uint8Array(32).map((_, i) => i + 1));
});

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "store-migration-"));
  dirs.push(d);
  return d;
}

/**
 * What an old agent left: deployment 1 (A) created at S + 10 min, deployment 2 (B) created at
 * S + 20 min and deleted at S + 40 min, up from S + 5 min to S + HOUR + 30 min, proof 1 for
 * [S + 5 min, S + HOUR) delivered, and the head after it in meta.
 */
function oldDataDir(): { dir: string; proof1: ReturnType<typeof buildProof> } {
  const dir = tmpDir();
  const file = path.join(dir, STORE_FILE);
  const db = openDatabase(file, "store", STORE_FORMAT);
  ensureSchema(db, file, "core", OLD_CORE);
  ensureSchema(db, file, "usage", OLD_USAGE);
  const event = db.prepare(`INSERT INTO reservation_events (at_ms, deployment_id, twin_id, version, kind, units) VALUES (?, ?, ?, ?, ?, ?)`);
  event.run(S + 600_000, 1, 7, 1, "create", JSON.stringify(A));
  event.run(S + 1_200_000, 2, 9, 1, "create", JSON.stringify(B));
  event.run(S + 2_400_000, 2, 9, 1, "delete", JSON.stringify(ZERO));
  db.prepare(`INSERT INTO deployments (id, twin_id, version, units, hash, request, created_ms, updated_ms) VALUES (1, 7, 1, ?, 'h1', x'01', ?, ?)`).run(JSON.stringify(A), S + 600_000, S + 600_000);
  db.prepare(`INSERT INTO tombstones (id, version, deleted_ms) VALUES (2, 1, ?)`).run(S + 2_400_000);
  db.prepare(`INSERT INTO usage_uptime (start_ms, alive_ms) VALUES (?, ?)`).run(S + 300_000, S + HOUR + 1_800_000);

  const metered = meterPeriod({
    periodStartMs: S + 300_000,
    periodEndMs: S + HOUR,
    initial: [],
    events: [
      { atMs: S + 600_000, deploymentId: 1, twinId: 7, version: 1, kind: "create", units: A },
      { atMs: S + 1_200_000, deploymentId: 2, twinId: 9, version: 1, kind: "create", units: B },
      { atMs: S + 2_400_000, deploymentId: 2, twinId: 9, version: 1, kind: "delete", units: ZERO },
    ],
    uptime: [[S + 300_000, S + HOUR + 1_800_000]],
  });
  const proof1 = buildProof({ sequence: 0, periodEndMs: S + 300_000, hash: ZERO_HASH }, { nodeId: NODE, farmId: FARM, periodEndMs: S + HOUR, ...metered }, signer);
  db.prepare(
    `INSERT INTO usage_proofs (sequence, period_start_ms, period_end_ms, header, envelope, hash, record_count, state, attempts, last_code, created_ms, delivered_ms) VALUES (1, ?, ?, ?, ?, ?, ?, 'delivered', 1, 'ok', ?, ?)`,
  ).run(S + 300_000, S + HOUR, Buffer.from(proof1.headerBytes), Buffer.from(proof1.envelope), Buffer.from(proof1.hash), proof1.records.length, S + HOUR, S + HOUR + 5);
  proof1.records.forEach((r, i) => db.prepare(`INSERT INTO usage_records (sequence, idx, deployment_id, record) VALUES (1, ?, ?, ?)`).run(i, r.deploymentId, Buffer.from(r.bytes)));
  db.prepare(`INSERT INTO meta (key, value) VALUES ('usage.head', ?)`).run(JSON.stringify({ sequence: 1, periodEndMs: S + HOUR, hash: hex(proof1.hash) }));
  db.close();
  return { dir, proof1 };
}

function schema(store: Store): { versions: Record<string, number>; objects: string[] } {
  const versions = Object.fromEntries((store.db.prepare(`SELECT module, version FROM schema_versions`).all() as Array<{ module: string; version: number }>).map((r) => [r.module, r.version]));
  const objects = (store.db.prepare(`SELECT type || ' ' || name AS o FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`).all() as Array<{ o: string }>).map((r) => r.o);
  return { versions, objects };
}

test("an old data dir migrates: every version moves up, the head leaves meta for usage_head, rows are kept and read typed", () => {
  const { dir, proof1 } = oldDataDir();
  const store = Store.open(dir);
  try {
    const outbox = new UsageOutbox(store);
    const uptime = new UptimeLog(store);
    expect(schema(store).versions).toEqual({ core: 5, usage: 3, uptime: 1 });
    expect(store.getMeta("usage.head")).toBeUndefined();
    expect(outbox.head()).toEqual({ sequence: 1, periodEndMs: S + HOUR, hash: proof1.hash });
    expect(uptime.intervals(S, S + 2 * HOUR)).toEqual([[S + 300_000, S + HOUR + 1_800_000]]);
    expect(store.reservationsAt(S + HOUR)).toEqual([{ deploymentId: 1, twinId: 7, version: 1, units: A }]);
    expect(store.reservationEvents(S, S + HOUR).map((e) => [e.deploymentId, e.kind, e.units])).toEqual([
      [1, "create", A],
      [2, "create", B],
      [2, "delete", ZERO],
    ]);
    expect(outbox.proof(1)).toMatchObject({ state: "delivered", lastCode: "ok", recordCount: 2 });
    expect(hex(outbox.proof(1)!.envelope)).toBe(hex(proof1.envelope));
    expect(outbox.records(1).map((r) => hex(r.bytes))).toEqual(proof1.records.map((r) => hex(r.bytes)));
    expect(store.loadDeployments().map((d) => [d.id, d.units])).toEqual([[1, A]]);
    expect(store.loadTombstones()).toEqual(new Map([[2, 1]]));
  } finally {
    store.close();
  }
  // a second open changes nothing
  const again = Store.open(dir);
  try {
    new UsageOutbox(again);
    new UptimeLog(again);
    expect(schema(again).versions).toEqual({ core: 5, usage: 3, uptime: 1 });
    expect(new UsageOutbox(again).head()?.sequence).toBe(1);
  } finally {
    again.close();
  }
});

test("a migrated data dir has the same tables and indexes as a new one", () => {
  const fresh = Store.open(tmpDir());
  const migrated = Store.open(oldDataDir().dir);
  try {
    for (const s of [fresh, migrated]) {
      new UsageOutbox(s);
      new UptimeLog(s);
    }
    expect(schema(migrated)).toEqual(schema(fresh));
    expect(schema(fresh).objects).toEqual(
      expect.arrayContaining(["index reservation_events_at", "index usage_proofs_pending", "index usage_records_deployment", "table usage_head", "table usage_uptime", "table usage_proofs", "table usage_records", "table reservation_events"]),
    );
    // the meter's read by time uses the store's index
    const plan = (migrated.db.prepare(`EXPLAIN QUERY PLAN SELECT seq FROM reservation_events WHERE at_ms >= ? AND at_ms < ? ORDER BY seq`).all(0, 1) as Array<{ detail: string }>).map((r) => r.detail).join("; ");
    expect(plan).toContain("reservation_events_at");
  } finally {
    fresh.close();
    migrated.close();
  }
});

test("a data dir whose old agent never opened the usage tables migrates too", () => {
  const dir = tmpDir();
  const file = path.join(dir, STORE_FILE);
  const db = openDatabase(file, "store", STORE_FORMAT);
  ensureSchema(db, file, "core", OLD_CORE);
  db.close();
  const store = Store.open(dir);
  try {
    const outbox = new UsageOutbox(store);
    new UptimeLog(store);
    expect(schema(store).versions).toEqual({ core: 5, usage: 3, uptime: 1 });
    expect(outbox.head()).toBeUndefined();
  } finally {
    store.close();
  }
});

test("the usage service goes on from a migrated data dir: proof 2 follows proof 1's hash and meters the old up-time", async () => {
  const { dir, proof1 } = oldDataDir();
  const store = Store.open(dir);
  const clock = { t: S + HOUR + 1_800_000 + 60_000 }; // restarted a minute after the old agent's last alive mark
  const svc = new UsageService(
    { nodeId: NODE, farmId: FARM, periodMs: HOUR, aliveMs: 900_000_000, retryMinMs: 900_000_000, retryMaxMs: 900_000_000 },
    { bus: new MemoryBus(), subjects: new Subjects(), store, signer, logger: silentLogger(), metrics: null, now: () => clock.t, sink: null },
  );
  try {
    await svc.start();
    clock.t = S + 2 * HOUR;
    expect(svc.closeDuePeriods()).toBe(1);
    const p2 = svc.outbox.proof(2)!;
    const h = decodeProofHeader(p2.header);
    expect(hex(h.previousHash)).toBe(hex(proof1.hash));
    expect([h.sequence, h.periodStartMs, h.periodEndMs, h.downtimeMs]).toEqual([2, S + HOUR, S + 2 * HOUR, 60_000]);
    expect(svc.outbox.records(2).map((r) => r.deploymentId)).toEqual([1]);
    expect(hex(svc.outbox.head()!.hash)).toBe(hex(proofHash(p2.header)));
  } finally {
    svc.close();
    store.close();
  }
});
