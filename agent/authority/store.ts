import * as path from "node:path";
import Database from "better-sqlite3";
import type { Units } from "../capacity/units";
import { SCHEME_WIRE, schemeFromWire, type SchemeName } from "../identity/keys";
import { amountsFromWire, amountsToWire, proofHash } from "../proofs/proof";
import { StoreError } from "../store/errors";
import { ensureSchema, openDatabase } from "../store/store";
import { decode, encode, unitsFromWire, unitsToWire } from "../wire/codec";
import type { TwinBill } from "../chain/wire";
import type { TwinCharge } from "./billing";
import { parsePricing, pricingToJson, type PricingInput, type PricingPolicy } from "../billing/pricing";
import { debtSince } from "../billing/grace";
import type { ChainFarmRecord, ChainNodeRecord, ChainTwinRecord, NodeChainState } from "./rules";

/** What accepting one proof charges (checked by billing.ts checkSettlement, priced by billing/pricing.ts). */
export interface ProofBilling {
  farmId: number;
  periodStartMs: number;
  periodEndMs: number;
  charges: TwinCharge[];
  /** the version of the pricing policy the charges were priced with (pricing_versions) */
  pricingVersion: number;
}

/**
 * The chain stand-in's own durable store: SQLite (chain.db in the chain's data directory) in WAL
 * mode with synchronous=FULL, like the agent's store (agent/store/store.ts): a transaction is on
 * disk when commit returns, a crash leaves all of an accepted proof or none of it, and a corrupt
 * store or one written by a newer version is refused (StoreError), never reset.
 *
 * What it keeps is what a pallet would keep: one small entry per twin, per farm and per node (the
 * node's entry holds its proof chain head), the accepted proof headers (signed envelopes), the events the
 * chain emitted, and counters of refusals by code.
 */
export const CHAIN_STORE_FORMAT = 1;
export const CHAIN_STORE_FILE = "chain.db";

export const CHAIN_MIGRATIONS = [
  `CREATE TABLE twins (
     twin_id INTEGER PRIMARY KEY,
     public_key BLOB NOT NULL,
     scheme INTEGER NOT NULL,
     registered_ms INTEGER NOT NULL,
     updated_ms INTEGER NOT NULL,
     last_call_ms INTEGER NOT NULL
   );
   CREATE TABLE nodes (
     node_id INTEGER PRIMARY KEY,
     public_key BLOB NOT NULL,
     scheme INTEGER NOT NULL,
     farm_id INTEGER NOT NULL,
     twin_id INTEGER NOT NULL,
     total BLOB NOT NULL,
     registered_ms INTEGER NOT NULL,
     updated_ms INTEGER NOT NULL,
     capacity_updated_ms INTEGER NOT NULL,
     last_call_ms INTEGER NOT NULL,
     last_sequence INTEGER NOT NULL,
     last_period_end_ms INTEGER NOT NULL,
     last_hash BLOB NOT NULL,
     max_capacity BLOB NOT NULL
   );
   CREATE TABLE proofs (
     node_id INTEGER NOT NULL,
     sequence INTEGER NOT NULL,
     proof BLOB NOT NULL,
     accepted_ms INTEGER NOT NULL,
     PRIMARY KEY (node_id, sequence)
   ) WITHOUT ROWID;
   CREATE TABLE events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at_ms INTEGER NOT NULL,
     kind TEXT NOT NULL,
     event BLOB NOT NULL
   );
   CREATE TABLE refusals (code TEXT PRIMARY KEY, count INTEGER NOT NULL);`,
  // 2: farms, as tfchain keeps them (a farm belongs to a twin); nodes counted per farm
  `CREATE TABLE farms (
     farm_id INTEGER PRIMARY KEY,
     twin_id INTEGER NOT NULL,
     name TEXT NOT NULL,
     registered_ms INTEGER NOT NULL,
     updated_ms INTEGER NOT NULL,
     last_call_ms INTEGER NOT NULL
   );
   CREATE INDEX nodes_by_farm ON nodes (farm_id);`,
  // 3: ids assigned by the chain: twins found by key, nodes by twin, farms by name and owner;
  // farm admission (open, allowed twins as a JSON array of ids)
  `ALTER TABLE farms ADD COLUMN open INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE farms ADD COLUMN allowed_twins TEXT NOT NULL DEFAULT '[]';
   CREATE INDEX twins_by_key ON twins (public_key, scheme);
   CREATE INDEX nodes_by_twin ON nodes (twin_id);
   CREATE INDEX farms_by_name ON farms (name);
   CREATE INDEX farms_by_twin ON farms (twin_id);`,
  // 4: billing (docs/billing.md): a balance per twin and per farm; per accepted proof one balance
  // change per twin billed (its subtotal's amounts as an encoded UsageAmounts) and one bill summary
  // per node; nothing per deployment. Amounts are decimal TEXT (bigint, may be negative: debt).
  `CREATE TABLE balances (
     twin_id INTEGER PRIMARY KEY,
     balance TEXT NOT NULL
   );
   CREATE TABLE farm_balances (
     farm_id INTEGER PRIMARY KEY,
     balance TEXT NOT NULL
   );
   CREATE TABLE twin_bills (
     twin_id INTEGER NOT NULL,
     node_id INTEGER NOT NULL,
     sequence INTEGER NOT NULL,
     amount TEXT NOT NULL,
     amounts BLOB NOT NULL,
     record_count INTEGER NOT NULL,
     balance_after TEXT NOT NULL,
     code TEXT NOT NULL,
     PRIMARY KEY (twin_id, node_id, sequence)
   ) WITHOUT ROWID;
   CREATE TABLE node_bills (
     node_id INTEGER NOT NULL,
     sequence INTEGER NOT NULL,
     farm_id INTEGER NOT NULL,
     period_start_ms INTEGER NOT NULL,
     period_end_ms INTEGER NOT NULL,
     twin_count INTEGER NOT NULL,
     amount TEXT NOT NULL,
     PRIMARY KEY (node_id, sequence)
   ) WITHOUT ROWID;`,
  // 5: power state and target per node, as the node reports them (node.power, docs/power.md)
  `ALTER TABLE nodes ADD COLUMN power_state INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE nodes ADD COLUMN power_target INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE nodes ADD COLUMN power_changed_ms INTEGER NOT NULL DEFAULT 0;`,
  // 6: pricing policy versions (docs/billing.md "Policy versions"): every policy the chain priced
  // with, numbered from 1; each bill and bill summary names the version it was priced with (0: a
  // bill from before versions, priced with the policy of that time, which was not kept)
  `CREATE TABLE pricing_versions (
     version INTEGER PRIMARY KEY,
     policy TEXT NOT NULL,
     since_ms INTEGER NOT NULL
   );
   ALTER TABLE twin_bills ADD COLUMN pricing_version INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE node_bills ADD COLUMN pricing_version INTEGER NOT NULL DEFAULT 0;`,
  // 7: grace (docs/billing.md "Grace"): since when each twin in debt is (a row while its balance is
  // below zero); the tfchain verifier's verdict on each proof remark it judged, for nodes that ask
  `CREATE TABLE debts (
     twin_id INTEGER PRIMARY KEY,
     since_ms INTEGER NOT NULL
   );
   CREATE TABLE verdicts (
     node_id INTEGER NOT NULL,
     sequence INTEGER NOT NULL,
     ok INTEGER NOT NULL,
     code TEXT NOT NULL,
     block INTEGER NOT NULL,
     PRIMARY KEY (node_id, sequence)
   ) WITHOUT ROWID;`,
];

export const CHAIN_TABLES = ["twins", "nodes", "proofs", "events", "refusals", "farms", "balances", "farm_balances", "twin_bills", "node_bills", "pricing_versions", "debts", "verdicts"] as const;
export type ChainTable = (typeof CHAIN_TABLES)[number];

/** A signed event to record with a change (stored in `events` in the same transaction). */
export interface ChainEventRecord {
  kind: string;
  atMs: number;
  /** the Signed{ChainEvent} envelope as published */
  bytes: Uint8Array;
}

export interface StoredChainProof {
  sequence: number;
  /** the Signed{UsageProof} envelope as accepted */
  proof: Uint8Array;
  acceptedMs: number;
}

interface TwinRow {
  twin_id: number;
  public_key: Buffer;
  scheme: number;
  registered_ms: number;
  updated_ms: number;
  last_call_ms: number;
}

interface FarmRow {
  farm_id: number;
  twin_id: number;
  name: string;
  open: number;
  allowed_twins: string;
  registered_ms: number;
  updated_ms: number;
  last_call_ms: number;
}

interface NodeRow {
  node_id: number;
  public_key: Buffer;
  scheme: number;
  farm_id: number;
  twin_id: number;
  total: Buffer;
  registered_ms: number;
  updated_ms: number;
  capacity_updated_ms: number;
  last_call_ms: number;
  last_sequence: number;
  last_period_end_ms: number;
  last_hash: Buffer;
  max_capacity: Buffer;
}

function unitsBytes(u: Units): Buffer {
  return Buffer.from(encode("Units", unitsToWire(u)));
}

function unitsOf(b: Buffer, field: string): Units {
  return unitsFromWire(decode("Units", new Uint8Array(b), { maxBytes: 1024 }), field);
}

function schemeOf(n: number, file: string): SchemeName {
  const s = schemeFromWire(n);
  if (!s) throw new StoreError("corrupt", file, `the chain store ${file} holds an unknown key scheme ${n}`);
  return s;
}

export class ChainStore {
  readonly db: Database.Database;
  readonly file: string;

  private constructor(db: Database.Database, file: string) {
    this.db = db;
    this.file = file;
  }

  /**
   * Open (or create) chain.db in `dir`. A file that is not a sound SQLite database, or one written
   * by a newer version, is refused with a StoreError (code corrupt, newer_schema, locked or io).
   */
  static open(dir: string): ChainStore {
    const file = path.join(dir, CHAIN_STORE_FILE);
    const db = openDatabase(file, "chain store", CHAIN_STORE_FORMAT);
    try {
      ensureSchema(db, file, "chain", CHAIN_MIGRATIONS);
    } catch (err) {
      db.close();
      throw err;
    }
    return new ChainStore(db, file);
  }

  private twinOf(r: TwinRow | undefined): ChainTwinRecord | undefined {
    if (!r) return undefined;
    return { twinId: r.twin_id, publicKey: new Uint8Array(r.public_key), scheme: schemeOf(r.scheme, this.file), registeredMs: r.registered_ms, updatedMs: r.updated_ms, lastCallMs: r.last_call_ms };
  }

  twin(twinId: number): ChainTwinRecord | undefined {
    return this.twinOf(this.db.prepare(`SELECT * FROM twins WHERE twin_id = ?`).get(twinId) as TwinRow | undefined);
  }

  /** The twin bound to a key (the lowest id, should an old store hold several). */
  twinByKey(publicKey: Uint8Array, scheme: SchemeName): ChainTwinRecord | undefined {
    return this.twinOf(this.db.prepare(`SELECT * FROM twins WHERE public_key = ? AND scheme = ? ORDER BY twin_id LIMIT 1`).get(Buffer.from(publicKey), SCHEME_WIRE[scheme]) as TwinRow | undefined);
  }

  /** The id the next new row of `table` gets: one above the largest (ids start at 1). */
  nextId(table: "twins" | "farms" | "nodes"): number {
    const col = table === "twins" ? "twin_id" : table === "farms" ? "farm_id" : "node_id";
    return (this.db.prepare(`SELECT COALESCE(MAX(${col}), 0) + 1 AS n FROM ${table}`).get() as { n: number }).n;
  }

  private farmOf(r: FarmRow | undefined): ChainFarmRecord | undefined {
    if (!r) return undefined;
    let allowed: unknown;
    try {
      allowed = JSON.parse(r.allowed_twins);
    } catch {
      allowed = undefined;
    }
    if (!Array.isArray(allowed) || !allowed.every((t) => Number.isInteger(t))) throw new StoreError("corrupt", this.file, `the chain store ${this.file} holds a bad allow list for farm ${r.farm_id}`);
    return { farmId: r.farm_id, twinId: r.twin_id, name: r.name, open: r.open !== 0, allowedTwins: allowed as number[], registeredMs: r.registered_ms, updatedMs: r.updated_ms, lastCallMs: r.last_call_ms };
  }

  farm(farmId: number): ChainFarmRecord | undefined {
    return this.farmOf(this.db.prepare(`SELECT * FROM farms WHERE farm_id = ?`).get(farmId) as FarmRow | undefined);
  }

  farmByName(name: string): ChainFarmRecord | undefined {
    return this.farmOf(this.db.prepare(`SELECT * FROM farms WHERE name = ? ORDER BY farm_id LIMIT 1`).get(name) as FarmRow | undefined);
  }

  /** How many farms twin `twinId` owns. */
  farmCountOfTwin(twinId: number): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM farms WHERE twin_id = ?`).get(twinId) as { n: number }).n;
  }

  /** The node of twin `twinId` (the lowest id, should an old store hold several). */
  nodeByTwin(twinId: number): { record: ChainNodeRecord; state: NodeChainState } | undefined {
    const r = this.db.prepare(`SELECT node_id FROM nodes WHERE twin_id = ? ORDER BY node_id LIMIT 1`).get(twinId) as { node_id: number } | undefined;
    return r ? this.node(r.node_id) : undefined;
  }

  /** How many registered nodes name farm `farmId` (registered or not). */
  farmNodeCount(farmId: number): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM nodes WHERE farm_id = ?`).get(farmId) as { n: number }).n;
  }

  node(nodeId: number): { record: ChainNodeRecord; state: NodeChainState } | undefined {
    const r = this.db.prepare(`SELECT * FROM nodes WHERE node_id = ?`).get(nodeId) as NodeRow | undefined;
    if (!r) return undefined;
    return {
      record: {
        nodeId: r.node_id,
        farmId: r.farm_id,
        twinId: r.twin_id,
        publicKey: new Uint8Array(r.public_key),
        scheme: schemeOf(r.scheme, this.file),
        total: unitsOf(r.total, "total"),
        registeredMs: r.registered_ms,
        updatedMs: r.updated_ms,
        capacityUpdatedMs: r.capacity_updated_ms,
        lastCallMs: r.last_call_ms,
      },
      state: { lastSequence: r.last_sequence, lastPeriodEndMs: r.last_period_end_ms, lastHash: new Uint8Array(r.last_hash), maxCapacity: unitsOf(r.max_capacity, "max_capacity") },
    };
  }

  /** A node's power as it last reported it (wire values: 1 up, 2 standby); undefined for an unknown node. */
  nodePower(nodeId: number): { state: number; target: number; changedMs: number } | undefined {
    const r = this.db.prepare(`SELECT power_state, power_target, power_changed_ms FROM nodes WHERE node_id = ?`).get(nodeId) as { power_state: number; power_target: number; power_changed_ms: number } | undefined;
    return r ? { state: r.power_state, target: r.power_target, changedMs: r.power_changed_ms } : undefined;
  }

  setNodePower(nodeId: number, state: number, target: number, atMs: number): void {
    this.db.prepare(`UPDATE nodes SET power_state = ?, power_target = ?, power_changed_ms = ? WHERE node_id = ?`).run(state, target, atMs, nodeId);
  }

  /** Store a twin (new or refreshed) and, when given, the event it caused: one transaction. */
  putTwin(t: ChainTwinRecord, event?: ChainEventRecord): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO twins (twin_id, public_key, scheme, registered_ms, updated_ms, last_call_ms) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(twin_id) DO UPDATE SET public_key = excluded.public_key, scheme = excluded.scheme, updated_ms = excluded.updated_ms, last_call_ms = excluded.last_call_ms`,
        )
        .run(t.twinId, Buffer.from(t.publicKey), SCHEME_WIRE[t.scheme], t.registeredMs, t.updatedMs, t.lastCallMs);
      if (event) this.insertEvent(event);
    })();
  }

  /** Store a farm (new, renamed or refreshed) and, when given, the event it caused: one transaction. */
  putFarm(f: ChainFarmRecord, event?: ChainEventRecord): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO farms (farm_id, twin_id, name, open, allowed_twins, registered_ms, updated_ms, last_call_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(farm_id) DO UPDATE SET twin_id = excluded.twin_id, name = excluded.name, open = excluded.open, allowed_twins = excluded.allowed_twins,
             updated_ms = excluded.updated_ms, last_call_ms = excluded.last_call_ms`,
        )
        .run(f.farmId, f.twinId, f.name, f.open ? 1 : 0, JSON.stringify(f.allowedTwins), f.registeredMs, f.updatedMs, f.lastCallMs);
      if (event) this.insertEvent(event);
    })();
  }

  /** Store a node's registration and state (new or updated) and, when given, its event: one transaction. */
  putNode(n: ChainNodeRecord, s: NodeChainState, event?: ChainEventRecord): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO nodes (node_id, public_key, scheme, farm_id, twin_id, total, registered_ms, updated_ms, capacity_updated_ms, last_call_ms,
                              last_sequence, last_period_end_ms, last_hash, max_capacity)
           VALUES (@nodeId, @publicKey, @scheme, @farmId, @twinId, @total, @registeredMs, @updatedMs, @capacityUpdatedMs, @lastCallMs,
                   @lastSequence, @lastPeriodEndMs, @lastHash, @maxCapacity)
           ON CONFLICT(node_id) DO UPDATE SET public_key = excluded.public_key, scheme = excluded.scheme, farm_id = excluded.farm_id,
             twin_id = excluded.twin_id, total = excluded.total, updated_ms = excluded.updated_ms, capacity_updated_ms = excluded.capacity_updated_ms,
             last_call_ms = excluded.last_call_ms, last_sequence = excluded.last_sequence, last_period_end_ms = excluded.last_period_end_ms,
             last_hash = excluded.last_hash, max_capacity = excluded.max_capacity`,
        )
        .run({
          nodeId: n.nodeId,
          publicKey: Buffer.from(n.publicKey),
          scheme: SCHEME_WIRE[n.scheme],
          farmId: n.farmId,
          twinId: n.twinId,
          total: unitsBytes(n.total),
          registeredMs: n.registeredMs,
          updatedMs: n.updatedMs,
          capacityUpdatedMs: n.capacityUpdatedMs,
          lastCallMs: n.lastCallMs,
          lastSequence: s.lastSequence,
          lastPeriodEndMs: s.lastPeriodEndMs,
          lastHash: Buffer.from(s.lastHash),
          maxCapacity: unitsBytes(s.maxCapacity),
        });
      if (event) this.insertEvent(event);
    })();
  }

  /**
   * Accept a proof: advance the node's state, keep the proof envelope and record the event, in ONE
   * durable transaction. A second proof with the same (node, sequence) violates the primary key
   * and rolls the whole transaction back.
   */
  acceptProof(nodeId: number, state: NodeChainState, proof: Uint8Array, acceptedMs: number, event: ChainEventRecord, billing?: ProofBilling): TwinBill[] {
    return this.db.transaction(() => {
      const r = this.db
        .prepare(`UPDATE nodes SET last_sequence = ?, last_period_end_ms = ?, last_hash = ?, max_capacity = ? WHERE node_id = ?`)
        .run(state.lastSequence, state.lastPeriodEndMs, Buffer.from(state.lastHash), unitsBytes(state.maxCapacity), nodeId);
      if (r.changes !== 1) throw new Error(`node ${nodeId} is not in the chain store`);
      this.db.prepare(`INSERT INTO proofs (node_id, sequence, proof, accepted_ms) VALUES (?, ?, ?, ?)`).run(nodeId, state.lastSequence, Buffer.from(proof), acceptedMs);
      this.insertEvent(event);
      return billing ? this.charge(nodeId, state.lastSequence, billing, acceptedMs) : [];
    })();
  }

  /** Debit each twin, credit the farm, record the balance changes and the node's bill summary (inside acceptProof's transaction). */
  private charge(nodeId: number, sequence: number, b: ProofBilling, nowMs: number): TwinBill[] {
    const bills: TwinBill[] = [];
    let total = 0n;
    const putBalance = this.db.prepare(`INSERT INTO balances (twin_id, balance) VALUES (?, ?) ON CONFLICT (twin_id) DO UPDATE SET balance = excluded.balance`);
    const putBill = this.db.prepare(`INSERT INTO twin_bills (twin_id, node_id, sequence, amount, amounts, record_count, balance_after, code, pricing_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    for (const c of b.charges) {
      const before = this.balance(c.twinId);
      const after = before - c.amount;
      // debt: the balance did not cover the bill (it goes below zero; the twin is in grace)
      const code = after < 0n ? "twin_in_debt" : "";
      putBalance.run(c.twinId, after.toString());
      this.trackDebt(c.twinId, after, nowMs);
      putBill.run(c.twinId, nodeId, sequence, c.amount.toString(), Buffer.from(encode("UsageAmounts", amountsToWire(c.amounts))), c.recordCount, after.toString(), code, b.pricingVersion);
      total += c.amount;
      bills.push({ twinId: c.twinId, nodeId, sequence, periodStartMs: b.periodStartMs, periodEndMs: b.periodEndMs, farmId: b.farmId, recordCount: c.recordCount, amounts: c.amounts, amount: c.amount, balanceAfter: after, code, pricingVersion: b.pricingVersion });
    }
    const farm = this.farmBalance(b.farmId) + total;
    this.db.prepare(`INSERT INTO farm_balances (farm_id, balance) VALUES (?, ?) ON CONFLICT (farm_id) DO UPDATE SET balance = excluded.balance`).run(b.farmId, farm.toString());
    this.db
      .prepare(`INSERT INTO node_bills (node_id, sequence, farm_id, period_start_ms, period_end_ms, twin_count, amount, pricing_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(nodeId, sequence, b.farmId, b.periodStartMs, b.periodEndMs, b.charges.length, total.toString(), b.pricingVersion);
    return bills;
  }

  /** Keep `debts` in step with a twin's new balance: grace starts when it goes below zero and ends at zero or above. */
  private trackDebt(twinId: number, balance: bigint, nowMs: number): void {
    const since = debtSince(this.debtSince(twinId), balance, nowMs);
    if (since === undefined) this.db.prepare(`DELETE FROM debts WHERE twin_id = ?`).run(twinId);
    else this.db.prepare(`INSERT INTO debts (twin_id, since_ms) VALUES (?, ?) ON CONFLICT (twin_id) DO NOTHING`).run(twinId, since);
  }

  /** Since when the twin is in debt (chain clock, ms); undefined when it is not. */
  debtSince(twinId: number): number | undefined {
    const r = this.db.prepare(`SELECT since_ms FROM debts WHERE twin_id = ?`).get(twinId) as { since_ms: number } | undefined;
    return r?.since_ms;
  }

  /** Twins billed in node `nodeId`'s proof `sequence`, by id. */
  twinsBilledIn(nodeId: number, sequence: number): number[] {
    return (this.db.prepare(`SELECT twin_id FROM twin_bills WHERE node_id = ? AND sequence = ? ORDER BY twin_id`).all(nodeId, sequence) as Array<{ twin_id: number }>).map((r) => r.twin_id);
  }

  /**
   * Record the verifier's verdict on a node's proof remark. An accepted verdict is never replaced
   * (the same proof carried again is judged duplicate; another proof with that sequence is refused).
   */
  putVerdict(nodeId: number, sequence: number, ok: boolean, code: string, block: number): void {
    this.db
      .prepare(`INSERT INTO verdicts (node_id, sequence, ok, code, block) VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_id, sequence) DO UPDATE SET ok = excluded.ok, code = excluded.code, block = excluded.block WHERE verdicts.ok = 0`)
      .run(nodeId, sequence, ok ? 1 : 0, code, block);
  }

  verdict(nodeId: number, sequence: number): { ok: boolean; code: string; block: number } | undefined {
    const r = this.db.prepare(`SELECT ok, code, block FROM verdicts WHERE node_id = ? AND sequence = ?`).get(nodeId, sequence) as { ok: number; code: string; block: number } | undefined;
    return r && { ok: r.ok !== 0, code: r.code, block: r.block };
  }

  /** A twin's balance in the smallest unit (0 when it was never funded nor billed). */
  balance(twinId: number): bigint {
    const r = this.db.prepare(`SELECT balance FROM balances WHERE twin_id = ?`).get(twinId) as { balance: string } | undefined;
    return r ? BigInt(r.balance) : 0n;
  }

  /** Whether the chain keeps a balance for this twin (it was funded or billed). */
  hasBalance(twinId: number): boolean {
    return this.db.prepare(`SELECT 1 FROM balances WHERE twin_id = ?`).get(twinId) !== undefined;
  }

  farmBalance(farmId: number): bigint {
    const r = this.db.prepare(`SELECT balance FROM farm_balances WHERE farm_id = ?`).get(farmId) as { balance: string } | undefined;
    return r ? BigInt(r.balance) : 0n;
  }

  /** Everything the chain billed this twin so far (the sum of its balance changes' amounts). */
  billedTotal(twinId: number): bigint {
    let sum = 0n;
    for (const r of this.db.prepare(`SELECT amount FROM twin_bills WHERE twin_id = ?`).iterate(twinId) as Iterable<{ amount: string }>) sum += BigInt(r.amount);
    return sum;
  }

  /** Set a twin's balance (the tfchain verifier: the account's free balance minus what it billed). */
  setBalance(twinId: number, balance: bigint, nowMs: number): void {
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO balances (twin_id, balance) VALUES (?, ?) ON CONFLICT (twin_id) DO UPDATE SET balance = excluded.balance`).run(twinId, balance.toString());
      this.trackDebt(twinId, balance, nowMs);
    })();
  }

  /** Add `amount` to a twin's balance (stand-in fund); the new balance. */
  fund(twinId: number, amount: bigint, nowMs: number): bigint {
    return this.db.transaction(() => {
      const after = this.balance(twinId) + amount;
      this.db.prepare(`INSERT INTO balances (twin_id, balance) VALUES (?, ?) ON CONFLICT (twin_id) DO UPDATE SET balance = excluded.balance`).run(twinId, after.toString());
      this.trackDebt(twinId, after, nowMs);
      return after;
    })();
  }

  /** A twin's bills, newest first (by period end, then node): optionally one node's, optionally one sequence. */
  bills(twinId: number, filter: { nodeId?: number; sequence?: number; limit: number }): TwinBill[] {
    const where = ["b.twin_id = ?"];
    const args: number[] = [twinId];
    if (filter.nodeId) {
      where.push("b.node_id = ?");
      args.push(filter.nodeId);
      if (filter.sequence) {
        where.push("b.sequence = ?");
        args.push(filter.sequence);
      }
    }
    const rows = this.db
      .prepare(
        `SELECT b.*, n.farm_id, n.period_start_ms, n.period_end_ms FROM twin_bills b JOIN node_bills n ON n.node_id = b.node_id AND n.sequence = b.sequence
         WHERE ${where.join(" AND ")} ORDER BY n.period_end_ms DESC, b.node_id DESC LIMIT ?`,
      )
      .all(...args, filter.limit) as Array<{ twin_id: number; node_id: number; sequence: number; amount: string; amounts: Buffer; record_count: number; balance_after: string; code: string; farm_id: number; period_start_ms: number; period_end_ms: number; pricing_version: number }>;
    return rows.map((r) => ({
      twinId: r.twin_id,
      nodeId: r.node_id,
      sequence: r.sequence,
      periodStartMs: r.period_start_ms,
      periodEndMs: r.period_end_ms,
      farmId: r.farm_id,
      recordCount: r.record_count,
      amounts: amountsFromWire(decode("UsageAmounts", new Uint8Array(r.amounts), { maxBytes: 1024, maxRepeated: 0 })),
      amount: BigInt(r.amount),
      balanceAfter: BigInt(r.balance_after),
      code: r.code,
      pricingVersion: r.pricing_version,
    }));
  }

  /**
   * The version of `policy`: the latest version when it is the same policy, else a new version
   * (latest + 1) recorded from `nowMs`. Versions are never rewritten, so a bill's version always
   * names the policy it was priced with.
   */
  pricingVersionOf(policy: PricingPolicy, nowMs: number): number {
    return this.db.transaction(() => {
      const text = JSON.stringify(pricingToJson(policy));
      const last = this.db.prepare(`SELECT version, policy FROM pricing_versions ORDER BY version DESC LIMIT 1`).get() as { version: number; policy: string } | undefined;
      if (last && last.policy === text) return last.version;
      const version = (last?.version ?? 0) + 1;
      this.db.prepare(`INSERT INTO pricing_versions (version, policy, since_ms) VALUES (?, ?, ?)`).run(version, text, nowMs);
      return version;
    })();
  }

  /** The policy of a version, if the chain priced with it. */
  pricingOfVersion(version: number): PricingPolicy | undefined {
    const r = this.db.prepare(`SELECT policy FROM pricing_versions WHERE version = ?`).get(version) as { policy: string } | undefined;
    return r ? parsePricing(JSON.parse(r.policy) as PricingInput, "pricing_versions") : undefined;
  }

  private insertEvent(e: ChainEventRecord): void {
    this.db.prepare(`INSERT INTO events (at_ms, kind, event) VALUES (?, ?, ?)`).run(e.atMs, e.kind, Buffer.from(e.bytes));
  }

  /** The header hash of node `nodeId`'s accepted proof `sequence` (undefined when there is none). */
  proofHashAt(nodeId: number, sequence: number): Uint8Array | undefined {
    const r = this.db.prepare(`SELECT proof FROM proofs WHERE node_id = ? AND sequence = ?`).get(nodeId, sequence) as { proof: Buffer } | undefined;
    if (!r) return undefined;
    const env = decode("Signed", new Uint8Array(r.proof), { maxBytes: 64 * 1024 });
    return proofHash(env.payload);
  }

  /** Accepted proofs of a node with sequence >= fromSequence, in order, at most `limit`. */
  proofs(nodeId: number, fromSequence: number, limit: number): StoredChainProof[] {
    const rows = this.db.prepare(`SELECT sequence, proof, accepted_ms FROM proofs WHERE node_id = ? AND sequence >= ? ORDER BY sequence LIMIT ?`).all(nodeId, fromSequence, limit) as Array<{
      sequence: number;
      proof: Buffer;
      accepted_ms: number;
    }>;
    return rows.map((r) => ({ sequence: r.sequence, proof: new Uint8Array(r.proof), acceptedMs: r.accepted_ms }));
  }

  proofCount(nodeId?: number): number {
    const r = (nodeId === undefined ? this.db.prepare(`SELECT COUNT(*) AS n FROM proofs`).get() : this.db.prepare(`SELECT COUNT(*) AS n FROM proofs WHERE node_id = ?`).get(nodeId)) as { n: number };
    return r.n;
  }

  /** Events in order, after `afterSeq`. */
  events(afterSeq = 0, limit = 1000): Array<{ seq: number } & ChainEventRecord> {
    const rows = this.db.prepare(`SELECT seq, at_ms, kind, event FROM events WHERE seq > ? ORDER BY seq LIMIT ?`).all(afterSeq, limit) as Array<{ seq: number; at_ms: number; kind: string; event: Buffer }>;
    return rows.map((r) => ({ seq: r.seq, atMs: r.at_ms, kind: r.kind, bytes: new Uint8Array(r.event) }));
  }

  /** Add refusal counts (code -> how many) in one transaction. */
  addRefusals(counts: ReadonlyMap<string, number>): void {
    if (counts.size === 0) return;
    const up = this.db.prepare(`INSERT INTO refusals (code, count) VALUES (?, ?) ON CONFLICT(code) DO UPDATE SET count = count + excluded.count`);
    this.db.transaction(() => {
      for (const [code, n] of counts) up.run(code, n);
    })();
  }

  refusals(): Record<string, number> {
    const rows = this.db.prepare(`SELECT code, count FROM refusals ORDER BY code`).all() as Array<{ code: string; count: number }>;
    return Object.fromEntries(rows.map((r) => [r.code, r.count]));
  }

  /**
   * Bytes stored per table: the sum of the column byte lengths of every row (BLOB and TEXT by
   * their length, INTEGER as 8 bytes, the u64 a chain would keep), not the file size, so the
   * number says what a pallet would store, without SQLite's pages, indexes and free space.
   */
  footprint(): Record<ChainTable, { rows: number; bytes: number }> & { total: { rows: number; bytes: number } } {
    const out = {} as Record<ChainTable, { rows: number; bytes: number }> & { total: { rows: number; bytes: number } };
    const total = { rows: 0, bytes: 0 };
    for (const table of CHAIN_TABLES) {
      const cols = this.db.prepare(`SELECT name, type FROM pragma_table_info(?)`).all(table) as Array<{ name: string; type: string }>;
      // TEXT as bytes (UTF-8), not characters: a farm name may be any printable text
      const expr = cols.map((c) => (c.type.toUpperCase() === "INTEGER" ? "8" : `COALESCE(length(CAST("${c.name}" AS BLOB)), 0)`)).join(" + ");
      const r = this.db.prepare(`SELECT COUNT(*) AS rows, COALESCE(SUM(${expr}), 0) AS bytes FROM "${table}"`).get() as { rows: number; bytes: number };
      out[table] = { rows: r.rows, bytes: r.bytes };
      total.rows += r.rows;
      total.bytes += r.bytes;
    }
    out.total = total;
    return out;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
