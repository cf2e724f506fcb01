import { formatAmount } from "../capacity/size";
import { UNIT_NAMES, diffUnits, type UnitName, type Units } from "../capacity/units";
import type { DeploymentSpec } from "./spec";
import { ok, refused, type Result } from "../result";

/** Stable rejection codes; also metric labels. */
export type RejectCode =
  | "insufficient_capacity"
  | "invalid_spec"
  | "unauthorized"
  | "bad_signature"
  | "stale_version"
  | "node_standby"
  | "too_large"
  | "malformed"
  | "gpu_requires_rent"
  | "not_found"
  | "stale_request"
  | "store_full"
  | "internal"
  /** the twin is in debt on the chain (its balance did not cover its last bill): no new deployments until it is funded */
  | "twin_in_debt"
  /** the node API shed the request (a requester over its rate, full queues); retry later */
  | "rate_limited";

export interface Rejection {
  code: RejectCode;
  message: string;
  unit?: UnitName;
  requested?: number;
  free?: number;
  path?: string;
}

export interface Reservation {
  id: number;
  twinId: number;
  version: number;
  units: Units;
  /** sha256 of the exact deployment bytes, for idempotency */
  hash: string;
  createdMs: number;
  updatedMs: number;
}

export interface NodeState {
  reservable: Units;
  used: Units;
  deployments: ReadonlyMap<number, Reservation>;
  /** deleted deployment id -> the version it had; a deleted id never comes back at that version or below */
  tombstones: ReadonlyMap<number, number>;
  power: "up" | "standby";
  /** a rented (dedicated) node may host GPU workloads */
  rented: boolean;
  /** twins the chain found in debt at the node's last accepted proof (docs/billing.md); none when absent */
  twinsInDebt?: ReadonlySet<number>;
}

/** What an accepted request does. */
export type Admitted =
  | { kind: "create" | "update"; reservation: Reservation; previous?: Reservation }
  | { kind: "duplicate"; reservation: Reservation }
  | { kind: "delete"; previous: Reservation }
  | { kind: "already_deleted"; id: number; version: number };

/** Accepted (what it does) or refused (the rejection); the wire's DecisionReply is made from it at the node API. */
export type Decision = Result<Admitted, Rejection>;

function reject(code: RejectCode, message: string, extra: Partial<Rejection> = {}): Decision {
  return refused({ code, message, ...extra });
}

/** The first unit whose increase does not fit in what is free, or undefined. */
export function firstShortfall(delta: Units, used: Units, reservable: Units): Shortfall | undefined {
  for (const u of UNIT_NAMES) {
    if (delta[u] <= 0) continue;
    const free = Math.max(0, reservable[u] - used[u]);
    if (delta[u] > free) return { unit: u, requested: delta[u], free };
  }
  return undefined;
}

export interface Shortfall {
  unit: UnitName;
  requested: number;
  free: number;
}

/** What of a node's state decides whether new units fit on it. */
export type Room = Pick<NodeState, "power" | "rented" | "used" | "reservable">;

export type RoomRefusal = { code: "node_standby" } | ({ code: "gpu_requires_rent" | "insufficient_capacity" } & Shortfall);

/**
 * Whether a node takes `units`, growing by `delta` (a create: the units; an update: what it adds):
 * power, then GPUs only on a rented node, then every unit's room. admitDeploy decides with it and
 * the find responder answers with it, so a node answers a find exactly when it would admit the deploy.
 */
export function checkRoom(units: Units, delta: Units, room: Room): RoomRefusal | undefined {
  if (room.power === "standby") return { code: "node_standby" };
  if (units.gpu > 0 && !room.rented) return { code: "gpu_requires_rent", unit: "gpu", requested: units.gpu, free: 0 };
  const short = firstShortfall(delta, room.used, room.reservable);
  return short && { code: "insufficient_capacity", ...short };
}

export interface DeployInput {
  spec: DeploymentSpec;
  units: Units;
  hash: string;
}

/**
 * Decide a deploy (create or update). Pure: no I/O, no clock (`now` is passed in).
 * Order: idempotency and versions first (one id + version gives one answer), then ownership,
 * power state, GPU rules, and last the capacity check of every unit (an update checks its delta).
 */
export function admitDeploy(input: DeployInput, state: NodeState, now: number): Decision {
  const { spec, units, hash } = input;
  const existing = state.deployments.get(spec.id);
  if (existing) {
    if (existing.twinId !== spec.twinId) {
      return reject("unauthorized", `deployment ${spec.id} belongs to twin ${existing.twinId}, not twin ${spec.twinId}`);
    }
    if (spec.version === existing.version) {
      if (hash === existing.hash) return ok({ kind: "duplicate", reservation: existing });
      return reject("stale_version", `deployment ${spec.id} version ${spec.version} exists with other contents; send version ${existing.version + 1} to change it`);
    }
    if (spec.version < existing.version) {
      return reject("stale_version", `deployment ${spec.id} is at version ${existing.version}; version ${spec.version} is older`);
    }
  } else {
    const deletedAt = state.tombstones.get(spec.id);
    if (deletedAt !== undefined && spec.version <= deletedAt) {
      return reject("stale_version", `deployment ${spec.id} was deleted at version ${deletedAt}; a new deployment needs a higher version`);
    }
  }
  if (!existing && state.twinsInDebt?.has(spec.twinId)) {
    return reject("twin_in_debt", `twin ${spec.twinId} is in debt on the chain (its balance did not cover its last bill): fund it (\`capacity-agent balance --twin ${spec.twinId}\` shows it), then deploy again`);
  }
  const no = checkRoom(units, existing ? diffUnits(units, existing.units) : units, state);
  if (no?.code === "node_standby") {
    return reject("node_standby", "the node is in standby and takes no new deployments; wake it or choose another node");
  }
  if (no?.code === "gpu_requires_rent") {
    const { code, ...short } = no;
    return reject(code, "GPU workloads are allowed only on a rented (dedicated) node", short);
  }
  if (no) {
    const { code, ...short } = no;
    const need = `${formatAmount(short.unit, short.requested)} ${short.unit}`;
    const what = existing ? `an update of deployment ${spec.id} needs ${need} more` : `deployment ${spec.id} needs ${need}`;
    return reject(code, `${what} but only ${formatAmount(short.unit, short.free)} is free`, short);
  }
  const reservation: Reservation = {
    id: spec.id,
    twinId: spec.twinId,
    version: spec.version,
    units,
    hash,
    createdMs: existing ? existing.createdMs : now,
    updatedMs: now,
  };
  return ok(existing ? { kind: "update", reservation, previous: existing } : { kind: "create", reservation });
}

/** Decide a delete. Only the owner may delete; deleting twice answers the same. */
export function admitDelete(input: { id: number; twinId: number }, state: NodeState): Decision {
  const existing = state.deployments.get(input.id);
  if (!existing) {
    const deletedAt = state.tombstones.get(input.id);
    if (deletedAt !== undefined) return ok({ kind: "already_deleted", id: input.id, version: deletedAt });
    return reject("not_found", `deployment ${input.id} is not on this node`);
  }
  if (existing.twinId !== input.twinId) {
    return reject("unauthorized", `deployment ${input.id} belongs to twin ${existing.twinId}; only its owner may delete it`);
  }
  return ok({ kind: "delete", previous: existing });
}
