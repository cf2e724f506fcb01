import { EventEmitter } from "node:events";
import { capacityOf, freeOf, type Capacity, type CapacityPolicy } from "../capacity/model";
import { addUnits, diffUnits, zeroUnits, type Units } from "../capacity/units";
import type { Logger } from "../log/logger";
import { StoreError } from "../store/errors";
import type { DeploymentWrite, Store } from "../store/store";
import type { Metrics } from "../metrics/metrics";
import { refused } from "../result";
import { admitDelete, admitDeploy, type Decision, type DeployInput, type NodeState, type Reservation } from "./admit";

export interface LedgerOptions {
  power: "up" | "standby";
  rented: boolean;
  policy: CapacityPolicy;
}

/** What the ledger keeps in the store: deployments, tombstones, and atomic group writes (the Store is one). */
export type LedgerStore = Pick<Store, "loadDeployments" | "loadTombstones" | "putDeployment" | "deleteDeployment" | "applyDeploymentWrites">;

export interface LedgerModules {
  store: LedgerStore;
  logger: Logger;
  now: () => number;
  metrics: Metrics | null;
  /** when a group commit is written: default setImmediate (after the turn's other decisions) */
  defer?: Defer;
}

/** Run fn once the current event-loop turn's work is done (setImmediate); tests may pass their own. */
export type Defer = (fn: () => void) => void;

/** A decision taken while a group commit is open: its write (if any), how to undo it, who waits. */
interface Grouped {
  op: "deploy" | "delete";
  decision: Decision;
  /** performance.now() when the decision was asked for (the histogram runs until it is on disk) */
  t0: number;
  write?: DeploymentWrite;
  undo?: () => void;
  change?: LedgerChange;
  resolve: (d: Decision) => void;
  reject: (err: unknown) => void;
}

export type LedgerChange =
  | { kind: "create" | "update" | "delete"; id: number; version: number }
  | { kind: "capacity" }
  | { kind: "power" };

/**
 * The I/O shell around the pure admission functions: it holds the node's state in memory, asks
 * `admitDeploy`/`admitDelete` for a decision, writes an accepted change to the store (durable when
 * the call returns) and only then updates memory. Every method is synchronous, so decisions on one
 * node are serialised by the event loop: of concurrent requests for the last capacity exactly one
 * wins.
 *
 * Group commit (`deployDurably`/`deleteDurably`, what the node API uses): the decision is taken at
 * once against memory that already holds every earlier decision, its write joins the others taken
 * in the same event-loop turn, and the whole group is written in one transaction (one fsync) on
 * the next turn; only then do the promises resolve (and the replies go out) and the change events
 * fire. A reply that says accepted still means the decision is on disk. If the group cannot be
 * written (full disk), memory is rolled back and every accepted decision of the group becomes
 * `store_full`. Every decision taken while a group is open waits for it (a duplicate of a pending
 * create must not be acknowledged before the create is on disk).
 */
export class Ledger {
  private readonly events = new EventEmitter();
  private readonly log: Logger;
  private readonly deploymentsById = new Map<number, Reservation>();
  private readonly tombstones: Map<number, number>;
  private usedUnits: Units = zeroUnits();
  private cap: Capacity;
  private power: "up" | "standby";
  private debt: ReadonlySet<number> = new Set();
  /** power management (docs/power.md): when the power state last changed, when capacity was last claimed */
  private powerSinceMs: number;
  private lastClaimMs = 0;
  private powerReason = "start";
  private group: Grouped[] = [];
  private groupScheduled = false;

  constructor(
    private readonly options: LedgerOptions,
    private readonly modules: LedgerModules,
    total: Units,
  ) {
    this.log = modules.logger.child({ module: "admission" });
    this.power = options.power;
    this.powerSinceMs = modules.now();
    this.cap = capacityOf(total, options.policy);
    for (const d of modules.store.loadDeployments()) {
      const { request: _request, ...res } = d;
      this.deploymentsById.set(d.id, res);
      this.usedUnits = addUnits(this.usedUnits, d.units);
    }
    this.tombstones = modules.store.loadTombstones();
  }

  onChange(fn: (change: LedgerChange) => void): () => void {
    this.events.on("change", fn);
    return () => this.events.off("change", fn);
  }

  private emit(change: LedgerChange): void {
    this.events.emit("change", change);
  }

  state(): NodeState {
    return {
      reservable: this.cap.reservable,
      used: this.usedUnits,
      deployments: this.deploymentsById,
      tombstones: this.tombstones,
      power: this.power,
      rented: this.options.rented,
      twinsInDebt: this.debt,
    };
  }

  capacity(): Capacity {
    return this.cap;
  }

  used(): Units {
    return this.usedUnits;
  }

  free(): Units {
    return freeOf(this.cap, this.usedUnits);
  }

  /** Twins the chain found in debt at the last accepted proof (replaces the previous set). */
  setTwinsInDebt(ids: readonly number[]): void {
    this.debt = new Set(ids);
  }

  powerState(): "up" | "standby" {
    return this.power;
  }

  /** Change the power state; `reason` is announced (power management: idle, usage_high, periodic, random, requested, deploy). */
  setPower(state: "up" | "standby", reason = "requested"): void {
    if (state === this.power) return;
    this.power = state;
    this.powerReason = reason;
    this.powerSinceMs = this.modules.now();
    this.log.info({ event: "power_changed", state, reason }, "power state changed");
    this.emit({ kind: "power" });
  }

  /** When the power state last changed and capacity was last claimed (0 = never since start), ms. */
  powerInfo(): { sinceMs: number; lastClaimMs: number; reason: string } {
    return { sinceMs: this.powerSinceMs, lastClaimMs: this.lastClaimMs, reason: this.powerReason };
  }

  deployments(): Reservation[] {
    return [...this.deploymentsById.values()].sort((a, b) => a.id - b.id);
  }

  get(id: number): Reservation | undefined {
    return this.deploymentsById.get(id);
  }

  /** New hardware totals (a re-probe found a change). Existing reservations stay; free may go to zero. */
  setTotal(total: Units): void {
    const before = this.cap;
    this.cap = capacityOf(total, this.options.policy);
    this.log.info({ event: "capacity_changed", before: before.reservable, after: this.cap.reservable }, "reservable capacity changed");
    this.emit({ kind: "capacity" });
  }

  /** Decide and, when accepted, durably apply a deploy. */
  deploy(input: DeployInput, request: Uint8Array): Decision {
    const t0 = performance.now();
    this.flushGroup();
    const decision = admitDeploy(input, this.state(), this.modules.now());
    const a = decision.ok ? decision.value : undefined;
    if (a && (a.kind === "create" || a.kind === "update")) {
      const res = a.reservation;
      const kind = a.kind;
      const full = this.persist(() => this.modules.store.putDeployment(res, request, kind));
      if (full) {
        this.record("deploy", full, t0);
        return full;
      }
      const delta = kind === "update" && a.previous ? diffUnits(res.units, a.previous.units) : res.units;
      this.usedUnits = addUnits(this.usedUnits, delta);
      this.deploymentsById.set(res.id, res);
      this.tombstones.delete(res.id);
      this.lastClaimMs = this.modules.now();
      this.emit({ kind, id: res.id, version: res.version });
    }
    this.record("deploy", decision, t0);
    return decision;
  }

  /** Decide and, when accepted, durably apply a delete. */
  delete(input: { id: number; twinId: number }): Decision {
    const t0 = performance.now();
    this.flushGroup();
    const decision = admitDelete(input, this.state());
    if (decision.ok && decision.value.kind === "delete") {
      const prev = decision.value.previous;
      const full = this.persist(() => this.modules.store.deleteDeployment(prev, this.modules.now()));
      if (full) {
        this.record("delete", full, t0);
        return full;
      }
      this.usedUnits = diffUnits(this.usedUnits, prev.units);
      this.deploymentsById.delete(prev.id);
      this.tombstones.set(prev.id, prev.version);
      this.emit({ kind: "delete", id: prev.id, version: prev.version });
    }
    this.record("delete", decision, t0);
    return decision;
  }

  /** Decide now, write with this turn's other decisions in one transaction, resolve once on disk. */
  deployDurably(input: DeployInput, request: Uint8Array): Promise<Decision> {
    const t0 = performance.now();
    const decision = admitDeploy(input, this.state(), this.modules.now());
    const a = decision.ok ? decision.value : undefined;
    if (!(a && (a.kind === "create" || a.kind === "update"))) return this.join({ op: "deploy", decision, t0 });
    const res = a.reservation;
    const kind = a.kind;
    const before = { used: this.usedUnits, res: this.deploymentsById.get(res.id), tomb: this.tombstones.get(res.id) };
    const delta = kind === "update" && a.previous ? diffUnits(res.units, a.previous.units) : res.units;
    this.usedUnits = addUnits(this.usedUnits, delta);
    this.deploymentsById.set(res.id, res);
    this.tombstones.delete(res.id);
    this.lastClaimMs = this.modules.now();
    return this.join({
      op: "deploy",
      decision,
      t0,
      write: { kind, res, request },
      undo: () => this.restore(res.id, before),
      change: { kind, id: res.id, version: res.version },
    });
  }

  /** Decide now, write with this turn's other decisions in one transaction, resolve once on disk. */
  deleteDurably(input: { id: number; twinId: number }): Promise<Decision> {
    const t0 = performance.now();
    const decision = admitDelete(input, this.state());
    if (!(decision.ok && decision.value.kind === "delete")) return this.join({ op: "delete", decision, t0 });
    const prev = decision.value.previous;
    const before = { used: this.usedUnits, res: this.deploymentsById.get(prev.id), tomb: this.tombstones.get(prev.id) };
    this.usedUnits = diffUnits(this.usedUnits, prev.units);
    this.deploymentsById.delete(prev.id);
    this.tombstones.set(prev.id, prev.version);
    return this.join({
      op: "delete",
      decision,
      t0,
      write: { kind: "delete", res: prev, atMs: this.modules.now() },
      undo: () => this.restore(prev.id, before),
      change: { kind: "delete", id: prev.id, version: prev.version },
    });
  }

  /** Decisions waiting for the open group commit. */
  get pendingWrites(): number {
    return this.group.length;
  }

  private restore(id: number, before: { used: Units; res: Reservation | undefined; tomb: number | undefined }): void {
    this.usedUnits = before.used;
    if (before.res) this.deploymentsById.set(id, before.res);
    else this.deploymentsById.delete(id);
    if (before.tomb !== undefined) this.tombstones.set(id, before.tomb);
    else this.tombstones.delete(id);
  }

  private join(g: Omit<Grouped, "resolve" | "reject">): Promise<Decision> {
    if (this.group.length === 0 && !g.write) {
      // nothing is waiting to be written: this decision depends on disk state only
      this.record(g.op, g.decision, g.t0);
      return Promise.resolve(g.decision);
    }
    return new Promise<Decision>((resolve, reject) => {
      this.group.push({ ...g, resolve, reject });
      if (this.groupScheduled) return;
      this.groupScheduled = true;
      (this.modules.defer ?? setImmediate)(() => this.flushGroup());
    });
  }

  /** Write the open group in one transaction, then answer it; on failure roll memory back. */
  flushGroup(): void {
    this.groupScheduled = false;
    const group = this.group;
    if (group.length === 0) return;
    this.group = [];
    const writes = group.flatMap((g) => (g.write ? [g.write] : []));
    let full: Decision | undefined;
    try {
      full = this.persist(() => this.modules.store.applyDeploymentWrites(writes));
    } catch (err) {
      for (let i = group.length - 1; i >= 0; i--) group[i].undo?.();
      for (const g of group) g.reject(err);
      return;
    }
    if (full) {
      for (let i = group.length - 1; i >= 0; i--) group[i].undo?.();
      this.log.warn({ event: "group_commit_failed", decisions: group.length, writes: writes.length }, "a group of decisions could not be written: the disk is full");
    }
    if (writes.length > 0 && !full) {
      this.modules.metrics?.groupCommits.inc();
      this.modules.metrics?.groupCommitWrites.inc({}, writes.length);
    }
    for (const g of group) {
      const d = full && g.decision.ok ? full : g.decision;
      if (!full && g.change) this.emit(g.change);
      this.record(g.op, d, g.t0);
      g.resolve(d);
    }
  }

  /**
   * Write an accepted change. On a full disk nothing was written (the transaction rolled back) and
   * memory is left as it was: the request is refused with `store_full` and may be sent again.
   */
  private persist(write: () => void): Decision | undefined {
    try {
      write();
      return undefined;
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== "store_full") throw err;
      return refused({ code: "store_full", message: "the node's disk is full: it refuses new deployments, updates and deletes until its operator frees space (reads go on); try again later or use another node" });
    }
  }

  private record(op: "deploy" | "delete", d: Decision, t0: number): void {
    this.modules.metrics?.decisionSeconds.observe({ op }, (performance.now() - t0) / 1000);
    if (d.ok) {
      this.modules.metrics?.decisions.inc({ op, result: d.value.kind });
    } else {
      this.modules.metrics?.decisions.inc({ op, result: d.refusal.code });
    }
  }
}
