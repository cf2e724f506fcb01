/**
 * Grace of a twin in debt (docs/billing.md "Grace"), pure: no I/O, no clock of its own.
 *
 * tfchain puts the contracts of a twin that cannot pay in a grace period (ContractGracePeriodStarted)
 * and deletes them when it ends still unpaid (ContractGracePeriodEnded then the contracts' removal).
 * Here the chain records since when a twin is in debt, and each node deletes the twin's
 * deployments on itself when the grace has ended and the chain still says the twin is in debt.
 */

/**
 * tfchain's grace period: 14 days (its runtime's `GracePeriod`, in blocks of 6 s; the constant is
 * not in the metadata of spec 132, whose SmartContractModule exposes only three length limits).
 */
export const TFCHAIN_GRACE_MS = 14 * 24 * 3600 * 1000;

/**
 * The chain's side: since when a twin is in debt after its balance changed to `balance`.
 * Entering debt starts the grace at `nowMs`; staying in debt keeps the first start (a second bill
 * does not extend the grace); a balance at or above zero leaves grace (undefined).
 */
export function debtSince(previousSinceMs: number | undefined, balance: bigint, nowMs: number): number | undefined {
  if (balance >= 0n) return undefined;
  return previousSinceMs ?? nowMs;
}

export function graceEnd(sinceMs: number, graceMs: number): number {
  return sinceMs + graceMs;
}

/** The node's side: one twin the chain says is in debt. */
export interface TwinGrace {
  twinId: number;
  /** the chain's grace end (ms); 0 when the chain did not tell one (then the node never deletes) */
  graceEndMs: number;
  /** the grace ended in debt and the twin's deployments were deleted */
  expired: boolean;
}

/**
 * The node's new list after the chain judged one of its proofs: `covered` are the twins with
 * records in that proof, `told` those of them the chain says are in debt. A covered twin is in
 * the list exactly when told; a twin the proof does not cover (e.g. its deployments are gone) keeps
 * its entry, since the chain said nothing of it. A twin still in debt with the same grace end keeps
 * its `expired` mark, so its deletion is not done twice; a new grace end (it left debt and entered
 * again) is a new grace. Sorted by twin id.
 */
export function mergeGrace(previous: readonly TwinGrace[], told: ReadonlyArray<{ twinId: number; graceEndMs: number }>, covered: ReadonlySet<number>): TwinGrace[] {
  const before = new Map(previous.map((g) => [g.twinId, g]));
  const out = new Map<number, TwinGrace>();
  for (const g of previous) if (!covered.has(g.twinId)) out.set(g.twinId, g);
  for (const t of told) {
    const p = before.get(t.twinId);
    out.set(t.twinId, { twinId: t.twinId, graceEndMs: t.graceEndMs, expired: !!p && p.expired && p.graceEndMs === t.graceEndMs });
  }
  return [...out.values()].sort((a, b) => a.twinId - b.twinId);
}

/** Twins whose grace has ended at `nowMs` and whose deployments were not deleted yet. */
export function graceDue(list: readonly TwinGrace[], nowMs: number): number[] {
  return list.filter((g) => !g.expired && g.graceEndMs > 0 && g.graceEndMs <= nowMs).map((g) => g.twinId);
}

/** The list with `twinId`'s grace marked expired (its deployments are deleted). */
export function markExpired(list: readonly TwinGrace[], twinId: number): TwinGrace[] {
  return list.map((g) => (g.twinId === twinId ? { ...g, expired: true } : g));
}
