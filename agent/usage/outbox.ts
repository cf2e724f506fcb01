import type { Units } from "../capacity/units";
import type { Store } from "../store/store";

/**
 * The usage tables of the agent's store (module "usage"): the agent's up-time intervals, the
 * proof outbox and the per-deployment records each proof commits to. Every write that matters is
 * one SQLite transaction in the store's WAL with synchronous=FULL, so it is on disk when it returns.
 */
const USAGE_SCHEMA = [
  `CREATE TABLE usage_uptime (id INTEGER PRIMARY KEY AUTOINCREMENT, start_ms INTEGER NOT NULL, alive_ms INTEGER NOT NULL);
   CREATE TABLE usage_proofs (
     sequence INTEGER PRIMARY KEY,
     period_start_ms INTEGER NOT NULL,
     period_end_ms INTEGER NOT NULL,
     header BLOB NOT NULL,
     envelope BLOB NOT NULL,
     hash BLOB NOT NULL,
     record_count INTEGER NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_code TEXT,
     created_ms INTEGER NOT NULL,
     delivered_ms INTEGER
   );
   CREATE INDEX usage_proofs_pending ON usage_proofs(state, sequence);
   CREATE TABLE usage_records (sequence INTEGER NOT NULL, idx INTEGER NOT NULL, deployment_id INTEGER NOT NULL, record BLOB NOT NULL, PRIMARY KEY (sequence, idx));
   CREATE INDEX usage_records_deployment ON usage_records(sequence, deployment_id);
   CREATE INDEX reservation_events_at ON reservation_events(at_ms);`,
];

/** Where metering goes on from: the end of the last proof (or the agent's first start), its sequence and hash. */
export interface ChainHead {
  sequence: number;
  periodEndMs: number;
  hash: Uint8Array;
}

export interface OutboxProof {
  sequence: number;
  periodStartMs: number;
  periodEndMs: number;
  header: Uint8Array;
  envelope: Uint8Array;
  hash: Uint8Array;
  recordCount: number;
  state: "pending" | "delivered";
  attempts: number;
  lastCode: string | null;
  createdMs: number;
  deliveredMs: number | null;
}

export interface ReservationAt {
  deploymentId: number;
  twinId: number;
  version: number;
  units: Units;
}

export interface ReservationChange extends ReservationAt {
  atMs: number;
  kind: "create" | "update" | "delete";
}

const HEAD_KEY = "usage.head";

interface ProofRow {
  sequence: number;
  period_start_ms: number;
  period_end_ms: number;
  header: Buffer;
  envelope: Buffer;
  hash: Buffer;
  record_count: number;
  state: "pending" | "delivered";
  attempts: number;
  last_code: string | null;
  created_ms: number;
  delivered_ms: number | null;
}

function rowToProof(r: ProofRow): OutboxProof {
  return {
    sequence: r.sequence,
    periodStartMs: r.period_start_ms,
    periodEndMs: r.period_end_ms,
    header: new Uint8Array(r.header),
    envelope: new Uint8Array(r.envelope),
    hash: new Uint8Array(r.hash),
    recordCount: r.record_count,
    state: r.state,
    attempts: r.attempts,
    lastCode: r.last_code,
    createdMs: r.created_ms,
    deliveredMs: r.delivered_ms,
  };
}

/** What the outbox uses of the store: its SQLite handle and durable writes, schema, meta, reservation events. */
export type OutboxStore = Pick<Store, "db" | "write" | "ensureSchema" | "getMeta" | "setMeta" | "reservationEvents">;

export class UsageOutbox {
  constructor(private readonly store: OutboxStore) {
    store.ensureSchema("usage", USAGE_SCHEMA);
  }

  private get db() {
    return this.store.db;
  }

  /** The chain head metering continues from; undefined before the first start. */
  head(): ChainHead | undefined {
    const v = this.store.getMeta(HEAD_KEY);
    if (!v) return undefined;
    const o = JSON.parse(v) as { sequence: number; periodEndMs: number; hash: string };
    return { sequence: o.sequence, periodEndMs: o.periodEndMs, hash: new Uint8Array(Buffer.from(o.hash, "hex")) };
  }

  private writeHead(h: ChainHead): void {
    this.store.setMeta(HEAD_KEY, JSON.stringify({ sequence: h.sequence, periodEndMs: h.periodEndMs, hash: Buffer.from(h.hash).toString("hex") }));
  }

  /** Set the head when there is none yet (first start), or adopt the chain's (the store was lost). */
  setHead(h: ChainHead): void {
    this.writeHead(h);
  }

  /** Start an up-time interval; returns its id (alive marks update it). */
  beginUptime(nowMs: number): number {
    return this.store.write(() => Number(this.db.prepare(`INSERT INTO usage_uptime (start_ms, alive_ms) VALUES (?, ?)`).run(nowMs, nowMs).lastInsertRowid));
  }

  markAlive(id: number, nowMs: number): void {
    this.store.write(() => this.db.prepare(`UPDATE usage_uptime SET alive_ms = MAX(alive_ms, ?) WHERE id = ?`).run(nowMs, id));
  }

  /** Up-time intervals overlapping [fromMs, toMs). */
  uptime(fromMs: number, toMs: number): Array<[number, number]> {
    const rows = this.db.prepare(`SELECT start_ms, alive_ms FROM usage_uptime WHERE alive_ms > ? AND start_ms < ? ORDER BY start_ms`).all(fromMs, toMs) as Array<{ start_ms: number; alive_ms: number }>;
    return rows.map((r) => [r.start_ms, r.alive_ms]);
  }

  /** Reservations in force at `atMs`: the last change before it of every deployment, unless a delete. */
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

  /** Reservation changes with fromMs <= at < toMs, in order (the store keeps their times non-decreasing). */
  changes(fromMs: number, toMs: number): ReservationChange[] {
    return this.store.reservationEvents(fromMs, toMs).map((e) => ({ atMs: e.atMs, deploymentId: e.deploymentId, twinId: e.twinId, version: e.version, kind: e.kind, units: JSON.parse(e.units) as Units }));
  }

  /**
   * Put a built proof in the outbox and move the head past it, in ONE transaction: the sequence is
   * taken and the proof is on disk before anything is sent, and a sequence is never used twice.
   */
  append(p: { sequence: number; periodStartMs: number; periodEndMs: number; header: Uint8Array; envelope: Uint8Array; hash: Uint8Array; records: Array<{ deploymentId: number; bytes: Uint8Array }> }, nowMs: number): void {
    // a full disk: StoreError store_full and nothing written (the period stays open)
    this.store.write(() => this.db.transaction(() => {
      const head = this.head();
      if (head && (p.sequence !== head.sequence + 1 || p.periodStartMs !== head.periodEndMs)) {
        throw new Error(`proof ${p.sequence} [${p.periodStartMs}, ${p.periodEndMs}) does not follow the head ${head.sequence} ending at ${head.periodEndMs}`);
      }
      this.db
        .prepare(`INSERT INTO usage_proofs (sequence, period_start_ms, period_end_ms, header, envelope, hash, record_count, state, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)`)
        .run(p.sequence, p.periodStartMs, p.periodEndMs, Buffer.from(p.header), Buffer.from(p.envelope), Buffer.from(p.hash), p.records.length, nowMs);
      const ins = this.db.prepare(`INSERT INTO usage_records (sequence, idx, deployment_id, record) VALUES (?, ?, ?, ?)`);
      p.records.forEach((r, i) => ins.run(p.sequence, i, r.deploymentId, Buffer.from(r.bytes)));
      this.writeHead({ sequence: p.sequence, periodEndMs: p.periodEndMs, hash: p.hash });
    })());
  }

  /** The oldest proof not yet acknowledged by the chain. */
  nextPending(): OutboxProof | undefined {
    const r = this.db.prepare(`SELECT * FROM usage_proofs WHERE state = 'pending' ORDER BY sequence LIMIT 1`).get() as ProofRow | undefined;
    return r ? rowToProof(r) : undefined;
  }

  pendingCount(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM usage_proofs WHERE state = 'pending'`).get() as { n: number }).n;
  }

  /** The highest sequence the chain acknowledged (0: none). */
  deliveredSequence(): number {
    return (this.db.prepare(`SELECT COALESCE(MAX(sequence), 0) AS s FROM usage_proofs WHERE state = 'delivered'`).get() as { s: number }).s;
  }

  markDelivered(sequence: number, code: string, nowMs: number): void {
    this.store.write(() => this.db.prepare(`UPDATE usage_proofs SET state = 'delivered', attempts = attempts + 1, last_code = ?, delivered_ms = ? WHERE sequence = ?`).run(code, nowMs, sequence));
  }

  markAttempt(sequence: number, code: string): void {
    this.store.write(() => this.db.prepare(`UPDATE usage_proofs SET attempts = attempts + 1, last_code = ? WHERE sequence = ?`).run(code, sequence));
  }

  proof(sequence: number): OutboxProof | undefined {
    const r = this.db.prepare(`SELECT * FROM usage_proofs WHERE sequence = ?`).get(sequence) as ProofRow | undefined;
    return r ? rowToProof(r) : undefined;
  }

  proofs(fromSequence: number, limit: number): OutboxProof[] {
    return (this.db.prepare(`SELECT * FROM usage_proofs WHERE sequence >= ? ORDER BY sequence LIMIT ?`).all(fromSequence, limit) as ProofRow[]).map(rowToProof);
  }

  /** Every record (encoded) of a proof, in leaf order. */
  records(sequence: number): Array<{ deploymentId: number; bytes: Uint8Array }> {
    const rows = this.db.prepare(`SELECT deployment_id, record FROM usage_records WHERE sequence = ? ORDER BY idx`).all(sequence) as Array<{ deployment_id: number; record: Buffer }>;
    return rows.map((r) => ({ deploymentId: r.deployment_id, bytes: new Uint8Array(r.record) }));
  }

  /** At most `limit` records of a proof from leaf index `start` on, in leaf order (one page of the audit listing). */
  recordsPage(sequence: number, start: number, limit: number): Uint8Array[] {
    const rows = this.db.prepare(`SELECT record FROM usage_records WHERE sequence = ? AND idx >= ? ORDER BY idx LIMIT ?`).all(sequence, start, limit) as Array<{ record: Buffer }>;
    return rows.map((r) => new Uint8Array(r.record));
  }
}
