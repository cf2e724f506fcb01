import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import type { Reservation } from "../admission/admit";
import type { Units } from "../capacity/units";
import { StoreError } from "./errors";
import { ensurePrivateDir, ensurePrivateFile, FILE_MODE, tighten, type OnTightened } from "./files";

/**
 * The agent's durable store: SQLite in WAL mode with synchronous=FULL, so a transaction is on
 * disk (fsync'd) when commit returns, and a crash at any instant leaves either all of a decision
 * or none of it. Modules keep their own tables and schema versions (`ensureSchema`), so gossip,
 * usage and proofs can evolve without one shared migration list.
 */
export const STORE_FORMAT = 1;
export const STORE_FILE = "agent.db";

export interface StoredDeployment extends Reservation {
  /** the exact DeployRequest bytes the node accepted (signatures included), served by .get */
  request: Uint8Array;
}

/** One admission write: a created or updated reservation with its request, or a delete. */
export type DeploymentWrite =
  | { kind: "create" | "update"; res: Reservation; request: Uint8Array }
  | { kind: "delete"; res: Reservation; atMs: number };

/** A reservation in force at some time: the last event of a deployment before it, unless a delete. */
export interface ReservationAt {
  deploymentId: number;
  twinId: number;
  version: number;
  units: Units;
}

/** One change of reservations, in order (`seq`), with the units after it (zeros on a delete); the usage meter reads these. */
export interface ReservationEvent extends ReservationAt {
  seq: number;
  atMs: number;
  kind: "create" | "update" | "delete";
}

const NO_UNITS: Units = { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };

/**
 * The store's own tables (schema module "core"), owned by this class: `deployments` and
 * `tombstones` (admission's durable state, written by the Ledger through applyDeploymentWrites),
 * `reservation_events` (every accepted change, in order: what usage metering bills from, read
 * through reservationsAt and reservationEvents) and `counters`; `meta` and `schema_versions` are
 * made at open. Other modules own theirs: usage_proofs, usage_records and usage_head (UsageOutbox,
 * agent/usage/outbox.ts), usage_uptime (UptimeLog, agent/usage/uptime.ts).
 */
const CORE_SCHEMA = [
  `CREATE TABLE deployments (
     id INTEGER PRIMARY KEY,
     twin_id INTEGER NOT NULL,
     version INTEGER NOT NULL,
     units TEXT NOT NULL,
     hash TEXT NOT NULL,
     request BLOB NOT NULL,
     created_ms INTEGER NOT NULL,
     updated_ms INTEGER NOT NULL
   )`,
  `CREATE TABLE tombstones (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, deleted_ms INTEGER NOT NULL)`,
  `CREATE TABLE reservation_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at_ms INTEGER NOT NULL,
     deployment_id INTEGER NOT NULL,
     twin_id INTEGER NOT NULL,
     version INTEGER NOT NULL,
     kind TEXT NOT NULL,
     units TEXT NOT NULL
   )`,
  `CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
  // step 5: the index the usage meter's reads by time use (IF NOT EXISTS: older stores have it
  // from the "usage" module's first migration, which made it before the store owned it)
  `CREATE INDEX IF NOT EXISTS reservation_events_at ON reservation_events(at_ms)`,
];

/**
 * Open (or create) an SQLite database for durable state: WAL with synchronous=FULL (a transaction
 * is on disk when commit returns), an integrity check, and a format number in a meta table. A
 * file that is not a sound database, is locked, or was written by a newer version is refused with
 * a StoreError (code corrupt, locked, newer_schema or io) and left as it is: never reset.
 * `what` names it in messages ("store", "chain store").
 */
export function openDatabase(file: string, what: string, format: number, options: OpenOptions = {}): Database.Database {
  try {
    return openOnce(file, what, format, options, false);
  } catch (err) {
    if (!(err instanceof StoreError) || err.code !== "store_full") throw err;
    // A full disk has no room for the WAL index (-shm) a shared connection maps. The agent is the
    // store's only user: an exclusive connection keeps the index in memory and can still read.
    // Writes then fail with store_full until space returns.
    return openOnce(file, what, format, options, true);
  }
}

export interface OpenOptions {
  /** a file or directory had a looser mode than 0600/0700 and was tightened */
  onTightened?: OnTightened;
}

/**
 * True when `err` says the disk is full: SQLITE_FULL, ENOSPC/EDQUOT, or another SQLite I/O error
 * (e.g. SQLITE_IOERR_SHMSIZE, growing the WAL index) while the file system of `file` has no room.
 */
export function isDiskFull(err: unknown, file: string): boolean {
  const code = (err as { code?: unknown }).code;
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return true;
  if (typeof code !== "string" || !code.startsWith("SQLITE_IOERR")) return false;
  try {
    const st = fs.statfsSync(path.dirname(file));
    return st.bavail * st.bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

function fullError(file: string, what: string, cause: unknown): StoreError {
  return new StoreError("store_full", file, `the disk holding the ${what} ${file} is full; free space on it`, { cause });
}

function openOnce(file: string, what: string, format: number, options: OpenOptions, exclusive: boolean): Database.Database {
  ensurePrivateDir(path.dirname(file), options.onTightened);
  try {
    ensurePrivateFile(file, options.onTightened);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (isDiskFull(err, file)) throw fullError(file, what, err);
    throw new StoreError("io", file, `cannot create the ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
  // SQLite gives -wal and -shm the database file's mode; older ones may still be looser
  for (const extra of [`${file}-wal`, `${file}-shm`]) tighten(extra, FILE_MODE, options.onTightened);
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw new StoreError("io", file, `cannot open the ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (exclusive) db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new StoreError("corrupt", file, `the ${what} ${file} failed its integrity check: ${String(check)}`);
    db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    db.exec(`CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)`);
    const row = db.prepare(`SELECT value FROM meta WHERE key = 'format'`).get() as { value: string } | undefined;
    if (!row) {
      db.prepare(`INSERT INTO meta (key, value) VALUES ('format', ?)`).run(String(format));
    } else if (Number(row.value) > format) {
      throw new StoreError("newer_schema", file, `the ${what} ${file} has format ${row.value}, newer than this version understands (${format}); run a newer capacity-agent or restore a backup`);
    }
  } catch (err) {
    db.close();
    if (err instanceof StoreError) throw err;
    const code = (err as { code?: string }).code;
    if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
      throw new StoreError("corrupt", file, `the ${what} ${file} is not a readable database (${code}); it was left as it is, move it away or restore a backup`, { cause: err });
    }
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
      throw new StoreError("locked", file, `the ${what} ${file} is in use by another process`, { cause: err });
    }
    if (code === "SQLITE_READONLY" || code === "SQLITE_READONLY_DIRECTORY") {
      throw new StoreError("data_dir_read_only", file, `the ${what} ${file} cannot be written (read-only file system or file); mount it read-write or pass --data DIR on a writable disk`, { cause: err });
    }
    if (isDiskFull(err, file)) throw fullError(file, what, err);
    throw new StoreError("io", file, `cannot open the ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}

/**
 * Bring a module's tables in `db` to the latest of `migrations` (each entry one step, applied once,
 * in order, in one transaction). Modules keep their own versions, so each evolves on its own.
 */
export function ensureSchema(db: Database.Database, file: string, module: string, migrations: string[]): void {
  const row = db.prepare(`SELECT version FROM schema_versions WHERE module = ?`).get(module) as { version: number } | undefined;
  const have = row?.version ?? 0;
  if (have > migrations.length) {
    throw new StoreError("newer_schema", file, `the "${module}" tables of ${file} are at version ${have}, newer than this version understands (${migrations.length}); run a newer capacity-agent`);
  }
  if (have === migrations.length) return;
  try {
    db.transaction(() => {
      for (let i = have; i < migrations.length; i++) db.exec(migrations[i]);
      db.prepare(`INSERT INTO schema_versions (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version`).run(module, migrations.length);
    })();
  } catch (err) {
    if (isDiskFull(err, file)) throw fullError(file, "store", err);
    throw err;
  }
}

export interface StoreOptions extends OpenOptions {
  /**
   * The store became full (a write failed for lack of disk space: writes are refused with
   * store_full, reads go on) or writable again (a write succeeded).
   */
  onFullChange?: (full: boolean, info: { file: string; err?: string }) => void;
}

export class Store {
  readonly db: Database.Database;
  readonly file: string;

  private fullNow = false;

  private constructor(
    db: Database.Database,
    file: string,
    private readonly options: StoreOptions = {},
  ) {
    this.db = db;
    this.file = file;
  }

  /** True while the last write failed because the disk is full. */
  get full(): boolean {
    return this.fullNow;
  }

  /**
   * Run a write. When the disk is full it throws StoreError `store_full` (nothing was written: the
   * transaction rolled back) and the store counts as full until a write succeeds again. Every
   * write of every module goes through here, so any write is also the probe that finds the space back.
   */
  write<T>(fn: () => T): T {
    let result: T;
    try {
      result = fn();
    } catch (err) {
      if (!(err instanceof StoreError) && isDiskFull(err, this.file)) {
        if (!this.fullNow) {
          this.fullNow = true;
          this.options.onFullChange?.(true, { file: this.file, err: (err as Error).message });
        }
        throw fullError(this.file, "store", err);
      }
      throw err;
    }
    if (this.fullNow) {
      this.fullNow = false;
      this.options.onFullChange?.(false, { file: this.file });
    }
    return result;
  }

  /** A small write to learn whether the store can be written now (false: the disk is full). */
  probe(nowMs: number): boolean {
    try {
      this.setMeta("store.writable_ms", String(nowMs));
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === "store_full") return false;
      throw err;
    }
  }

  /**
   * Open (or create) the store in `dir`. A file that is not a sound SQLite database, or one written
   * by a newer agent, stops the agent with a StoreError; the store is never silently reset.
   */
  static open(dir: string, options: StoreOptions = {}): Store {
    const file = path.join(dir, STORE_FILE);
    const store = new Store(openDatabase(file, "store", STORE_FORMAT, options), file, options);
    try {
      store.ensureSchema("core", CORE_SCHEMA);
    } catch (err) {
      store.close();
      throw err;
    }
    return store;
  }

  /**
   * Bring a module's tables to the latest of `migrations` (each entry one step, applied once, in
   * order, in one transaction). A store whose module version is newer than the code knows is refused.
   */
  ensureSchema(module: string, migrations: string[]): void {
    this.write(() => ensureSchema(this.db, this.file, module, migrations));
  }

  loadDeployments(): StoredDeployment[] {
    const rows = this.db.prepare(`SELECT * FROM deployments ORDER BY id`).all() as Array<{
      id: number;
      twin_id: number;
      version: number;
      units: string;
      hash: string;
      request: Buffer;
      created_ms: number;
      updated_ms: number;
    }>;
    return rows.map((r) => ({
      id: r.id,
      twinId: r.twin_id,
      version: r.version,
      units: JSON.parse(r.units),
      hash: r.hash,
      request: new Uint8Array(r.request),
      createdMs: r.created_ms,
      updatedMs: r.updated_ms,
    }));
  }

  getDeploymentRequest(id: number): Uint8Array | undefined {
    const r = this.db.prepare(`SELECT request FROM deployments WHERE id = ?`).get(id) as { request: Buffer } | undefined;
    return r ? new Uint8Array(r.request) : undefined;
  }

  loadTombstones(): Map<number, number> {
    const rows = this.db.prepare(`SELECT id, version FROM tombstones`).all() as Array<{ id: number; version: number }>;
    return new Map(rows.map((r) => [r.id, r.version]));
  }

  /** Store a created or updated reservation and its event, in one durable transaction. */
  putDeployment(res: Reservation, request: Uint8Array, kind: "create" | "update"): void {
    this.applyDeploymentWrites([{ kind, res, request }]);
  }

  /** Delete a reservation, leave a tombstone with its version, record the event: one transaction. */
  deleteDeployment(res: Reservation, atMs: number): void {
    this.applyDeploymentWrites([{ kind: "delete", res, atMs }]);
  }

  /**
   * Group commit: apply admission writes in order, all in ONE transaction, so a batch of decisions
   * costs one fsync. All or nothing: on a full disk none is written (StoreError `store_full`).
   */
  applyDeploymentWrites(writes: readonly DeploymentWrite[]): void {
    if (writes.length === 0) return;
    this.applyWrites ??= this.db.transaction((ws: readonly DeploymentWrite[]) => {
      for (const w of ws) {
        if (w.kind === "delete") this.deleteRows(w.res, w.atMs);
        else this.putRows(w.res, w.request, w.kind);
      }
    });
    const tx = this.applyWrites;
    this.write(() => tx(writes));
  }

  /** the admission write path's transaction, made once */
  private applyWrites: ((writes: readonly DeploymentWrite[]) => void) | null = null;
  /** statements of the admission write path, prepared once (a CPU profile of group commits showed SQL parsing per write) */
  private readonly statements = new Map<string, Database.Statement>();
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  private putRows(res: Reservation, request: Uint8Array, kind: "create" | "update"): void {
    this.stmt(
      `INSERT INTO deployments (id, twin_id, version, units, hash, request, created_ms, updated_ms)
         VALUES (@id, @twinId, @version, @units, @hash, @request, @createdMs, @updatedMs)
         ON CONFLICT(id) DO UPDATE SET twin_id = excluded.twin_id, version = excluded.version, units = excluded.units,
           hash = excluded.hash, request = excluded.request, updated_ms = excluded.updated_ms`,
    ).run({ ...res, units: JSON.stringify(res.units), request: Buffer.from(request) });
    this.stmt(`DELETE FROM tombstones WHERE id = ?`).run(res.id);
    this.insertEvent(res.updatedMs, res.id, res.twinId, res.version, kind, res.units);
  }

  private deleteRows(res: Reservation, atMs: number): void {
    this.stmt(`DELETE FROM deployments WHERE id = ?`).run(res.id);
    this.stmt(`INSERT INTO tombstones (id, version, deleted_ms) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version, deleted_ms = excluded.deleted_ms`).run(res.id, res.version, atMs);
    this.insertEvent(atMs, res.id, res.twinId, res.version, "delete", NO_UNITS);
  }

  /**
   * Event times never go back: should the clock step back, an event keeps the time of the one
   * written before it, so "in force at t" (the last event before t) and "the events in [a, b)"
   * always agree and the usage meter bills one consistent timeline.
   */
  private insertEvent(atMs: number, id: number, twinId: number, version: number, kind: ReservationEvent["kind"], units: Units): void {
    this.stmt(
      `INSERT INTO reservation_events (at_ms, deployment_id, twin_id, version, kind, units)
         VALUES (MAX(?, COALESCE((SELECT at_ms FROM reservation_events ORDER BY seq DESC LIMIT 1), 0)), ?, ?, ?, ?, ?)`,
    ).run(atMs, id, twinId, version, kind, JSON.stringify(units));
  }

  /** Reservation events with fromMs <= at_ms < toMs, in order (their times never decrease: insertEvent). */
  reservationEvents(fromMs: number, toMs: number): ReservationEvent[] {
    const rows = this.db
      .prepare(`SELECT seq, at_ms, deployment_id, twin_id, version, kind, units FROM reservation_events WHERE at_ms >= ? AND at_ms < ? ORDER BY seq`)
      .all(fromMs, toMs) as Array<{ seq: number; at_ms: number; deployment_id: number; twin_id: number; version: number; kind: ReservationEvent["kind"]; units: string }>;
    return rows.map((r) => ({ seq: r.seq, atMs: r.at_ms, deploymentId: r.deployment_id, twinId: r.twin_id, version: r.version, kind: r.kind, units: JSON.parse(r.units) as Units }));
  }

  /** Reservations in force at `atMs`: the last event before it of every deployment, unless a delete; by deployment id. */
  reservationsAt(atMs: number): ReservationAt[] {
    const rows = this.db
      .prepare(
        `SELECT e.deployment_id, e.twin_id, e.version, e.kind, e.units FROM reservation_events e
         JOIN (SELECT deployment_id, MAX(seq) AS seq FROM reservation_events WHERE at_ms < ? GROUP BY deployment_id) last ON last.seq = e.seq
         ORDER BY e.deployment_id`,
      )
      .all(atMs) as Array<{ deployment_id: number; twin_id: number; version: number; kind: string; units: string }>;
    return rows.filter((r) => r.kind !== "delete").map((r) => ({ deploymentId: r.deployment_id, twinId: r.twin_id, version: r.version, units: JSON.parse(r.units) as Units }));
  }

  counter(name: string): number {
    const r = this.db.prepare(`SELECT value FROM counters WHERE name = ?`).get(name) as { value: number } | undefined;
    return r?.value ?? 0;
  }

  /**
   * Durably advance a counter by `step` and return the new value. Callers that hand out many
   * numbers may reserve a block (step > 1) and use it from memory: a restart then skips ahead and
   * never reuses a number.
   */
  advanceCounter(name: string, step = 1): number {
    return this.write(() =>
      this.db.transaction(() => {
        const next = this.counter(name) + step;
        this.db.prepare(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value`).run(name, next);
        return next;
      })(),
    );
  }

  getMeta(key: string): string | undefined {
    const r = this.db.prepare(`SELECT value FROM meta WHERE key = ?`).get(key) as { value: string } | undefined;
    return r?.value;
  }

  setMeta(key: string, value: string): void {
    this.write(() => this.db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(key, value));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
