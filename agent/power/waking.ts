/**
 * Wakes in progress, as this node announces them (gossip.proto WakingNode): the peers it sent a
 * wake to, and itself while a dev node "boots". Every observer reads them from the signed
 * announcement (peers' power view, `power status`, the dashboard), so a woken node shows as
 * `waking` everywhere, not only on the node that woke it. An entry goes when the target is seen
 * `up`, or after the wake timeout (10 min, the agreement's): the target is then shown by its own
 * announcement again (standby, or down when it stays silent).
 */
import type { WakingNode } from "../gossip/wire";
import { MAX_WAKING } from "../gossip/wire";

export const WAKE_TIMEOUT_MS = 10 * 60_000;

export class WakingBoard {
  private readonly wakes = new Map<number, WakingNode>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly now: () => number,
    readonly timeoutMs = WAKE_TIMEOUT_MS,
  ) {}

  /** A wake sent to (or received by) `nodeId`; a wake already in progress keeps its start. */
  note(nodeId: number, reason: string): void {
    if (this.has(nodeId)) return;
    this.wakes.set(nodeId, { nodeId, sinceMs: this.now(), reason: /^[a-z_]{1,32}$/.test(reason) ? reason : "requested" });
    while (this.wakes.size > MAX_WAKING) this.wakes.delete(this.wakes.keys().next().value as number);
    this.changed();
  }

  /** The target is up (or the wake is over): no longer waking. */
  clear(nodeId: number): void {
    if (this.wakes.delete(nodeId)) this.changed();
  }

  has(nodeId: number): boolean {
    const w = this.wakes.get(nodeId);
    if (w && this.now() - w.sinceMs > this.timeoutMs) this.wakes.delete(nodeId);
    return this.wakes.has(nodeId);
  }

  get(nodeId: number): WakingNode | undefined {
    return this.has(nodeId) ? this.wakes.get(nodeId) : undefined;
  }

  /** Wakes in progress (timed-out ones dropped), by node id. */
  list(): WakingNode[] {
    for (const id of [...this.wakes.keys()]) this.has(id);
    return [...this.wakes.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}
