import type { BuiltProof, ProofHead } from "../proofs/build";
import type { Store } from "../store/store";

/**
 * Owner of the proof tables of the agent's store (schema module "usage"): `usage_proofs` (the
 * proof outbox: each proof, its envelope and its delivery state), `usage_records` (the records every
 * proof commits to, served to auditors) and `usage_head` (where the next proof goes on from; one
 * row). The module's `usage_debts` is read and written by TwinDebts (./debts.ts). They change together: appending a proof writes it, its records and the new head in one
 * transaction. Nothing else reads or writes them. Every write is one SQLite transaction in the
 * store's WAL with synchronous=FULL, so it is on disk when it returns.
 *
 * Not here: the reservation events (the store's, read through Store.reservationsAt and
 * Store.reservationEvents) and the up-time intervals (UptimeLog, ./uptime.ts).
 */
const USAGE_SCHEMA = [
  // version 1 as agents before the table owners were split applied it, less what now has another
  // owner: usage_uptime (UptimeLog's "uptime" module) and the index reservation_events_at (the
  // store's "core" module, step 5). Both are made IF NOT EXISTS there, so stores of either age agree.
  `CREATE TABLE usage_proofs (
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
   CREATE INDEX usage_records_deployment ON usage_records(sequence, deployment_id);`,
  // version 2: the head moves from the store's generic meta table (key "usage.head", JSON with the
  // hash in hex) to its own one-row table
  `CREATE TABLE usage_head (id INTEGER PRIMARY KEY CHECK (id = 1), sequence INTEGER NOT NULL, period_end_ms INTEGER NOT NULL, hash BLOB NOT NULL);
   INSERT INTO usage_head (id, sequence, period_end_ms, hash)
     SELECT 1, json_extract(value, '$.sequence'), json_extract(value, '$.periodEndMs'), unhex(json_extract(value, '$.hash')) FROM meta WHERE key = 'usage.head';
   DELETE FROM meta WHERE key = 'usage.head';`,
  // version 3: the twins the chain says are in debt, with their grace ends (TwinDebts, ./debts.ts),
  // so a restart neither forgets a grace nor deletes a twin's deployments twice
  `CREATE TABLE usage_debts (twin_id INTEGER PRIMARY KEY, grace_end_ms INTEGER NOT NULL, expired INTEGER NOT NULL);`,
];

/** Where metering goes on from: the end of the last proof (or the agent's first start), its sequence and hash. */
export type ChainHead = ProofHead;

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
export type OutboxStore = Pick<Store, "db" | "write" | "ensureSchema">;

export class UsageOutbox {
  constructor(private readonly store: OutboxStore) {
    store.ensureSchema("usage", USAGE_SCHEMA);
  }

  private get db() {
    return this.store.db;
  }

  /** The chain head metering continues from; undefined before the first start. */
  head(): ChainHead | undefined {
    const r = this.db.prepare(`SELECT sequence, period_end_ms, hash FROM usage_head WHERE id = 1`).get() as { sequence: number; period_end_ms: number; hash: Buffer } | undefined;
    return r ? { sequence: r.sequence, periodEndMs: r.period_end_ms, hash: new Uint8Array(r.hash) } : undefined;
  }

  private writeHead(h: ChainHead): void {
    this.db
      .prepare(`INSERT INTO usage_head (id, sequence, period_end_ms, hash) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET sequence = excluded.sequence, period_end_ms = excluded.period_end_ms, hash = excluded.hash`)
      .run(h.sequence, h.periodEndMs, Buffer.from(h.hash));
  }

  /** Set the head when there is none yet (first start), or adopt the chain's (the store was lost). */
  setHead(h: ChainHead): void {
    this.store.write(() => this.writeHead(h));
  }

  /**
   * Put a built proof in the outbox and move the head past it, in ONE transaction: the sequence is
   * taken and the proof is on disk before anything is sent, and a sequence is never used twice.
   */
  append(p: BuiltProof, nowMs: number): void {
    const { sequence, periodStartMs, periodEndMs } = p.header;
    // a full disk: StoreError store_full and nothing written (the period stays open)
    this.store.write(() => this.db.transaction(() => {
      const head = this.head();
      if (head && (sequence !== head.sequence + 1 || periodStartMs !== head.periodEndMs)) {
        throw new Error(`proof ${sequence} [${periodStartMs}, ${periodEndMs}) does not follow the head ${head.sequence} ending at ${head.periodEndMs}`);
      }
      this.db
        .prepare(`INSERT INTO usage_proofs (sequence, period_start_ms, period_end_ms, header, envelope, hash, record_count, state, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)`)
        .run(sequence, periodStartMs, periodEndMs, Buffer.from(p.headerBytes), Buffer.from(p.envelope), Buffer.from(p.hash), p.records.length, nowMs);
      const ins = this.db.prepare(`INSERT INTO usage_records (sequence, idx, deployment_id, record) VALUES (?, ?, ?, ?)`);
      p.records.forEach((r, i) => ins.run(sequence, i, r.deploymentId, Buffer.from(r.bytes)));
      this.writeHead({ sequence, periodEndMs, hash: p.hash });
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
