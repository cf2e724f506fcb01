/**
 * A small metrics registry with Prometheus text exposition. Metrics are built once and passed as
 * `Metrics | null` (null = metrics off). Names end in _total, _seconds or _bytes.
 */
type Labels = Record<string, string>;

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, "_")}"`)
    .join(",");
}

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels)) ?? 0;
  }
  expose(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) lines.push(k ? `${this.name}{${k}} ${v}` : `${this.name} ${v}`);
    return lines.join("\n");
  }
}

export class Gauge {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(labels: Labels, v: number): void {
    this.values.set(key(labels), v);
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels)) ?? 0;
  }
  expose(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [k, v] of this.values) lines.push(k ? `${this.name}{${k}} ${v}` : `${this.name} ${v}`);
    return lines.join("\n");
  }
}

export class MetricsRegistry {
  private readonly all: Array<Counter | Gauge> = [];
  counter(name: string, help: string): Counter {
    const c = new Counter(name, help);
    this.all.push(c);
    return c;
  }
  gauge(name: string, help: string): Gauge {
    const g = new Gauge(name, help);
    this.all.push(g);
    return g;
  }
  expose(): string {
    return this.all.map((m) => m.expose()).join("\n") + "\n";
  }
}

export interface Metrics {
  registry: MetricsRegistry;
  /** admission decisions by op (deploy/delete) and result (create, update, duplicate, delete, or a rejection code) */
  decisions: Counter;
  /** node API requests refused before admission, by code (malformed, too_large, bad_signature, ...) */
  apiErrors: Counter;
  /** requests shed before any work (node API and gossip responders), by subject and reason (bus/limits.ts SHED_REASONS) */
  shed: Counter;
  /** shed requests that got no reply (none asked, or over the refusal budget), by subject */
  shedDropped: Counter;
  /** group commits of admission decisions (one transaction, one fsync each) */
  groupCommits: Counter;
  /** admission writes in those group commits (divided by groupCommits: the average group size) */
  groupCommitWrites: Counter;
  /** free capacity per unit (bytes or counts) */
  free: Gauge;
  /** reserved (used) capacity per unit */
  used: Gauge;
}

export function createMetrics(registry = new MetricsRegistry()): Metrics {
  return {
    registry,
    decisions: registry.counter("capacity_agent_decisions_total", "admission decisions by op and result"),
    apiErrors: registry.counter("capacity_agent_api_errors_total", "node API requests refused before admission, by code"),
    shed: registry.counter("capacity_agent_requests_shed_total", "requests shed before any work, by subject and reason"),
    shedDropped: registry.counter("capacity_agent_requests_shed_unanswered_total", "shed requests that got no reply, by subject"),
    groupCommits: registry.counter("capacity_agent_group_commits_total", "group commits of admission decisions (one fsync each)"),
    groupCommitWrites: registry.counter("capacity_agent_group_commit_writes_total", "admission writes in group commits"),
    free: registry.gauge("capacity_agent_free_units", "free capacity per unit"),
    used: registry.gauge("capacity_agent_used_units", "reserved capacity per unit"),
  };
}
