/**
 * Power management metrics (prom-client, through metrics/metrics.ts), present from the start:
 *   capacity_agent_power_state{state}                 this node's state: 1 for the current one (up, standby, waking)
 *   capacity_agent_power_farm_nodes{state}            the farm's nodes as this node sees them, by state (up, standby, waking)
 *   capacity_agent_power_transitions_total{from,to}   this node's power changes
 *   capacity_agent_power_wakes_sent_total{driver}     wakes this node sent to peers, by driver (dev, zos, command)
 *   capacity_agent_power_standby_intents_total{from}  standby intents: this node's own (self) or heard from peers (peer)
 *   capacity_agent_power_objections_total{direction}  objections sent to a peer's intent, or received against this node's
 */
import type { Counter, Gauge, MetricsRegistry } from "../metrics/metrics";

export type OwnPowerState = "up" | "standby" | "waking";
const STATES: OwnPowerState[] = ["up", "standby", "waking"];

export class PowerMetrics {
  readonly state: Gauge;
  readonly farmNodes: Gauge;
  readonly transitions: Counter;
  readonly wakesSent: Counter;
  readonly intents: Counter;
  readonly objections: Counter;
  /** read at every scrape: this node's state (the agent sets the ledger's; the power service its own, with waking) */
  own: (() => OwnPowerState) | null = null;
  /** read at every scrape: the farm's nodes by state (set by the power service) */
  farm: (() => Record<OwnPowerState, number>) | null = null;

  constructor(registry: MetricsRegistry) {
    this.state = registry.gauge("capacity_agent_power_state", "this node's power state: 1 for the current one", ["state"], STATES.map((state) => ({ state })));
    this.farmNodes = registry.gauge("capacity_agent_power_farm_nodes", "the farm's nodes by power state, as this node sees them (0 without power management)", ["state"], STATES.map((state) => ({ state })));
    this.transitions = registry.counter("capacity_agent_power_transitions_total", "this node's power state changes, by from and to", ["from", "to"]);
    for (const [from, to] of [["up", "standby"], ["standby", "up"], ["standby", "waking"], ["waking", "up"]]) this.transitions.inc({ from, to }, 0);
    this.wakesSent = registry.counter("capacity_agent_power_wakes_sent_total", "wakes this node sent to peers, by driver", ["driver"]);
    for (const driver of ["dev", "zos", "command"]) this.wakesSent.inc({ driver }, 0);
    this.intents = registry.counter("capacity_agent_power_standby_intents_total", "standby intents: this node's own (self) or heard from peers (peer)", ["from"]);
    for (const from of ["self", "peer"]) this.intents.inc({ from }, 0);
    this.objections = registry.counter("capacity_agent_power_objections_total", "objections sent against a peer's standby intent, or received against this node's", ["direction"]);
    for (const direction of ["sent", "received"]) this.objections.inc({ direction }, 0);
    registry.onCollect(() => this.collect());
  }

  collect(): void {
    const own = this.own?.();
    for (const s of STATES) this.state.set({ state: s }, own === s ? 1 : 0);
    const farm = this.farm?.();
    for (const s of STATES) this.farmNodes.set({ state: s }, farm?.[s] ?? 0);
  }
}
