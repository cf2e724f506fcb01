/**
 * Agreement: every node of a farm runs the same policy (policy.ts) on its signed view of the farm,
 * and exactly one node acts on each decision:
 *
 * - Wake: the leader, the online (`up`) node with the lowest id in the view, wakes others. Two
 *   nodes that both think they lead both send a wake: harmless, waking is idempotent.
 * - Standby: a node puts only itself to standby, in three steps: it announces an intent (when the
 *   policy allows its standby on the view where every outstanding intent counts as standby, and no
 *   other intent is outstanding); every peer that receives the intent checks the same rule on its
 *   own view and objects when it fails; after `windowMs` the node goes only when no objection came,
 *   no intent of a lower id came (the lowest id wins concurrent intents) and the rule still holds.
 *
 * Why two nodes never both go down thinking the other stays up (messages arrive within d, and
 * windowMs >= 2d): a receiver keeps an intent outstanding for 2 x windowMs after receiving it,
 * which covers the sender's window and the delay of its standby announcement, and counts it as
 * standby meanwhile. An intent sent after another one was received is never published (rule 1),
 * so two intents that overlap were sent within d of each other; each reaches the other node
 * before its window ends (d < windowMs), the higher id yields and only one goes.
 *
 * Pure state machine: time comes in as arguments, actions go out as values; the service
 * (service.ts) publishes, drives and schedules.
 */
import { decide, standbyAllowed, type FarmNode, type PowerReason } from "./policy";
import type { PowerPolicyOptions } from "./options";

export type AgreementAction =
  | { kind: "intent" }
  | { kind: "standby" }
  | { kind: "abort"; why: "objection" | "lower_intent" | "policy" }
  | { kind: "wake"; nodeId: number; reason: PowerReason }
  | { kind: "object"; nodeId: number };

export class PowerAgreement {
  /** the node's own intent: when it was announced, and what came back */
  private pending: { startMs: number; objected: boolean; lowerSeen: boolean } | null = null;
  /** intents of peers: node id -> until when it counts as outstanding (receiver's clock) */
  private readonly intents = new Map<number, number>();
  /** wakes this node sent: node id -> until when the node counts as waking */
  private readonly woken = new Map<number, number>();

  constructor(
    readonly nodeId: number,
    private readonly o: PowerPolicyOptions,
    /** how long a woken node counts as `waking` before it is tried again (default 10 min) */
    private readonly wakeTimeoutMs = 10 * 60_000,
  ) {}

  /** The intent currently outstanding, if any (for status and tests). */
  pendingSince(): number | null {
    return this.pending?.startMs ?? null;
  }

  /** When the own pending intent is due for the decision (the service schedules a check then). */
  dueMs(): number | null {
    return this.pending ? this.pending.startMs + this.o.windowMs : null;
  }

  private sweep(nowMs: number): void {
    for (const [id, until] of this.intents) if (until <= nowMs) this.intents.delete(id);
    for (const [id, until] of this.woken) if (until <= nowMs) this.woken.delete(id);
  }

  /** The view as this node must judge it: peers with outstanding intents count as standby, nodes it woke as waking. */
  adjusted(view: readonly FarmNode[], nowMs: number, opts: { ignoreAbove?: number } = {}): FarmNode[] {
    this.sweep(nowMs);
    return view.map((n) => {
      if (n.nodeId !== this.nodeId && this.intents.has(n.nodeId) && !(opts.ignoreAbove !== undefined && n.nodeId > opts.ignoreAbove) && n.state === "up") {
        return { ...n, state: "standby" as const };
      }
      if (this.woken.has(n.nodeId) && n.state === "standby") return { ...n, state: "waking" as const };
      return n;
    });
  }

  /**
   * The periodic check (and the check when the own intent is due). `view` holds every known node of
   * the farm, this one included with its current local state.
   */
  check(view: readonly FarmNode[], nowMs: number): AgreementAction[] {
    const out: AgreementAction[] = [];
    if (this.pending && nowMs >= this.pending.startMs + this.o.windowMs) {
      const p = this.pending;
      this.pending = null;
      // concurrent higher-id intents yield to this one, so they do not count against it
      const v = this.adjusted(view, nowMs, { ignoreAbove: this.nodeId });
      if (p.objected) out.push({ kind: "abort", why: "objection" });
      else if (p.lowerSeen) out.push({ kind: "abort", why: "lower_intent" });
      else if (!standbyAllowed(v, this.nodeId, nowMs, this.o)) out.push({ kind: "abort", why: "policy" });
      else {
        out.push({ kind: "standby" });
        return out;
      }
    }
    const v = this.adjusted(view, nowMs);
    const self = v.find((n) => n.nodeId === this.nodeId);
    if (!self || self.state !== "up") return out;
    const leader = v.filter((n) => n.state === "up").reduce((m, n) => Math.min(m, n.nodeId), Infinity);
    const decisions = decide(v, nowMs, this.o);
    if (leader === this.nodeId) {
      for (const d of decisions) {
        if (d.action !== "wake") continue;
        this.woken.set(d.nodeId, nowMs + this.wakeTimeoutMs);
        out.push({ kind: "wake", nodeId: d.nodeId, reason: d.reason });
      }
    }
    if (!this.pending && this.intents.size === 0 && standbyAllowed(v, this.nodeId, nowMs, this.o)) {
      this.pending = { startMs: nowMs, objected: false, lowerSeen: false };
      out.push({ kind: "intent" });
    }
    return out;
  }

  /** Mark a node as being woken by someone else's request (a deployer's `--wake`). */
  noteWake(nodeId: number, nowMs: number): void {
    this.woken.set(nodeId, nowMs + this.wakeTimeoutMs);
  }

  /** A peer of the farm announced its standby intent. Returns an objection when the rule fails on this node's view. */
  onIntent(from: number, view: readonly FarmNode[], nowMs: number): AgreementAction[] {
    if (from === this.nodeId) return [];
    if (this.pending && from < this.nodeId) this.pending.lowerSeen = true;
    // judge on the view with the other outstanding intents of lower ids counted as standby
    const v = this.adjusted(view, nowMs, { ignoreAbove: from - 1 });
    this.intents.set(from, nowMs + 2 * this.o.windowMs);
    if (!standbyAllowed(v, from, nowMs, this.o)) return [{ kind: "object", nodeId: from }];
    return [];
  }

  /** A peer objected to an intent; only an objection to this node's own intent matters. */
  onObjection(target: number): void {
    if (target === this.nodeId && this.pending) this.pending.objected = true;
  }
}
