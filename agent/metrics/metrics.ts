/**
 * Metrics on prom-client. Metrics are built once and passed as `Metrics | null` (null = metrics
 * off). Names end in _total, _seconds, _bytes, or name their unit (_cores); gauges are present
 * (0) from the start. The thin Counter/Gauge/Histogram wrappers keep the label names declared
 * once and a synchronous `get` (counters and gauges) for tests and status views.
 */
import * as prom from "prom-client";
import { UNIT_NAMES, type UnitName, type Units } from "../capacity/units";
import { AGENT_VERSION } from "../version";

export type Labels = Record<string, string>;

/** Labels in name order: the exposition lists them sorted, whatever order a caller wrote them in. */
function sorted(labels: Labels): Labels {
  const out: Labels = {};
  for (const k of Object.keys(labels).sort()) out[k] = labels[k];
  return out;
}

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

export class Counter {
  private readonly values = new Map<string, number>();
  readonly metric: prom.Counter<string>;
  constructor(registry: prom.Registry, readonly name: string, help: string, labelNames: readonly string[]) {
    this.metric = new prom.Counter({ name, help, labelNames, registers: [registry] });
  }
  inc(labels: Labels = {}, by = 1): void {
    this.metric.inc(sorted(labels), by);
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels)) ?? 0;
  }
}

export class Gauge {
  private readonly values = new Map<string, number>();
  readonly metric: prom.Gauge<string>;
  /** `initial`: label sets exposed as 0 from the start (an unlabelled gauge always is) */
  constructor(registry: prom.Registry, readonly name: string, help: string, labelNames: readonly string[], initial: Labels[] = []) {
    this.metric = new prom.Gauge({ name, help, labelNames, registers: [registry] });
    for (const l of initial) this.set(l, 0);
  }
  set(labels: Labels, v: number): void {
    this.metric.set(sorted(labels), v);
    this.values.set(key(labels), v);
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels)) ?? 0;
  }
}

export class Histogram {
  readonly metric: prom.Histogram<string>;
  constructor(registry: prom.Registry, readonly name: string, help: string, labelNames: readonly string[], buckets: number[]) {
    this.metric = new prom.Histogram({ name, help, labelNames, buckets, registers: [registry] });
  }
  /** one observation, in seconds */
  observe(labels: Labels, seconds: number): void {
    this.metric.observe(sorted(labels), Math.max(0, seconds));
  }
}

/** Buckets (seconds) for in-process decisions: 50 µs .. 1 s. */
export const DECISION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Buckets (seconds) for messages crossing the bus: 1 ms .. 60 s. */
export const PROPAGATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Buckets (seconds) from a period's end to the chain's acknowledgement: 10 ms .. 1 day. */
export const DELIVERY_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400];

export class MetricsRegistry {
  readonly prom = new prom.Registry();
  private readonly hooks: Array<() => void> = [];
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return new Counter(this.prom, name, help, labelNames);
  }
  gauge(name: string, help: string, labelNames: readonly string[] = [], initial: Labels[] = []): Gauge {
    return new Gauge(this.prom, name, help, labelNames, initial);
  }
  histogram(name: string, help: string, labelNames: readonly string[], buckets: number[]): Histogram {
    return new Histogram(this.prom, name, help, labelNames, buckets);
  }
  /**
   * The default process metrics (process_*, nodejs_*), without the three gauges prom-client names
   * `_total` (promtool rejects a gauge so named): nodejs_active_{handles,requests,resources}
   * labelled by type stay, their sums are for PromQL.
   */
  withDefaults(): this {
    prom.collectDefaultMetrics({ register: this.prom });
    for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.prom.removeSingleMetric(name);
    return this;
  }
  /** build info: a gauge that is 1, labelled with the version and Node.js version */
  withBuildInfo(component: string): this {
    this.gauge("capacity_agent_build_info", "build information (always 1)", ["version", "node", "component"]).set({ version: AGENT_VERSION, node: process.version, component }, 1);
    return this;
  }
  /** `fn` runs before every exposition (gauges read from live state, e.g. NATS connected) */
  onCollect(fn: () => void): void {
    this.hooks.push(fn);
  }
  get contentType(): string {
    return this.prom.contentType;
  }
  async expose(): Promise<string> {
    for (const fn of this.hooks) fn();
    return this.prom.metrics();
  }
}

/** The capacity states a node reports per unit (DESIGN.md "Capacity and admission"). */
export const CAPACITY_STATES = ["total", "reserved", "reservable", "used", "free"] as const;
export type CapacityState = (typeof CAPACITY_STATES)[number];

/** Byte units go in one gauge labelled by unit; counted units get a gauge each, named by what they count. */
const BYTE_UNITS: UnitName[] = ["mru", "sru", "hru"];
const COUNTED: Array<{ unit: UnitName; suffix: string; what: string }> = [
  { unit: "cru", suffix: "cores", what: "CPU cores (cru)" },
  { unit: "ipv4u", suffix: "ipv4_addresses", what: "public IPv4 addresses (ipv4u)" },
  { unit: "gpu", suffix: "gpus", what: "GPUs (gpu)" },
];

/** capacity_agent_capacity_<state>_bytes{unit}, _cores, _ipv4_addresses, _gpus. */
export class CapacityGauges {
  private readonly bytes = new Map<CapacityState, Gauge>();
  private readonly counted = new Map<string, Gauge>();
  constructor(registry: MetricsRegistry) {
    for (const s of CAPACITY_STATES) {
      this.bytes.set(s, registry.gauge(`capacity_agent_capacity_${s}_bytes`, `${s} memory and storage per unit (mru, sru, hru), bytes`, ["unit"], BYTE_UNITS.map((unit) => ({ unit }))));
      for (const c of COUNTED) this.counted.set(`${s}:${c.unit}`, registry.gauge(`capacity_agent_capacity_${s}_${c.suffix}`, `${s} ${c.what}`));
    }
  }
  set(state: CapacityState, units: Units): void {
    for (const u of UNIT_NAMES) {
      const g = this.counted.get(`${state}:${u}`);
      if (g) g.set({}, units[u]);
      else this.bytes.get(state)!.set({ unit: u }, units[u]);
    }
  }
  get(state: CapacityState, unit: UnitName): number {
    return this.counted.get(`${state}:${unit}`)?.get() ?? this.bytes.get(state)!.get({ unit });
  }
}

export interface Metrics {
  registry: MetricsRegistry;
  /** admission decisions by op (deploy/delete) and result (create, update, duplicate, delete, or a rejection code) */
  decisions: Counter;
  /** time to decide and durably apply one deploy or delete, by op */
  decisionSeconds: Histogram;
  /** node API requests refused before admission, by code (malformed, too_large, bad_signature, ...) */
  apiErrors: Counter;
  /** requests shed before any work (node API and gossip responders), by subject and reason (bus/limits.ts SHED_REASONS) */
  shed: Counter;
  /** shed requests that got no reply (none asked, or over the refusal budget), by subject */
  shedDropped: Counter;
  /** total, reserved, reservable, used and free capacity per unit */
  capacity: CapacityGauges;
  /** 1 while connected to NATS */
  natsConnected: Gauge;
  /** 1 once the chain registered this node (0 when the chain is disabled) */
  chainRegistered: Gauge;
  /** group commits of admission decisions (one transaction, one fsync each) */
  groupCommits: Counter;
  /** admission writes in those group commits (divided by groupCommits: the average group size) */
  groupCommitWrites: Counter;
}

export function createMetrics(registry = new MetricsRegistry().withDefaults().withBuildInfo("agent")): Metrics {
  return {
    registry,
    decisions: registry.counter("capacity_agent_decisions_total", "admission decisions by op and result", ["op", "result"]),
    decisionSeconds: registry.histogram("capacity_agent_decision_duration_seconds", "time to decide and durably apply one deploy or delete, by op", ["op"], DECISION_BUCKETS),
    apiErrors: registry.counter("capacity_agent_api_errors_total", "node API requests refused before admission, by code", ["code"]),
    shed: registry.counter("capacity_agent_requests_shed_total", "requests shed before any work, by subject and reason", ["subject", "reason"]),
    shedDropped: registry.counter("capacity_agent_requests_shed_unanswered_total", "shed requests that got no reply, by subject", ["subject"]),
    capacity: new CapacityGauges(registry),
    natsConnected: registry.gauge("capacity_agent_nats_connected", "1 while connected to NATS"),
    chainRegistered: registry.gauge("capacity_agent_chain_registered", "1 once the chain registered this node (0 when the chain is disabled or has not answered)"),
    groupCommits: registry.counter("capacity_agent_group_commits_total", "group commits of admission decisions (one fsync each)"),
    groupCommitWrites: registry.counter("capacity_agent_group_commit_writes_total", "admission writes in group commits"),
  };
}
