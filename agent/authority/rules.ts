/**
 * The chain's rules, as a pallet would enforce them (DESIGN.md "Identity, registry, chain" and
 * "Usage proofs"). Pure functions: no I/O, no clock of their own (`nowMs` is passed in), no
 * signature checks (the caller verifies the envelope: a call whose signature does not verify never
 * gets here; for a proof it says whether its signer is the key the chain binds to the node:
 * `signerOk`). Every refusal is a value with a stable code, reused
 * as a metric label, and a message a person can act on.
 */
import { GiB, UNIT_NAMES, unitsEqual, type UnitName, type Units } from "../capacity/units";
import type { ChainNodeRegistration } from "../chain/backend";
import { sameKey } from "../identity/envelope";
import type { SchemeName } from "../identity/keys";
import { hashesEqual } from "../proofs/merkle";
import { ZERO_HASH, type AmountField, type ProofHeader } from "../proofs/proof";
import { ok, refused, type Refused, type Result } from "../result";
import type { ChainPolicy } from "./options";

/** Codes of proof.submit refusals. */
export const PROOF_REFUSALS = ["bad_signature", "unknown_node", "gap", "overlap", "duplicate", "hash_mismatch", "exceeds_capacity", "malformed"] as const;
export type ProofRefusalCode = (typeof PROOF_REFUSALS)[number];

/** Codes of twin.register / node.register / farm.register refusals. */
export const CALL_REFUSALS = ["bad_signature", "unauthorized", "stale_request", "malformed", "unknown_farm", "name_taken", "quota_exceeded", "rate_limited"] as const;
export type CallRefusalCode = (typeof CALL_REFUSALS)[number];

export interface Refusal<C extends string = string> {
  code: C;
  message: string;
  /** for exceeds_capacity: the amount field that does not fit, its amount and the largest allowed */
  unit?: AmountField;
  requested?: bigint;
  allowed?: bigint;
}

/** A twin as the chain keeps it. */
export interface ChainTwinRecord {
  twinId: number;
  publicKey: Uint8Array;
  scheme: SchemeName;
  registeredMs: number;
  updatedMs: number;
  /** timestamp of the last accepted ChainCall for this twin (replays at or below it are stale) */
  lastCallMs: number;
}

/** A farm as the chain keeps it. */
export interface ChainFarmRecord {
  farmId: number;
  /** the twin that owns the farm: bound at the first registration, never changed */
  twinId: number;
  name: string;
  /** any twin's node may join (dev grids); else the owner's and allowedTwins' nodes only */
  open: boolean;
  /** twins whose nodes may join, ascending */
  allowedTwins: number[];
  registeredMs: number;
  /** chain time of the last change of the name or access (the first registration counts) */
  updatedMs: number;
  /** timestamp of the last accepted ChainCall for this farm (replays at or below it are stale) */
  lastCallMs: number;
}

/** A node's registration as the chain keeps it. */
export interface ChainNodeRecord extends ChainNodeRegistration {
  /** chain time of the last change of `total` (the first registration counts) */
  capacityUpdatedMs: number;
  /** timestamp of the last accepted ChainCall for this node */
  lastCallMs: number;
}

/** The proof chain's head for one node: the one small entry per node the chain keeps. */
export interface NodeChainState {
  /** 0 before the first proof */
  lastSequence: number;
  lastPeriodEndMs: number;
  /** hash of the last accepted proof header; ZERO_HASH before the first */
  lastHash: Uint8Array;
  /**
   * per unit, the largest capacity the node registered since its last proof: a proof's period may
   * have run partly under a larger capacity than the current one, and is judged against this
   */
  maxCapacity: Units;
}

export interface CallerKey {
  publicKey: Uint8Array;
  scheme: SchemeName;
}

export function initialNodeState(total: Units): NodeChainState {
  return { lastSequence: 0, lastPeriodEndMs: 0, lastHash: ZERO_HASH, maxCapacity: { ...total } };
}

function maxUnits(a: Units, b: Units): Units {
  const r = { ...a };
  for (const u of UNIT_NAMES) r[u] = Math.max(a[u], b[u]);
  return r;
}

function refusal<C extends string>(code: C, message: string, extra: Partial<Refusal<C>> = {}): Refusal<C> {
  return { code, message, ...extra };
}

function refuse<C extends string>(code: C, message: string, extra: Partial<Refusal<C>> = {}): Refused<Refusal<C>> {
  return refused(refusal(code, message, extra));
}

/** The proto (snake_case) name of an amount field: cruSeconds -> cru_seconds. */
export function amountWireName(f: AmountField): string {
  return f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

// ---------------------------------------------------------------------------------------------
// Proofs

/** Which amount field is bounded by which unit of capacity (nu_bytes is not bounded: see below). */
const UNIT_OF: Partial<Record<AmountField, UnitName>> = {
  cruSeconds: "cru",
  mruByteSeconds: "mru",
  sruByteSeconds: "sru",
  hruByteSeconds: "hru",
  ipv4Seconds: "ipv4u",
  gpuSeconds: "gpu",
};

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

const GIB = BigInt(GiB);

/**
 * The largest amounts a node with `capacity` can serve over a period of `periodMs`:
 * - cru/mru/sru/hru/ipv4/gpu seconds: capacity x overprovision(unit) x period seconds (rounded up);
 * - cu_micro_hours: CU is not additive (the sum of per-deployment CU can pass the CU of the sum:
 *   1 CRU + 1 GB and 1 CRU + 4 GB give 0.5 + 1 CU, together 2 CRU + 5 GB give 1.25 CU), so the
 *   bound is the tightest additive upper bound of GRID.md's formula, CU <= CRU/2 + MRU/8 (MRU in
 *   GB), over the overprovisioned capacity: never below the CU of the full capacity, and safe
 *   however the agent sums it (per deployment or over the node);
 * - su_micro_hours: SU = HRU/1200 + SRU/200 is additive, so the SU of the full capacity;
 * - nu_bytes: no bound (the chain knows no bandwidth for a node).
 */
export function capacityBounds(capacity: Units, periodMs: number, policy: ChainPolicy): Partial<Record<AmountField, bigint>> {
  const ms = BigInt(periodMs);
  const eff = {} as Record<UnitName, bigint>;
  for (const u of UNIT_NAMES) eff[u] = BigInt(capacity[u]) * BigInt(policy.overprovision[u]);
  const r: Partial<Record<AmountField, bigint>> = {};
  for (const [field, unit] of Object.entries(UNIT_OF) as Array<[AmountField, UnitName]>) r[field] = ceilDiv(eff[unit] * ms, 1000n);
  // micro-hours = per-hour value x periodMs / 3.6
  r.cuMicroHours = ceilDiv((eff.cru * 4n * GIB + eff.mru) * ms * 10n, 8n * GIB * 36n);
  r.suMicroHours = ceilDiv((eff.hru + 6n * eff.sru) * ms * 10n, 1200n * GIB * 36n);
  return r;
}

/** Accepted: the node's proof chain state after this proof. */
export type ProofCheck = Result<NodeChainState, Refusal<ProofRefusalCode>>;

/**
 * Judge a proof header against the node's chain state.
 *
 * `node` is the node's registration (undefined: `unknown_node`); `state` its proof chain head
 * (undefined: no proof yet). `headerHash` is blake2b-256 of the signed header bytes. `signerOk`
 * says the envelope verified AND its signer is the key registered for `header.nodeId`.
 * `storedHash(seq)` returns the hash of the accepted proof with that sequence (for telling a
 * replay, `duplicate`, from a different proof for a used sequence, `overlap`).
 *
 * Rules, in the order they are checked:
 * 1. the node is registered (unknown_node), the header names it (malformed), its key signed (bad_signature);
 * 2. sequence >= 1; a sequence at or below the last is `duplicate` when it is the very proof that
 *    was accepted with it (same header hash), else `overlap`; above last + 1 is `gap`;
 * 3. period_end > period_start, the end at most maxClockSkewMs past the chain's clock, and no
 *    totals without records (malformed);
 * 4. the period starts where the last proof ended (earlier: overlap; later: gap). The first proof
 *    may start anywhere from firstProofLookbackMs before the node's first registration (earlier:
 *    malformed), since the chain cannot know when the node started metering;
 * 5. previous_hash is the last proof's hash, ZERO_HASH for sequence 1 (hash_mismatch);
 * 6. totals fit the largest capacity registered since the last proof (capacityBounds;
 *    exceeds_capacity names the first amount that does not fit).
 */
export function checkProof(
  state: NodeChainState | undefined,
  node: ChainNodeRecord | undefined,
  header: ProofHeader,
  headerHash: Uint8Array,
  signerOk: boolean,
  nowMs: number,
  policy: ChainPolicy,
  storedHash: (sequence: number) => Uint8Array | undefined = () => undefined,
): ProofCheck {
  const id = header.nodeId;
  if (!node) return refuse("unknown_node", `node ${id} is not registered on the chain; register it (node.register) before submitting proofs`);
  if (node.nodeId !== id) return refuse("malformed", `the proof names node ${id}, not node ${node.nodeId}`);
  if (!signerOk) return refuse("bad_signature", `the proof is not signed by the key registered for node ${id}; sign it with the node's key`);
  const st = state ?? initialNodeState(node.total);
  const seq = header.sequence;
  if (seq < 1) return refuse("malformed", "sequence must start at 1");
  if (seq <= st.lastSequence) {
    const stored = seq === st.lastSequence ? st.lastHash : storedHash(seq);
    if (stored && hashesEqual(stored, headerHash)) return refuse("duplicate", `proof ${seq} of node ${id} was accepted already; nothing to do`);
    return refuse("overlap", `node ${id} has an accepted proof ${seq} that differs from this one (its last accepted sequence is ${st.lastSequence}); a sequence is never reused, send proof ${st.lastSequence + 1}`);
  }
  if (seq > st.lastSequence + 1) {
    return refuse("gap", `proof ${seq} does not follow node ${id}'s last accepted proof ${st.lastSequence}; send proof ${st.lastSequence + 1} first`);
  }
  if (header.periodEndMs <= header.periodStartMs) {
    return refuse("malformed", `the period ends (${header.periodEndMs}) at or before it starts (${header.periodStartMs})`);
  }
  if (header.periodEndMs > nowMs + policy.maxClockSkewMs) {
    return refuse("malformed", `the period ends at ${iso(header.periodEndMs)}, ${Math.round((header.periodEndMs - nowMs) / 1000)} s after the chain's clock (allowed ${policy.maxClockSkewMs / 1000} s); check the node's clock and send a proof only after its period ended`);
  }
  if (header.recordCount === 0) {
    const nonZero = (Object.keys(header.totals) as AmountField[]).find((f) => header.totals[f] !== 0n);
    if (nonZero) return refuse("malformed", `the proof has no records but its total ${amountWireName(nonZero)} is ${header.totals[nonZero]}`);
  }
  if (seq === 1) {
    const earliest = node.registeredMs - policy.firstProofLookbackMs;
    if (header.periodStartMs < earliest) {
      return refuse("malformed", `node ${id}'s first proof starts at ${iso(header.periodStartMs)}, more than ${Math.round(policy.firstProofLookbackMs / 1000)} s before the node was registered (${iso(node.registeredMs)}); start the first period at or after ${iso(earliest)}`);
    }
  } else if (header.periodStartMs < st.lastPeriodEndMs) {
    return refuse("overlap", `the period starts at ${iso(header.periodStartMs)}, before node ${id}'s last proof ended (${iso(st.lastPeriodEndMs)}); periods never overlap, start it at ${st.lastPeriodEndMs}`);
  } else if (header.periodStartMs > st.lastPeriodEndMs) {
    return refuse("gap", `the period starts at ${iso(header.periodStartMs)}, after node ${id}'s last proof ended (${iso(st.lastPeriodEndMs)}); periods are contiguous, start it at ${st.lastPeriodEndMs}`);
  }
  const expectHash = seq === 1 ? ZERO_HASH : st.lastHash;
  if (!hashesEqual(header.previousHash, expectHash)) {
    return refuse("hash_mismatch", `previous_hash ${hex(header.previousHash)} is not the hash of node ${id}'s proof ${seq - 1} (${hex(expectHash)})`);
  }
  const capacity = maxUnits(st.maxCapacity, node.total);
  const periodMs = header.periodEndMs - header.periodStartMs;
  const bounds = capacityBounds(capacity, periodMs, policy);
  for (const [field, allowed] of Object.entries(bounds) as Array<[AmountField, bigint]>) {
    const requested = header.totals[field];
    if (requested > allowed) {
      const unit = UNIT_OF[field];
      const basis = unit
        ? `${policy.overprovision[unit]} x ${capacity[unit]} ${unit.toUpperCase()} x ${periodMs / 1000} s`
        : field === "cuMicroHours"
          ? `CRU/2 + MRU/8 per hour over ${policy.overprovision.cru} x ${capacity.cru} CRU and ${capacity.mru} bytes MRU for ${periodMs / 1000} s`
          : `HRU/1200 + SRU/200 per hour over ${capacity.hru} bytes HRU and ${capacity.sru} bytes SRU for ${periodMs / 1000} s`;
      return refuse("exceeds_capacity", `${amountWireName(field)} ${requested} exceeds what node ${id} can serve in this period: at most ${allowed} (${basis}; the largest capacity registered since its last proof)`, { unit: field, requested, allowed });
    }
  }
  // The period is judged; what the NEXT period is judged against: the current capacity, unless the
  // capacity changed after this period ended (allowing for clock skew), when the larger one is kept.
  const settled = node.capacityUpdatedMs + policy.maxClockSkewMs <= header.periodEndMs;
  return ok({ lastSequence: seq, lastPeriodEndMs: header.periodEndMs, lastHash: new Uint8Array(headerHash), maxCapacity: settled ? { ...node.total } : capacity });
}

// ---------------------------------------------------------------------------------------------
// Registry calls
//
// The chain assigns twin, farm and node ids, as tfchain does, and binds each to the account (key)
// that registered it: a twin to its key (one twin per key), a farm to its owner twin, a node to
// its twin (one node per twin; the node key is the twin's key). A call names an id only to say
// "mine": a nonzero id that is not the signer's own is `unauthorized`, so nobody can take an id
// before its owner, and a re-registration by another key changes nothing.

export interface RegisterTwinCall {
  timestampMs: number;
  /** 0 = "my twin" (created when absent); else it must be the signer's own twin */
  twinId: number;
}

/** Which twins may put nodes in a farm: 0 keep, 1 open (anyone), 2 closed (owner and allowed twins). */
export type FarmAccessWire = 0 | 1 | 2;

export interface RegisterFarmCall {
  timestampMs: number;
  /** 0 = create a farm owned by the signer's twin; else the farm to change (owner only) */
  farmId: number;
  /** 0 or the signer's own twin */
  twinId: number;
  /** "" = none given: "farm-<id>" on a new farm, the current name kept on a later call */
  name: string;
  access: FarmAccessWire;
  allowTwins: number[];
  disallowTwins: number[];
}

export interface RegisterNodeCall {
  timestampMs: number;
  /** 0 = "my twin's node" (created when absent); else it must be the signer twin's node */
  nodeId: number;
  farmId: number;
  /** 0 or the signer's own twin */
  twinId: number;
  /** undefined when the call carried none (malformed) */
  total: Units | undefined;
}

function checkTimestamp(ts: number, lastCallMs: number | undefined, nowMs: number, policy: ChainPolicy, what: string): Refusal<CallRefusalCode> | undefined {
  const skew = Math.abs(nowMs - ts);
  if (skew > policy.maxClockSkewMs) {
    return refusal("stale_request", `the call's timestamp is ${Math.round(skew / 1000)} s from the chain's clock (allowed ${policy.maxClockSkewMs / 1000} s); check the clock and send a fresh call`);
  }
  if (lastCallMs !== undefined && ts <= lastCallMs) {
    return refusal("stale_request", `the call's timestamp ${ts} is not after the last accepted call for ${what} (${lastCallMs}); a replayed call is refused, send a fresh one`);
  }
  return undefined;
}

function checkId(v: number, field: string, allowZero = false): Refusal<CallRefusalCode> | undefined {
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 0xffffffff) return refusal("malformed", `${field} must be an integer from ${allowZero ? 0 : 1} to 4294967295, got ${v}`);
  return undefined;
}

function sameSigner(rec: { publicKey: Uint8Array; scheme: SchemeName }, signer: CallerKey): boolean {
  return sameKey(rec.publicKey, signer.publicKey) && rec.scheme === signer.scheme;
}

const NO_TWIN = (what: string): Refused<Refusal<CallRefusalCode>> =>
  refuse("unauthorized", `the signing key has no twin on the chain; register its twin first (twin.register with twin_id 0, \`capacity-agent registry add --chain --twin 0 --key KEYFILE\`), then ${what}`);

export type TwinCheck = Result<{ kind: "registered" | "unchanged"; record: ChainTwinRecord }, Refusal<CallRefusalCode>>;

/**
 * twin.register. `mine` is the twin the chain binds to the signer's key (undefined: none yet);
 * `nextId` the id a new twin gets. twin_id 0 creates the key's twin (or returns the one it has,
 * "unchanged"); a nonzero twin_id must be the key's own twin, else `unauthorized` (ids are
 * assigned by the chain). The timestamp must be within maxClockSkewMs of the chain's clock and,
 * for a known twin, after its last accepted call (`stale_request`: a replay).
 */
export function checkRegisterTwin(mine: ChainTwinRecord | undefined, call: RegisterTwinCall, signer: CallerKey, nowMs: number, policy: ChainPolicy, nextId: number): TwinCheck {
  const bad = checkId(call.twinId, "register_twin.twin_id", true);
  if (bad) return refused(bad);
  if (mine && !sameSigner(mine, signer)) return refuse("unauthorized", `twin ${mine.twinId} is registered with another key`);
  if (call.twinId !== 0 && mine?.twinId !== call.twinId) {
    return refuse(
      "unauthorized",
      mine
        ? `this key's twin is ${mine.twinId}, not ${call.twinId}; twin ids are assigned by the chain (send twin_id 0 or ${mine.twinId})`
        : `twin ids are assigned by the chain and this key has no twin; send twin_id 0 (\`--twin 0\`) to create it, the reply says its id`,
    );
  }
  const stale = checkTimestamp(call.timestampMs, mine?.lastCallMs, nowMs, policy, `twin ${mine?.twinId ?? "(new)"}`);
  if (stale) return refused(stale);
  if (mine) return ok({ kind: "unchanged", record: { ...mine, lastCallMs: call.timestampMs } });
  const bid = checkId(nextId, "the next twin id");
  if (bid) return refused(bid);
  return ok({ kind: "registered", record: { twinId: nextId, publicKey: new Uint8Array(signer.publicKey), scheme: signer.scheme, registeredMs: nowMs, updatedMs: nowMs, lastCallMs: call.timestampMs } });
}

/** Longest farm name, in characters (Unicode code points). */
export const FARM_NAME_MAX = 64;

/** Not printable: control, format, surrogate, private-use and unassigned code points, line and paragraph separators. */
const NOT_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/u;

export type FarmCheck = Result<{ kind: "registered" | "renamed" | "updated" | "unchanged"; record: ChainFarmRecord }, Refusal<CallRefusalCode>>;

/** What checkRegisterFarm needs from the chain's storage. */
export interface FarmContext {
  /** the farm call.farmId names (undefined: none, or farm_id 0) */
  existing: ChainFarmRecord | undefined;
  /** the signer key's twin */
  twin: ChainTwinRecord | undefined;
  /** the farm that has the name the call asks for, if any */
  named: ChainFarmRecord | undefined;
  /** farms the signer's twin owns */
  farmsOfTwin: number;
  /** id for a new farm */
  nextId: number;
}

/**
 * farm.register: a farm belongs to a twin, as on tfchain. The signer's key must have a twin
 * (else `unauthorized`, register the twin first); a nonzero twin_id must be that twin. farm_id 0
 * creates a farm owned by it (at most policy.maxFarmsPerTwin: `quota_exceeded`); a nonzero farm_id
 * must be a farm it owns (`unauthorized`). Names are unique (`name_taken`), at most FARM_NAME_MAX
 * printable characters (`malformed`). The owner sets who may put nodes in the farm: open (any
 * twin; dev grids), or closed (new farms) with an allow list of twins (at most
 * policy.maxAllowedTwinsPerFarm, `quota_exceeded`). Timestamps as for twins, per farm.
 */
export function checkRegisterFarm(ctx: FarmContext, call: RegisterFarmCall, signer: CallerKey, nowMs: number, policy: ChainPolicy): FarmCheck {
  const bad =
    checkId(call.farmId, "register_farm.farm_id", true) ??
    checkId(call.twinId, "register_farm.twin_id", true) ??
    [...call.allowTwins, ...call.disallowTwins].map((t) => checkId(t, "register_farm.allow_twins")).find((r) => r);
  if (bad) return refused(bad);
  if (![0, 1, 2].includes(call.access)) return refuse("malformed", `register_farm.access must be KEEP, OPEN or CLOSED, got ${call.access}`);
  const chars = [...call.name];
  if (chars.length > FARM_NAME_MAX) return refuse("malformed", `register_farm.name has ${chars.length} characters; at most ${FARM_NAME_MAX} are allowed`);
  const np = NOT_PRINTABLE.exec(call.name);
  if (np) return refuse("malformed", `register_farm.name holds a character that is not printable (U+${np[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}); use printable characters only`);
  const { twin, existing } = ctx;
  if (!twin) return NO_TWIN("its farm");
  if (!sameSigner(twin, signer)) return refuse("unauthorized", `twin ${twin.twinId} is registered with another key`);
  if (call.twinId !== 0 && call.twinId !== twin.twinId) {
    return refuse("unauthorized", `the call names twin ${call.twinId} as the owner, but the signing key's twin is ${twin.twinId}; a farm is registered by its owner's key`);
  }
  if (call.farmId !== 0) {
    if (!existing || existing.farmId !== call.farmId) {
      return refuse("unauthorized", `farm ${call.farmId} does not exist; farm ids are assigned by the chain: send farm_id 0 (\`--farm 0\`) to create a farm, the reply says its id`);
    }
    if (existing.twinId !== twin.twinId) return refuse("unauthorized", `farm ${call.farmId} belongs to twin ${existing.twinId}; only that twin may change it`);
  } else if (ctx.farmsOfTwin >= policy.maxFarmsPerTwin) {
    return refuse("quota_exceeded", `twin ${twin.twinId} owns ${ctx.farmsOfTwin} farms, the most this chain allows (${policy.maxFarmsPerTwin}); rename one of them instead (farm_id of the farm)`);
  }
  const target = call.farmId !== 0 ? existing : undefined;
  const stale = checkTimestamp(call.timestampMs, target?.lastCallMs, nowMs, policy, `farm ${call.farmId}`);
  if (stale) return refused(stale);
  const id = target ? target.farmId : ctx.nextId;
  const bid = checkId(id, "the next farm id");
  if (bid) return refused(bid);
  const name = call.name !== "" ? call.name : (target?.name ?? `farm-${id}`);
  if (ctx.named && ctx.named.farmId !== id) return refuse("name_taken", `farm ${ctx.named.farmId} is named "${name}" already; farm names are unique, choose another`);
  const allowed = new Set(target?.allowedTwins ?? []);
  for (const t of call.allowTwins) allowed.add(t);
  for (const t of call.disallowTwins) allowed.delete(t);
  if (allowed.size > policy.maxAllowedTwinsPerFarm) {
    return refuse("quota_exceeded", `farm ${id} would allow ${allowed.size} twins, more than this chain keeps per farm (${policy.maxAllowedTwinsPerFarm}); make it open instead, or remove twins`);
  }
  const open = call.access === 0 ? (target?.open ?? false) : call.access === 1;
  const allowedTwins = [...allowed].sort((a, b) => a - b);
  if (!target) {
    return ok({ kind: "registered", record: { farmId: id, twinId: twin.twinId, name, open, allowedTwins, registeredMs: nowMs, updatedMs: nowMs, lastCallMs: call.timestampMs } });
  }
  const renamed = name !== target.name;
  const accessChanged = open !== target.open || allowedTwins.join(",") !== target.allowedTwins.join(",");
  const kind = renamed ? "renamed" : accessChanged ? "updated" : "unchanged";
  return ok({ kind, record: { ...target, name, open, allowedTwins, updatedMs: kind === "unchanged" ? target.updatedMs : nowMs, lastCallMs: call.timestampMs } });
}

/** Whether `farm` admits nodes of twin `twinId`: its owner's, any when open, else the allowed twins'. */
export function farmAdmits(farm: ChainFarmRecord, twinId: number): boolean {
  return farm.open || farm.twinId === twinId || farm.allowedTwins.includes(twinId);
}

export type NodeCheck = Result<{ kind: "registered" | "updated" | "unchanged"; record: ChainNodeRecord; state: NodeChainState }, Refusal<CallRefusalCode>>;

/** What checkRegisterNode needs from the chain's storage. */
export interface NodeContext {
  /** the signer key's twin */
  twin: ChainTwinRecord | undefined;
  /** that twin's node, with its proof chain head (undefined: none yet) */
  mine: { record: ChainNodeRecord; state: NodeChainState } | undefined;
  /** the chain's record of call.farmId (undefined: not registered) */
  farm: ChainFarmRecord | undefined;
  /** id for a new node */
  nextId: number;
}

/**
 * node.register, signed by the node key. The key must have a twin (the node's twin: register it
 * first, else `unauthorized`); a nonzero twin_id must be that twin and a nonzero node_id its node
 * (`unauthorized`: ids are assigned by the chain). node_id 0 creates the twin's node (one node per
 * twin) or updates it; the farm, twin and capacity are recorded.
 *
 * Farm admission, on the first registration and on a move to another farm: a registered farm
 * must admit the twin (farmAdmits, else `unauthorized`); a farm the chain does not know is
 * `unknown_farm` when policy.requireFarm, else taken as given (dev grids: nodes in farms nobody
 * registered). requireFarm is checked on every call (after the key and the timestamp).
 * A capacity change raises the node's max-capacity-since-last-proof (never lowers it) so a proof
 * for a period that ran partly under the larger capacity still fits.
 */
export function checkRegisterNode(ctx: NodeContext, call: RegisterNodeCall, signer: CallerKey, nowMs: number, policy: ChainPolicy): NodeCheck {
  const bad = checkId(call.nodeId, "register_node.node_id", true) ?? checkId(call.farmId, "register_node.farm_id") ?? checkId(call.twinId, "register_node.twin_id", true);
  if (bad) return refused(bad);
  if (!call.total) return refuse("malformed", "register_node.total is required: the node's hardware capacity");
  const { twin, mine, farm } = ctx;
  if (!twin) return NO_TWIN("the node (the node key is its twin's key)");
  if (!sameSigner(twin, signer)) return refuse("unauthorized", `twin ${twin.twinId} is registered with another key`);
  if (call.twinId !== 0 && call.twinId !== twin.twinId) {
    return refuse("unauthorized", `the call names twin ${call.twinId}, but the signing key's twin is ${twin.twinId}; a node is registered by its own twin's key`);
  }
  const rec = mine?.record;
  if (rec && !sameSigner(rec, signer)) return refuse("unauthorized", `node ${rec.nodeId} is registered with another key; only that key may update it`);
  if (call.nodeId !== 0 && rec?.nodeId !== call.nodeId) {
    return refuse(
      "unauthorized",
      rec
        ? `twin ${twin.twinId}'s node is ${rec.nodeId}, not ${call.nodeId}; node ids are assigned by the chain (send node_id 0 or ${rec.nodeId})`
        : `node ids are assigned by the chain and twin ${twin.twinId} has no node yet; send node_id 0, the reply says the node's id`,
    );
  }
  const stale = checkTimestamp(call.timestampMs, rec?.lastCallMs, nowMs, policy, `node ${rec?.nodeId ?? "(new)"}`);
  if (stale) return refused(stale);
  const known = farm && farm.farmId === call.farmId ? farm : undefined;
  if (policy.requireFarm && !known) {
    return refuse("unknown_farm", `farm ${call.farmId} is not registered on the chain, and this chain registers nodes only into registered farms; have the farm's owner register it first (farm.register, \`capacity-agent registry add --chain --farm 0 --twin OWNER --name NAME\`)`);
  }
  if (known && (!rec || rec.farmId !== call.farmId) && !farmAdmits(known, twin.twinId)) {
    return refuse("unauthorized", `farm ${call.farmId} (owner twin ${known.twinId}) does not admit nodes of twin ${twin.twinId}; ask its owner to allow the twin (\`capacity-agent registry add --chain --farm ${call.farmId} --allow ${twin.twinId} --key OWNERKEY\`) or to open the farm`);
  }
  const total = { ...call.total };
  if (!mine || !rec) {
    const bid = checkId(ctx.nextId, "the next node id");
    if (bid) return refused(bid);
    const record: ChainNodeRecord = {
      nodeId: ctx.nextId,
      farmId: call.farmId,
      twinId: twin.twinId,
      publicKey: new Uint8Array(signer.publicKey),
      scheme: signer.scheme,
      total,
      registeredMs: nowMs,
      updatedMs: nowMs,
      capacityUpdatedMs: nowMs,
      lastCallMs: call.timestampMs,
    };
    return ok({ kind: "registered", record, state: initialNodeState(total) });
  }
  const capacityChanged = !unitsEqual(rec.total, total);
  const changed = capacityChanged || rec.farmId !== call.farmId || rec.twinId !== twin.twinId;
  const record: ChainNodeRecord = {
    ...rec,
    farmId: call.farmId,
    twinId: twin.twinId,
    total,
    updatedMs: changed ? nowMs : rec.updatedMs,
    capacityUpdatedMs: capacityChanged ? nowMs : rec.capacityUpdatedMs,
    lastCallMs: call.timestampMs,
  };
  const state: NodeChainState = { ...mine.state, maxCapacity: maxUnits(mine.state.maxCapacity, total) };
  return ok({ kind: changed ? "updated" : "unchanged", record, state });
}
