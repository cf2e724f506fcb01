import type { TwinGrace } from "../billing/grace";
import type { OutboxStore } from "./outbox";

/**
 * The twins the chain says are in debt, with their grace ends, in the "usage" module's table
 * `usage_debts` (made by its migration 3, ./outbox.ts). The usage service replaces the list with
 * each verdict and marks a twin expired once its deployments are deleted; kept on disk so a
 * restart goes on enforcing the grace and never deletes a twin's deployments a second time.
 */
export class TwinDebts {
  constructor(private readonly store: OutboxStore) {}

  list(): TwinGrace[] {
    const rows = this.store.db.prepare(`SELECT twin_id, grace_end_ms, expired FROM usage_debts ORDER BY twin_id`).all() as Array<{ twin_id: number; grace_end_ms: number; expired: number }>;
    return rows.map((r) => ({ twinId: r.twin_id, graceEndMs: r.grace_end_ms, expired: r.expired !== 0 }));
  }

  /** Replace the whole list in one transaction. */
  replace(list: readonly TwinGrace[]): void {
    const db = this.store.db;
    this.store.write(() =>
      db.transaction(() => {
        db.prepare(`DELETE FROM usage_debts`).run();
        const put = db.prepare(`INSERT INTO usage_debts (twin_id, grace_end_ms, expired) VALUES (?, ?, ?)`);
        for (const g of list) put.run(g.twinId, g.graceEndMs, g.expired ? 1 : 0);
      })(),
    );
  }
}
