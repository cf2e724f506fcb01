import type { Store } from "../store/store";

/**
 * Owner of the table `usage_uptime` (schema module "uptime"): the agent's up-time intervals. The
 * usage service begins one interval per run and marks it alive every `aliveMs`; the meter reads the
 * intervals of a period (time outside them is downtime: stated in the proof, never billed). Nothing
 * else reads or writes the table.
 */
const UPTIME_SCHEMA = [
  // IF NOT EXISTS: stores written before this module had its own schema made the table in the
  // "usage" module's first migration
  `CREATE TABLE IF NOT EXISTS usage_uptime (id INTEGER PRIMARY KEY AUTOINCREMENT, start_ms INTEGER NOT NULL, alive_ms INTEGER NOT NULL)`,
];

/** What the up-time log needs of the store. */
export type UptimeStore = Pick<Store, "db" | "write" | "ensureSchema">;

export class UptimeLog {
  constructor(private readonly store: UptimeStore) {
    store.ensureSchema("uptime", UPTIME_SCHEMA);
  }

  /** Start an up-time interval at `nowMs`; returns its id (alive marks extend it). */
  begin(nowMs: number): number {
    return this.store.write(() => Number(this.store.db.prepare(`INSERT INTO usage_uptime (start_ms, alive_ms) VALUES (?, ?)`).run(nowMs, nowMs).lastInsertRowid));
  }

  /** The agent was alive until `nowMs` (never moves an interval's end back). */
  markAlive(id: number, nowMs: number): void {
    this.store.write(() => this.store.db.prepare(`UPDATE usage_uptime SET alive_ms = MAX(alive_ms, ?) WHERE id = ?`).run(nowMs, id));
  }

  /** Up-time intervals [start, alive] overlapping [fromMs, toMs), by start. */
  intervals(fromMs: number, toMs: number): Array<[number, number]> {
    const rows = this.store.db.prepare(`SELECT start_ms, alive_ms FROM usage_uptime WHERE alive_ms > ? AND start_ms < ? ORDER BY start_ms`).all(fromMs, toMs) as Array<{ start_ms: number; alive_ms: number }>;
    return rows.map((r) => [r.start_ms, r.alive_ms]);
  }
}
