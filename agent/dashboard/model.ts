/**
 * The farm dashboard's data, from the verified peer view (pure: no I/O, no clock of its own).
 */
import { addUnits, zeroUnits, type Units } from "../capacity/units";
import type { Peer } from "../gossip/view";
import type { Announcement } from "../gossip/wire";
import { powerRows } from "../power/client";

/** What the dashboard shows of a node's announcement, as the node announced it. */
type Announced = Pick<Announcement, "nodeId" | "farmId" | "twinId" | "sequence" | "agentVersion" | "deployments" | "heartbeatMs" | "timestampMs" | "total" | "reserved" | "reservable" | "used" | "free">;

export interface DashboardNode extends Announced {
  /** waking: a node of the farm announces a wake it sent to this one (power/client.ts powerRows) */
  power: "up" | "standby" | "waking";
  /** time since the dashboard last heard from the node (its heartbeat age) */
  heardAgoMs: number;
}

export interface DashboardState {
  /** the farm shown (null: every farm heard) */
  farmId: number | null;
  nowMs: number;
  nodes: DashboardNode[];
  /** sums over the nodes shown */
  totals: { nodes: number; up: number; standby: number; waking: number; deployments: number; total: Units; reserved: Units; reservable: Units; used: Units; free: Units };
}

export function dashboardState(peers: Peer[], farmId: number | null, nowMs: number): DashboardState {
  const shown = peers.filter((p) => farmId === null || p.announcement.farmId === farmId);
  const waking = new Set(powerRows(shown.map((p) => p.announcement)).filter((r) => r.state === "waking").map((r) => r.nodeId));
  const nodes = shown
    .map((p): DashboardNode => {
      const a = p.announcement;
      return {
        nodeId: a.nodeId,
        farmId: a.farmId,
        twinId: a.twinId,
        sequence: a.sequence,
        power: waking.has(a.nodeId) ? "waking" : a.power,
        agentVersion: a.agentVersion,
        deployments: a.deployments,
        heartbeatMs: a.heartbeatMs,
        heardAgoMs: Math.max(0, nowMs - p.receivedAt),
        timestampMs: a.timestampMs,
        total: a.total,
        reserved: a.reserved,
        reservable: a.reservable,
        used: a.used,
        free: a.free,
      };
    })
    .sort((x, y) => x.nodeId - y.nodeId);
  const totals = { nodes: nodes.length, up: 0, standby: 0, waking: 0, deployments: 0, total: zeroUnits(), reserved: zeroUnits(), reservable: zeroUnits(), used: zeroUnits(), free: zeroUnits() };
  for (const n of nodes) {
    totals[n.power]++;
    totals.deployments += n.deployments;
    for (const k of ["total", "reserved", "reservable", "used", "free"] as const) totals[k] = addUnits(totals[k], n[k]);
  }
  return { farmId, nowMs, nodes, totals };
}
