/**
 * The power policy of a farm (farmerbot's rules, GRID.md "Power management today"), as a pure
 * function of a view of the farm: which nodes to wake and which may go to standby. No I/O, no
 * clock, no randomness of its own: every node that holds the same view computes the same
 * decisions (the "random" wake-ups are a hash of node id and check slot), so the agreement
 * (agreement.ts) only has to decide who acts.
 */
import type { Units } from "../capacity/units";
import type { PowerPolicyOptions } from "./options";

/** Power state of a node (chain's PowerState plus `waking`): up, standby, waking or down (unreachable). */
export type NodePower = "up" | "standby" | "waking" | "down";

/** One node of the farm, as the view holds it (from its signed announcement). */
export interface FarmNode {
  nodeId: number;
  state: NodePower;
  /** when the node last changed power state, ms */
  sinceMs: number;
  /** reservable capacity */
  total: Units;
  /** reserved by deployments */
  used: Units;
  /** number of deployments */
  deployments: number;
  /** the node has a public config (gateway, public IPs): never put to standby */
  publicConfig: boolean;
  /** when capacity was last claimed on the node (a deployment accepted), ms; 0 = never */
  lastClaimMs: number;
}

export type PowerReason = "usage_high" | "idle" | "periodic" | "random";

export interface PowerDecision {
  action: "wake" | "standby";
  nodeId: number;
  reason: PowerReason;
}

/** Units the policy weighs (IPv4 is farm-owned, GPUs only serve rented nodes). */
export const POLICY_UNITS = ["cru", "mru", "sru", "hru"] as const;

const DAY30_MS = 30 * 24 * 3600_000;

/** Nodes whose capacity counts as online for the usage share: up, and waking (already on its way). */
export function isOnline(n: FarmNode): boolean {
  return n.state === "up" || n.state === "waking";
}

/** The highest share used/total over the policy units on the given nodes (0 when nothing is used; Infinity when used exceeds a zero total). */
export function usageShare(nodes: readonly FarmNode[]): number {
  let worst = 0;
  for (const u of POLICY_UNITS) {
    let used = 0;
    let total = 0;
    for (const n of nodes) {
      used += n.used[u];
      total += n.total[u];
    }
    if (used === 0) continue;
    worst = Math.max(worst, total === 0 ? Infinity : used / total);
  }
  return worst;
}

/** 32-bit integer hash (murmur3 finaliser over two words): the shared, deterministic "random". */
export function hash32(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The node's daily (periodicWakeMs) wake-up offset: spread by node id so not all wake together. */
export function periodicOffsetMs(nodeId: number, o: Pick<PowerPolicyOptions, "periodicWakeMs">): number {
  return hash32(nodeId, 0x5eed) % o.periodicWakeMs;
}

/** The last periodic wake-up instant of a node at or before `nowMs`. */
export function lastPeriodicMs(nodeId: number, nowMs: number, o: Pick<PowerPolicyOptions, "periodicWakeMs">): number {
  const off = periodicOffsetMs(nodeId, o);
  return Math.floor((nowMs - off) / o.periodicWakeMs) * o.periodicWakeMs + off;
}

/** Whether a standby node draws a random liveness wake-up in the check slot of `nowMs`. */
export function randomWake(nodeId: number, nowMs: number, o: Pick<PowerPolicyOptions, "randomWakesPerMonth" | "checkMs">): boolean {
  const p = (o.randomWakesPerMonth * o.checkMs) / DAY30_MS;
  const slot = Math.floor(nowMs / o.checkMs);
  return hash32(nodeId, slot) / 2 ** 32 < p;
}

/** Why a node may not go to standby now, or null when it may (usage and last-node rules apart). */
export function standbyBlocker(n: FarmNode, nowMs: number, o: PowerPolicyOptions): "not_up" | "has_workloads" | "public_config" | "recent_claim" | "recent_change" | null {
  if (n.state !== "up") return "not_up";
  if (n.deployments > 0) return "has_workloads";
  if (n.publicConfig) return "public_config";
  if (n.lastClaimMs > 0 && nowMs - n.lastClaimMs < o.claimQuietMs) return "recent_claim";
  if (nowMs - n.sinceMs < o.minStateMs) return "recent_change";
  return null;
}

/**
 * Decide for a farm: wake decisions for standby nodes (usage above the wake threshold: one node,
 * the lowest id, and none while another is waking; the daily periodic wake-up; random ones), or,
 * when usage is not high and nobody is waking, standby decisions for unused nodes, highest id first,
 * each only while the farm keeps at least one up node and usage without the node stays below the
 * standby threshold. Standby decisions accumulate: each one is checked on the farm without the
 * nodes decided before it. Deterministic: the same view and time give the same list.
 */
export function decide(nodes: readonly FarmNode[], nowMs: number, o: PowerPolicyOptions): PowerDecision[] {
  const sorted = [...nodes].sort((a, b) => a.nodeId - b.nodeId);
  const out: PowerDecision[] = [];
  const online = sorted.filter(isOnline);
  const standby = sorted.filter((n) => n.state === "standby");
  const waking = sorted.some((n) => n.state === "waking");
  const woken = new Set<number>();
  const high = usageShare(online) > o.wakeThreshold;
  if (standby.length > 0 && !waking && (high || !sorted.some((n) => n.state === "up"))) {
    const n = standby[0]!;
    out.push({ action: "wake", nodeId: n.nodeId, reason: "usage_high" });
    woken.add(n.nodeId);
  }
  for (const n of standby) {
    if (woken.has(n.nodeId)) continue;
    if (n.sinceMs < lastPeriodicMs(n.nodeId, nowMs, o)) {
      out.push({ action: "wake", nodeId: n.nodeId, reason: "periodic" });
      woken.add(n.nodeId);
    } else if (randomWake(n.nodeId, nowMs, o)) {
      out.push({ action: "wake", nodeId: n.nodeId, reason: "random" });
      woken.add(n.nodeId);
    }
  }
  if (high || waking) return out;
  let remaining = online;
  for (const n of [...sorted].reverse()) {
    if (standbyBlocker(n, nowMs, o) !== null) continue;
    const without = remaining.filter((m) => m.nodeId !== n.nodeId);
    if (!without.some((m) => m.state === "up")) continue;
    if (!(usageShare(without) < o.standbyThreshold)) continue;
    out.push({ action: "standby", nodeId: n.nodeId, reason: "idle" });
    remaining = without;
  }
  return out;
}

/** Whether the policy lets node `nodeId` go to standby on this view (the check an objector runs). */
export function standbyAllowed(nodes: readonly FarmNode[], nodeId: number, nowMs: number, o: PowerPolicyOptions): boolean {
  const n = nodes.find((m) => m.nodeId === nodeId);
  if (!n || standbyBlocker(n, nowMs, o) !== null) return false;
  const without = nodes.filter((m) => isOnline(m) && m.nodeId !== nodeId);
  if (!without.some((m) => m.state === "up")) return false;
  if (usageShare(nodes.filter(isOnline)) > o.wakeThreshold) return false;
  return usageShare(without) < o.standbyThreshold;
}
