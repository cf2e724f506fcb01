/**
 * Chain footprint of usage reporting, in bytes per node-day: what the chain stores and emits for
 * capacity-agent's usage proofs, MEASURED on the chain stand-in's real code (ChainServer.handle and
 * ChainStore, no NATS), against a MODEL of what tfchain stores and emits today for the same node
 * (GRID.md "What tfchain stores and emits today"), for 1, 20 and 100 deployments per node.
 *
 * Run: scripts/chain-footprint [--period S] [--days N] [--deployments 1,20,100]
 *                              [--resource-reports-per-day R] [--json]
 * (the wrapper builds dist/ when needed, then runs: node dist/scripts/chain-footprint.js ...)
 *
 * The model (tfchainModel) is a pure function of the number of contracts, every size a named
 * SCALE constant below; the test test/unit/chain-footprint-model.test.ts checks its arithmetic.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../agent/bus/subjects";
import { GiB, MiB, UNIT_NAMES, type Units } from "../agent/capacity/units";
import { parseChainOptions } from "../agent/chain/options";
import { ChainServer } from "../agent/chain/server";
import { CHAIN_TABLES, ChainStore, type ChainTable } from "../agent/chain/store";
import { chainCallToWire } from "../agent/chain/wire";
import type { WireChainReply } from "../agent/wire/generated";
import { DOMAIN } from "../agent/identity/domains";
import { open, sameKey, seal } from "../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../agent/identity/keys";
import { silentLogger } from "../agent/log/logger";
import { leafHash, merkleRoot } from "../agent/proofs/merkle";
import { encodeProofHeader, encodeRecord, proofHash, ZERO_HASH, type ProofHeader } from "../agent/proofs/proof";
import { meterPeriod, type MeterReservation } from "../agent/usage/meter";
import { encodeTwinSubtotal, twinSubtotals, twinsTree } from "../agent/billing/twins";
import { decode, encode } from "../agent/wire/codec";
import { intOption, scriptFail } from "./script-util";

// =================================================================================================
// The model of tfchain today. Sizes are SCALE encodings (parity-scale-codec) of the types in
// threefoldtech/tfchain: pallet-smart-contract (types.rs, lib.rs, billing.rs), pallet-tfgrid
// (report_uptime_v2) and the runtime (Balance = u128, AccountId = AccountId32, MultiSignature).
// =================================================================================================

/** SCALE Compact<n> length: 1 byte below 2^6, 2 below 2^14, 4 below 2^30, else 1 + the bytes of n (at least 4). */
export function compactSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`compactSize: ${n} is not a non-negative safe integer`);
  if (n < 1 << 6) return 1;
  if (n < 1 << 14) return 2;
  if (n < 2 ** 30) return 4;
  let bytes = 0;
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes++;
  return 1 + Math.max(4, bytes);
}

// ---- a signed extrinsic (UncheckedExtrinsic, format 4) -------------------------------------------
/** Compact<u32> length prefix of the encoded extrinsic: 2 bytes for extrinsics of 64..16383 bytes (all of the model's at D <= 400). */
export const EXTRINSIC_LENGTH_PREFIX_BYTES = 2;
/** Version byte (0x84: signed, extrinsic format 4). */
export const EXTRINSIC_VERSION_BYTES = 1;
/** Signer as MultiAddress::Id(AccountId32): variant 1 + 32. */
export const EXTRINSIC_ADDRESS_BYTES = 33;
/** MultiSignature::Sr25519 (or Ed25519): variant 1 + 64. */
export const EXTRINSIC_SIGNATURE_BYTES = 65;
/** CheckMortality: a mortal Era, 2 bytes. */
export const EXTRINSIC_ERA_BYTES = 2;
/** CheckNonce: Compact<u32> nonce, 4 bytes once an account has signed 16384 or more extrinsics (a node or validator soon has). */
export const EXTRINSIC_NONCE_BYTES = 4;
/** ChargeTransactionPayment: Compact<u128> tip of 0, 1 byte. */
export const EXTRINSIC_TIP_BYTES = 1;
/** Call index: pallet index 1 + call index 1. */
export const EXTRINSIC_CALL_INDEX_BYTES = 2;
/** Everything of a signed extrinsic but its length prefix and its call arguments: 108 bytes. */
export const EXTRINSIC_FIXED_BYTES =
  EXTRINSIC_VERSION_BYTES + EXTRINSIC_ADDRESS_BYTES + EXTRINSIC_SIGNATURE_BYTES + EXTRINSIC_ERA_BYTES + EXTRINSIC_NONCE_BYTES + EXTRINSIC_TIP_BYTES + EXTRINSIC_CALL_INDEX_BYTES;
/** The overhead of a signed extrinsic with a 2-byte length prefix: 110 bytes. */
export const SIGNED_EXTRINSIC_OVERHEAD = EXTRINSIC_LENGTH_PREFIX_BYTES + EXTRINSIC_FIXED_BYTES;

/** Bytes of one signed extrinsic whose call arguments encode to `argsBytes` (length prefix computed exactly). */
export function signedExtrinsicBytes(argsBytes: number): number {
  const body = EXTRINSIC_FIXED_BYTES + argsBytes;
  return compactSize(body) + body;
}

// ---- events (frame_system::EventRecord in System.Events) ----------------------------------------
/** EventRecord.phase = Phase::ApplyExtrinsic(u32): variant 1 + u32 4. */
export const EVENT_PHASE_BYTES = 5;
/** RuntimeEvent: pallet index 1 + event variant 1. */
export const EVENT_INDEX_BYTES = 2;
/** EventRecord.topics: an empty Vec<Hash>, its compact length 1. */
export const EVENT_TOPICS_BYTES = 1;
/** Per event, besides its fields: 8 bytes. */
export const EVENT_RECORD_OVERHEAD = EVENT_PHASE_BYTES + EVENT_INDEX_BYTES + EVENT_TOPICS_BYTES;
/** System.ExtrinsicSuccess { dispatch_info: { weight: { ref_time: Compact<u64> ~5, proof_size: Compact<u64> ~5 }, class 1, pays_fee 1 } }: ~12. */
export const EXTRINSIC_SUCCESS_FIELD_BYTES = 12;
/** TransactionPayment.TransactionFeePaid { who: AccountId32 32, actual_fee: u128 16, tip: u128 16 }. */
export const TRANSACTION_FEE_PAID_FIELD_BYTES = 32 + 16 + 16;
/** Events every extrinsic emits (ExtrinsicSuccess and TransactionFeePaid), with their record overhead: 92 bytes. */
export const SYSTEM_EVENT_BYTES_PER_EXTRINSIC = EVENT_RECORD_OVERHEAD + EXTRINSIC_SUCCESS_FIELD_BYTES + EVENT_RECORD_OVERHEAD + TRANSACTION_FEE_PAID_FIELD_BYTES;
/** Events every extrinsic emits. */
export const SYSTEM_EVENTS_PER_EXTRINSIC = 2;

// ---- state (storage map entries keyed by contract id) --------------------------------------------
/** Storage prefix of a map entry: twox128(pallet name) 16 + twox128(item name) 16. */
export const STORAGE_PREFIX_BYTES = 32;
/** Blake2_128Concat(u64 contract id), the hasher of tfchain's contract maps: blake2_128 16 + the u64 8. */
export const BLAKE2_128_CONCAT_U64_BYTES = 16 + 8;
/** Full key of ContractBillingInformationByID / NodeContractResources / ContractPaymentState entries: 56. */
export const CONTRACT_MAP_KEY_BYTES = STORAGE_PREFIX_BYTES + BLAKE2_128_CONCAT_U64_BYTES;

// ---- tfchain types ------------------------------------------------------------------------------
/** u64 */
export const U64_BYTES = 8;
/** Resources { hru, sru, cru, mru: u64 } (tfchain_support). */
export const RESOURCES_BYTES = 4 * U64_BYTES;
/** ContractResources { contract_id: u64, used: Resources }: 40. */
export const CONTRACT_RESOURCES_BYTES = U64_BYTES + RESOURCES_BYTES;
/** NruConsumption { contract_id, timestamp, window, nru: u64 }: 32. */
export const NRU_CONSUMPTION_BYTES = 4 * U64_BYTES;
/** ContractBillingInformation { previous_nu_reported: u64, last_updated: u64, amount_unbilled: u64 }: 24 (amount_unbilled is a u64 in tfchain's types.rs). */
export const CONTRACT_BILLING_INFORMATION_BYTES = 3 * U64_BYTES;
/**
 * ContractPaymentState { standard_reserve, additional_reserve, standard_overdraft, additional_overdraft: u128,
 * last_updated_seconds: u64, cycles: u16 }: 74, what bill_contract rewrites per bill since tfchain's billing
 * rework (it replaced ContractLock { amount_locked, extra_amount_locked: u128, lock_updated: u64, cycles: u16 }, 42).
 */
export const CONTRACT_PAYMENT_STATE_BYTES = 4 * 16 + U64_BYTES + 2;
/** ContractBill { contract_id: u64, timestamp: u64, discount_level: DiscountLevel (u8 variant), amount_billed: u128 }: 33. */
export const CONTRACT_BILL_BYTES = U64_BYTES + U64_BYTES + 1 + 16;
/** report_uptime_v2(uptime: u64, timestamp_hint: u64) arguments: 16. */
export const REPORT_UPTIME_ARGS_BYTES = 2 * U64_BYTES;
/** NodeUptimeReported(node_id: u32, now: u64, uptime: u64) fields: 20. */
export const NODE_UPTIME_REPORTED_FIELD_BYTES = 4 + U64_BYTES + U64_BYTES;
/** bill_contract_for_block(contract_id: u64) arguments: 8. */
export const BILL_CONTRACT_ARGS_BYTES = U64_BYTES;

// ---- how often (per node and day) ----------------------------------------------------------------
/** report_contract_resources calls a day, each carrying all D contracts (create/update/restart amortised: an assumption). */
export const DEFAULT_RESOURCE_REPORTS_PER_DAY = 1;
/** add_nru_reports: hourly, one entry per contract. */
export const DEFAULT_NRU_REPORTS_PER_DAY = 24;
/** report_uptime_v2: every 40 minutes. */
export const DEFAULT_UPTIME_REPORTS_PER_DAY = 36;
/** Billing: each contract about once an hour (600 blocks of 6 s) by a validator's bill_contract_for_block. */
export const DEFAULT_BILLS_PER_CONTRACT_PER_DAY = 24;

export interface TfchainModelOptions {
  resourceReportsPerDay?: number;
  nruReportsPerDay?: number;
  uptimeReportsPerDay?: number;
  billsPerContractPerDay?: number;
}

/** One item of the model, per node-day. */
export interface ModelItem {
  /** the extrinsic */
  call: string;
  /** extrinsics a day */
  calls: number;
  /** bytes of those extrinsics in blocks */
  extrinsicBytes: number;
  /** state values written (new or overwritten) */
  stateWrites: number;
  /** bytes of those writes: storage key + value each */
  storageBytes: number;
  /** events emitted, system events included */
  events: number;
  /** bytes of those events (EventRecords) */
  eventBytes: number;
}

export const MODEL_ITEMS = ["resources", "nru", "uptime", "billing"] as const;
export type ModelItemName = (typeof MODEL_ITEMS)[number];

export interface TfchainModel {
  deployments: number;
  options: Required<TfchainModelOptions>;
  items: Record<ModelItemName, ModelItem>;
  total: Omit<ModelItem, "call"> & {
    /** extrinsicBytes + storageBytes: what blocks and state grow by */
    stored: number;
    /** eventBytes */
    emitted: number;
  };
}

function count(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`tfchainModel: ${what} must be a non-negative integer, got ${v}`);
  return v;
}

/** `calls` extrinsics of `argsBytes` each, each with its system events. */
function extrinsics(call: string, calls: number, argsBytes: number): ModelItem {
  return {
    call,
    calls,
    extrinsicBytes: calls * signedExtrinsicBytes(argsBytes),
    stateWrites: 0,
    storageBytes: 0,
    events: calls * SYSTEM_EVENTS_PER_EXTRINSIC,
    eventBytes: calls * SYSTEM_EVENT_BYTES_PER_EXTRINSIC,
  };
}

function addEvents(item: ModelItem, n: number, fieldBytes: number): void {
  item.events += n;
  item.eventBytes += n * (EVENT_RECORD_OVERHEAD + fieldBytes);
}

function addWrites(item: ModelItem, n: number, valueBytes: number): void {
  item.stateWrites += n;
  item.storageBytes += n * (CONTRACT_MAP_KEY_BYTES + valueBytes);
}

/**
 * What tfchain stores and emits today for ONE node with `deployments` contracts over one day:
 * extrinsic bytes (block bodies), state bytes written (key + value per write, overwrites counted)
 * and event bytes, per item. Pure. Lower bound: see ASSUMPTIONS for what is left out.
 */
export function tfchainModel(deployments: number, opts: TfchainModelOptions = {}): TfchainModel {
  const D = count(deployments, "deployments");
  const o: Required<TfchainModelOptions> = {
    resourceReportsPerDay: count(opts.resourceReportsPerDay ?? DEFAULT_RESOURCE_REPORTS_PER_DAY, "resourceReportsPerDay"),
    nruReportsPerDay: count(opts.nruReportsPerDay ?? DEFAULT_NRU_REPORTS_PER_DAY, "nruReportsPerDay"),
    uptimeReportsPerDay: count(opts.uptimeReportsPerDay ?? DEFAULT_UPTIME_REPORTS_PER_DAY, "uptimeReportsPerDay"),
    billsPerContractPerDay: count(opts.billsPerContractPerDay ?? DEFAULT_BILLS_PER_CONTRACT_PER_DAY, "billsPerContractPerDay"),
  };
  // a node sends no report of contracts when it has none
  const R = D > 0 ? o.resourceReportsPerDay : 0;
  const N = D > 0 ? o.nruReportsPerDay : 0;

  // report_contract_resources(Vec<ContractResources>): stored per contract, an event per contract
  const resources = extrinsics("SmartContractModule.report_contract_resources", R, compactSize(D) + D * CONTRACT_RESOURCES_BYTES);
  addEvents(resources, R * D, CONTRACT_RESOURCES_BYTES); // UpdatedUsedResources(ContractResources)
  addWrites(resources, R * D, CONTRACT_RESOURCES_BYTES); // NodeContractResources

  // add_nru_reports(Vec<NruConsumption>): an event per entry, billing information rewritten per entry
  const nru = extrinsics("SmartContractModule.add_nru_reports", N, compactSize(D) + D * NRU_CONSUMPTION_BYTES);
  addEvents(nru, N * D, NRU_CONSUMPTION_BYTES); // NruConsumptionReportReceived(NruConsumption)
  addWrites(nru, N * D, CONTRACT_BILLING_INFORMATION_BYTES); // ContractBillingInformationByID

  // report_uptime_v2(uptime, timestamp_hint): an event each, no state of its own
  const uptime = extrinsics("TfgridModule.report_uptime_v2", o.uptimeReportsPerDay, REPORT_UPTIME_ARGS_BYTES);
  addEvents(uptime, o.uptimeReportsPerDay, NODE_UPTIME_REPORTED_FIELD_BYTES); // NodeUptimeReported

  // bill_contract_for_block(contract_id), signed by a validator: per contract and bill
  const bills = D * o.billsPerContractPerDay;
  const billing = extrinsics("SmartContractModule.bill_contract_for_block", bills, BILL_CONTRACT_ARGS_BYTES);
  addEvents(billing, bills, CONTRACT_BILL_BYTES); // ContractBilled(ContractBill)
  addWrites(billing, bills, CONTRACT_BILLING_INFORMATION_BYTES); // ContractBillingInformationByID (amount_unbilled reset)
  addWrites(billing, bills, CONTRACT_PAYMENT_STATE_BYTES); // ContractPaymentState

  const items: Record<ModelItemName, ModelItem> = { resources, nru, uptime, billing };
  const total = { calls: 0, extrinsicBytes: 0, stateWrites: 0, storageBytes: 0, events: 0, eventBytes: 0, stored: 0, emitted: 0 };
  for (const name of MODEL_ITEMS) {
    const it = items[name];
    total.calls += it.calls;
    total.extrinsicBytes += it.extrinsicBytes;
    total.stateWrites += it.stateWrites;
    total.storageBytes += it.storageBytes;
    total.events += it.events;
    total.eventBytes += it.eventBytes;
  }
  total.stored = total.extrinsicBytes + total.storageBytes;
  total.emitted = total.eventBytes;
  return { deployments: D, options: o, items, total };
}

/** Our usage proofs as a tfchain pallet would carry them (an ESTIMATE from measured bytes). */
export interface PalletEstimate {
  proofs: number;
  /** one signed extrinsic per proof, its argument the measured proof envelope (a Vec<u8>) */
  extrinsicBytes: number;
  /** the measured state the stand-in writes (its events table left out: events are counted as emitted) */
  storageBytes: number;
  /** measured events plus the system events of each extrinsic */
  eventBytes: number;
  stored: number;
  emitted: number;
}

/**
 * Per node-day, from a measurement over `days` days (default 1): `envelopeBytes` lists the size of
 * every submitted proof envelope, `stateBytes` the state written and `eventBytes` the events
 * emitted over those days. Pure.
 */
export function palletEstimate(m: { envelopeBytes: readonly number[]; stateBytes: number; eventBytes: number; days?: number }): PalletEstimate {
  const days = m.days ?? 1;
  if (!(days > 0)) throw new RangeError(`palletEstimate: days must be positive, got ${days}`);
  const proofs = m.envelopeBytes.length / days;
  const extrinsicBytes = m.envelopeBytes.reduce((s, n) => s + signedExtrinsicBytes(compactSize(n) + n), 0) / days;
  const storageBytes = m.stateBytes / days;
  const eventBytes = m.eventBytes / days + proofs * SYSTEM_EVENT_BYTES_PER_EXTRINSIC;
  return { proofs, extrinsicBytes, storageBytes, eventBytes, stored: extrinsicBytes + storageBytes, emitted: eventBytes };
}

/** The assumptions, one line each (printed at the top, and in --json). */
export function assumptions(o: Required<TfchainModelOptions>, periodSeconds: number, days: number): string[] {
  return [
    `MODELLED tfchain: SCALE sizes of tfchain's types (Balance u128, AccountId32, contract maps keyed Blake2_128Concat(u64): ${CONTRACT_MAP_KEY_BYTES}-byte keys)`,
    `signed extrinsic = ${SIGNED_EXTRINSIC_OVERHEAD} B + call arguments (length 2, version 1, MultiAddress 33, MultiSignature 65, era 2, nonce 4, tip 1, call index 2)`,
    `every extrinsic emits System.ExtrinsicSuccess (${EVENT_RECORD_OVERHEAD} + ${EXTRINSIC_SUCCESS_FIELD_BYTES}) and TransactionPayment.TransactionFeePaid (${EVENT_RECORD_OVERHEAD} + ${TRANSACTION_FEE_PAID_FIELD_BYTES}): ${SYSTEM_EVENT_BYTES_PER_EXTRINSIC} B`,
    `an event costs its fields + ${EVENT_RECORD_OVERHEAD} B (phase ${EVENT_PHASE_BYTES}, pallet/variant ${EVENT_INDEX_BYTES}, empty topics ${EVENT_TOPICS_BYTES})`,
    `report_contract_resources: ${o.resourceReportsPerDay}/day carrying all D contracts (${CONTRACT_RESOURCES_BYTES} B each; create/update/restart amortised, --resource-reports-per-day); NodeContractResources written and UpdatedUsedResources emitted per contract`,
    `add_nru_reports: ${o.nruReportsPerDay}/day with D NruConsumption (${NRU_CONSUMPTION_BYTES} B each); NruConsumptionReportReceived per entry; ContractBillingInformationByID (${CONTRACT_BILLING_INFORMATION_BYTES} B) rewritten per entry`,
    `report_uptime_v2: ${o.uptimeReportsPerDay}/day (every 40 min), ${REPORT_UPTIME_ARGS_BYTES} B of arguments; NodeUptimeReported (${NODE_UPTIME_REPORTED_FIELD_BYTES} B) each; no state write`,
    `billing: each contract ${o.billsPerContractPerDay}/day by a validator's bill_contract_for_block(u64); ContractBilled (${CONTRACT_BILL_BYTES} B) each; ContractBillingInformationByID (${CONTRACT_BILLING_INFORMATION_BYTES} B) and ContractPaymentState (${CONTRACT_PAYMENT_STATE_BYTES} B) rewritten each`,
    `state writes count key + value each, overwrites included (an archive node keeps every version); trie branch nodes rewritten along the way are not counted`,
    `not modelled, so tfchain's numbers are LOWER bounds: signers' account (nonce, fee) writes, balance reserve/transfer events and writes of billing and of the daily reward distribution, contract create/update/cancel, block headers`,
    `MEASURED ours: D deployments (a mix of VM-like units) metered with full up-time, one proof per ${periodSeconds} s (${86400 / periodSeconds}/day) over ${days} day(s), submitted through ChainServer.handle("proof.submit") to a real ChainStore; per-day figures are totals / ${days}`,
    `ours stored = store.footprint() growth without its events table + the node's entry rewritten by each proof (overwrites counted as for tfchain); ours emitted = bytes of the Signed{ChainEvent} envelopes published`,
    `"as a pallet" ESTIMATE: per proof one signed extrinsic (${SIGNED_EXTRINSIC_OVERHEAD} B + the measured envelope as Vec<u8>) + ${SYSTEM_EVENT_BYTES_PER_EXTRINSIC} B of system events, with the measured state writes (events table left out) and measured events`,
  ];
}

// =================================================================================================
// The measurement: the chain stand-in's real code paths, no NATS.
// =================================================================================================

/** Stands in for the NATS connection: ChainServer.handle only publishes events (and reads `info` for proof queries). */
class CountingBus {
  events = 0;
  bytes = 0;
  readonly byKind = new Map<string, { count: number; bytes: number }>();
  readonly info = undefined;

  publish(subject: string, data?: Uint8Array): void {
    const n = data?.length ?? 0;
    this.events++;
    this.bytes += n;
    const i = subject.lastIndexOf(".events.");
    const kind = i >= 0 ? subject.slice(i + ".events.".length) : subject;
    const k = this.byKind.get(kind) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += n;
    this.byKind.set(kind, k);
  }

  subscribe(): never {
    throw new Error("chain-footprint: subscribe() is not used; the script calls ChainServer.handle directly");
  }

  async flush(): Promise<void> {}

  reset(): void {
    this.events = 0;
    this.bytes = 0;
    this.byKind.clear();
  }
}

/** VM-like reservations, cycled over the deployments. */
const UNIT_MIX: ReadonlyArray<{ name: string; units: Units }> = [
  { name: "small VM", units: { cru: 1, mru: 2 * GiB, sru: 25 * GiB, hru: 0, ipv4u: 0, gpu: 0 } },
  { name: "medium VM", units: { cru: 2, mru: 4 * GiB, sru: 50 * GiB, hru: 0, ipv4u: 0, gpu: 0 } },
  { name: "large VM with disk and IPv4", units: { cru: 4, mru: 16 * GiB, sru: 100 * GiB, hru: 500 * GiB, ipv4u: 1, gpu: 0 } },
  { name: "tiny VM", units: { cru: 1, mru: 512 * MiB, sru: 5 * GiB, hru: 0, ipv4u: 0, gpu: 0 } },
];

/** The node's capacity: a large server, or the sum of its reservations when that is more. */
const LARGE_NODE: Units = { cru: 64, mru: 256 * GiB, sru: 4096 * GiB, hru: 16384 * GiB, ipv4u: 4, gpu: 0 };

/** the chain assigns ids: on a fresh store the node key's twin and node are the first, 1 */
const NODE_ID = 1;
const FARM_ID = 17;
const NODE_TWIN = 1;
/** deployment ids in the range real contract ids are in (varint widths like the grid's) */
const FIRST_DEPLOYMENT_ID = 300_000;
/** start of the measured day: a UTC midnight, so every period length that divides a day is aligned */
const T0 = Date.UTC(2025, 0, 6);

export interface Measurement {
  deployments: number;
  days: number;
  periodSeconds: number;
  proofs: number;
  /** footprint growth over the run, per table and total */
  growth: Record<ChainTable | "total", { rows: number; bytes: number }>;
  /** the node's entry as footprint() counts it (the whole row), rewritten by every accepted proof */
  nodeEntryBytes: number;
  nodeRewriteBytes: number;
  /** the submitted Signed{UsageProof} envelopes */
  envelopeBytes: number[];
  callPayloadBytes: number;
  eventsPublished: number;
  eventBytes: number;
  eventsByKind: Record<string, { count: number; bytes: number }>;
  /** records the node keeps for audit (sum of encoded UsageRecords), not sent to the chain */
  auditRecords: number;
  auditRecordBytes: number;
  /** the reply of the last proof.submit, for the record */
  lastProofHash: string;
}

function expectOk(what: string, reply: Uint8Array, chainKey: Uint8Array): WireChainReply {
  const o = open(reply, DOMAIN.ChainReply, { maxBytes: 1 << 20 });
  if (!o.ok) throw new Error(`${what}: the chain's reply does not verify: ${o.message}`);
  if (!sameKey(o.value.signer, chainKey)) throw new Error(`${what}: the reply is not signed by the chain key`);
  const r = decode("ChainReply", o.value.payload, { maxBytes: 1 << 20, maxRepeated: 1000 });
  if (!r.ok) throw new Error(`${what} was refused: [${r.rejection?.code ?? "?"}] ${r.rejection?.message ?? ""}`);
  return r;
}

/** Twins per node by default (deployments are spread over them round-robin). */
export const DEFAULT_TWINS = 7;

function reservationsFor(D: number, twins: number): MeterReservation[] {
  return Array.from({ length: D }, (_, i) => ({ deploymentId: FIRST_DEPLOYMENT_ID + i, twinId: 1000 + (i % twins), version: 1 + (i % 3), units: UNIT_MIX[i % UNIT_MIX.length].units }));
}

function capacityFor(rs: readonly MeterReservation[]): Units {
  const total = { ...LARGE_NODE };
  const sum: Units = { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };
  for (const r of rs) for (const u of UNIT_NAMES) sum[u] += r.units[u];
  for (const u of UNIT_NAMES) total[u] = Math.max(total[u], sum[u]);
  return total;
}

/** Public traffic of a deployment in a period: deterministic, 50 MB to 1 GB an hour. */
function trafficBytes(deploymentId: number, period: number, periodSeconds: number): bigint {
  const perHour = 50_000_000 + ((deploymentId * 2_654_435_761 + period * 40_503) % 950) * 1_000_000;
  return BigInt(Math.floor((perHour * periodSeconds) / 3600));
}

/** Register a twin and a node, then submit one proof per period for `days` days; measure what the chain keeps and emits. */
export function measureOurs(D: number, periodSeconds: number, days: number, twins = DEFAULT_TWINS): Measurement {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chain-footprint-"));
  const store = ChainStore.open(dir);
  try {
    const chainKey = signerFromSeed("ed25519", crypto.randomBytes(32));
    const nodeKey = signerFromSeed("ed25519", crypto.randomBytes(32));
    const bus = new CountingBus();
    let now = T0;
    const server = new ChainServer(parseChainOptions(), {
      nc: bus as unknown as NatsConnection,
      subjects: new Subjects(),
      signer: chainKey,
      store,
      logger: silentLogger(),
      metrics: null,
      now: () => now,
    });

    const call = (signer: Signer, c: Parameters<typeof chainCallToWire>[1]): Uint8Array => seal(signer, DOMAIN.ChainCall, encode("ChainCall", chainCallToWire(now, c)));
    const reservations = reservationsFor(D, twins);
    // the node key's twin, then its node (twin_id / node_id 0: the chain assigns them, NODE_TWIN and NODE_ID on this fresh store)
    expectOk("twin.register", server.handle("twin.register", call(nodeKey, { registerTwin: { twinId: 0 } })), chainKey.publicKey);
    expectOk("node.register", server.handle("node.register", call(nodeKey, { registerNode: { nodeId: 0, farmId: FARM_ID, twinId: 0, total: capacityFor(reservations) } })), chainKey.publicKey);
    if (store.node(NODE_ID)?.record.twinId !== NODE_TWIN) throw new Error(`the chain did not assign node ${NODE_ID} to twin ${NODE_TWIN}`);

    const before = store.footprint();
    bus.reset();

    const periodMs = periodSeconds * 1000;
    const periods = (days * 86_400) / periodSeconds;
    const envelopeBytes: number[] = [];
    let auditRecords = 0;
    let auditRecordBytes = 0;
    let previousHash: Uint8Array = ZERO_HASH;
    for (let k = 0; k < periods; k++) {
      const start = T0 + k * periodMs;
      const end = start + periodMs;
      now = end + 1_000; // the node sends its proof a second after the period ends
      const metered = meterPeriod({
        periodStartMs: start,
        periodEndMs: end,
        initial: reservations,
        events: [],
        uptime: [[start, end]],
        network: (id) => trafficBytes(id, k, periodSeconds),
      });
      if (metered.records.length !== D || metered.downtimeMs !== 0) throw new Error(`period ${k}: metered ${metered.records.length} records and ${metered.downtimeMs} ms of downtime, expected ${D} and 0`);
      const encoded = metered.records.map(encodeRecord);
      auditRecords += encoded.length;
      auditRecordBytes += encoded.reduce((s, b) => s + b.length, 0);
      const header: ProofHeader = {
        nodeId: NODE_ID,
        farmId: FARM_ID,
        sequence: k + 1,
        periodStartMs: start,
        periodEndMs: end,
        previousHash,
        recordCount: encoded.length,
        totals: metered.totals,
        recordsRoot: merkleRoot(encoded.map(leafHash)),
        downtimeMs: metered.downtimeMs,
      };
      // billing (docs/billing.md): the header commits to the twin subtotals, which travel with it
      const subtotals = twinSubtotals(metered.records).map(encodeTwinSubtotal);
      header.twinsRoot = twinsTree(subtotals).root;
      header.twinCount = subtotals.length;
      const headerBytes = encodeProofHeader(header);
      const envelope = seal(nodeKey, DOMAIN.UsageProof, headerBytes);
      const submission = encode("ProofSubmission", { proof: envelope, twins: subtotals });
      const r = expectOk(`proof.settle (sequence ${k + 1}, ${D} deployments, ${twins} twins)`, server.handle("proof.settle", submission), chainKey.publicKey);
      const hash = proofHash(headerBytes);
      if (!sameKey(new Uint8Array(r.proofHash), hash)) throw new Error(`proof ${k + 1}: the chain answered proof hash ${Buffer.from(r.proofHash).toString("hex")}, expected ${Buffer.from(hash).toString("hex")}`);
      previousHash = hash;
      envelopeBytes.push(submission.length);
    }
    void server.close();

    const after = store.footprint();
    if (store.proofCount(NODE_ID) !== periods) throw new Error(`the store holds ${store.proofCount(NODE_ID)} proofs, expected ${periods}`);
    const growth = {} as Measurement["growth"];
    for (const t of [...CHAIN_TABLES, "total"] as const) growth[t] = { rows: after[t].rows - before[t].rows, bytes: after[t].bytes - before[t].bytes };
    if (after.nodes.rows !== 1) throw new Error(`expected one node in the store, found ${after.nodes.rows}`);
    const nodeEntryBytes = after.nodes.bytes;
    return {
      deployments: D,
      days,
      periodSeconds,
      proofs: periods,
      growth,
      nodeEntryBytes,
      nodeRewriteBytes: periods * nodeEntryBytes,
      envelopeBytes,
      callPayloadBytes: envelopeBytes.reduce((s, n) => s + n, 0),
      eventsPublished: bus.events,
      eventBytes: bus.bytes,
      eventsByKind: Object.fromEntries(bus.byKind),
      auditRecords,
      auditRecordBytes,
      lastProofHash: Buffer.from(previousHash).toString("hex"),
    };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// =================================================================================================
// Billing (docs/billing.md): what charging adds per node-day, against tfchain's per-contract billing
// =================================================================================================

/** Twins per node the billing comparison runs with (at most D: a twin has at least one deployment). */
export const BILLING_TWINS = [1, 5, 20];

export interface BillingRow {
  deployments: number;
  twins: number;
  /** MEASURED: new rows of twin_bills and node_bills a day (bytes), and the balances rewritten in place each period (twins + the farm) */
  ours: { billRows: number; billBytes: number; balanceRewriteBytes: number; stored: number };
  /** MODELLED tfchain: bill_contract_for_block extrinsics + the state they write (stored) and ContractBilled events (emitted) */
  tfchain: { stored: number; emitted: number };
  ratio: number;
}

export function billingFootprint(deployments: readonly number[], twinCounts: readonly number[], periodSeconds: number, days: number, modelOptions: TfchainModelOptions): BillingRow[] {
  const rows: BillingRow[] = [];
  for (const D of deployments) {
    const billing = tfchainModel(D, modelOptions).items.billing;
    for (const T of twinCounts) {
      if (T > D) continue;
      const m = measureOurs(D, periodSeconds, days, T);
      const perDay = (n: number): number => n / days;
      const billBytes = perDay(m.growth.twin_bills.bytes + m.growth.node_bills.bytes);
      const billRows = perDay(m.growth.twin_bills.rows + m.growth.node_bills.rows);
      // each period rewrites every billed twin's balance and the farm's: the rows' bytes as they end up
      const balanceRowBytes = m.growth.balances.rows ? m.growth.balances.bytes / m.growth.balances.rows : 0;
      const farmRowBytes = m.growth.farm_balances.rows ? m.growth.farm_balances.bytes / m.growth.farm_balances.rows : 0;
      const balanceRewriteBytes = (86_400 / periodSeconds) * (T * balanceRowBytes + farmRowBytes);
      const stored = billBytes + balanceRewriteBytes;
      const tfStored = billing.extrinsicBytes + billing.storageBytes;
      rows.push({ deployments: D, twins: T, ours: { billRows, billBytes, balanceRewriteBytes, stored }, tfchain: { stored: tfStored, emitted: billing.eventBytes }, ratio: tfStored / stored });
    }
  }
  return rows;
}

// =================================================================================================
// Report
// =================================================================================================

export interface Row {
  deployments: number;
  tfchain: { stored: number; emitted: number; extrinsicBytes: number; storageBytes: number };
  ours: { stored: number; emitted: number; storeGrowth: number; nodeRewrites: number; callPayloads: number; auditRecords: number };
  pallet: PalletEstimate;
  ratio: { stored: number; emitted: number; palletStored: number; palletEmitted: number };
}

/** Per node-day: totals of a measurement divided by its days. */
export function compare(model: TfchainModel, m: Measurement): Row {
  const perDay = (n: number): number => n / m.days;
  // the stand-in's events table records what it emitted; emitted bytes are counted as emitted, not stored
  const oursStored = perDay(m.growth.total.bytes - m.growth.events.bytes + m.nodeRewriteBytes);
  const oursEmitted = perDay(m.eventBytes);
  const pallet = palletEstimate({
    envelopeBytes: m.envelopeBytes,
    stateBytes: m.growth.total.bytes - m.growth.events.bytes + m.nodeRewriteBytes,
    eventBytes: m.eventBytes,
    days: m.days,
  });
  return {
    deployments: m.deployments,
    tfchain: { stored: model.total.stored, emitted: model.total.emitted, extrinsicBytes: model.total.extrinsicBytes, storageBytes: model.total.storageBytes },
    ours: {
      stored: oursStored,
      emitted: oursEmitted,
      storeGrowth: perDay(m.growth.total.bytes),
      nodeRewrites: perDay(m.nodeRewriteBytes),
      callPayloads: perDay(m.callPayloadBytes),
      auditRecords: perDay(m.auditRecordBytes),
    },
    pallet,
    ratio: {
      stored: model.total.stored / oursStored,
      emitted: model.total.emitted / oursEmitted,
      palletStored: model.total.stored / pallet.stored,
      palletEmitted: model.total.emitted / pallet.emitted,
    },
  };
}

const HELP = `usage: scripts/chain-footprint [--period S] [--days N] [--deployments LIST]
                              [--resource-reports-per-day R] [--json]

Bytes per node-day that the chain stores and emits for usage reporting: capacity-agent's usage
proofs MEASURED on the chain stand-in (ChainServer.handle + ChainStore, no NATS), against a MODEL
of tfchain today, for each number of deployments (contracts) per node, and their ratio.
  --period S                    proof period in seconds (default 3600; must divide a day)
  --days N                      days to simulate (default 1); figures are per day
  --deployments LIST            deployments per node, comma separated (default 1,20,100)
  --resource-reports-per-day R  tfchain model: report_contract_resources calls a day (default ${DEFAULT_RESOURCE_REPORTS_PER_DAY})
  --json                        print the same as JSON
  --real [--deployments LIST] [--billing-blocks N] [--spec FILE] [--json]
                                measure today's way and ours on the real tfchain runtime (scripts/tfchain-dev,
                                docs/tfchain.md) instead of the model; takes minutes`;

function fail(msg: string): never {
  return scriptFail("chain-footprint", msg);
}
const intOpt = (v: string | undefined, flag: string, def: number, min: number, max: number): number => intOption(fail, v, flag, def, min, max);

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const ratio = (r: number): string => `${r >= 100 ? r.toFixed(0) : r.toFixed(1)}x`;

function table(header: string[], rows: string[][], align: Array<"l" | "r">): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (align[i] === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
}

async function main(): Promise<void> {
  // --real: measured on the tfchain runtime instead of modelled (scripts/chain-footprint-real.ts)
  if (process.argv.slice(2).includes("--real")) return (require("./chain-footprint-real") as typeof import("./chain-footprint-real")).mainReal(process.argv.slice(2));
  let args;
  try {
    args = parseArgs({
      args: process.argv.slice(2),
      options: {
        period: { type: "string" },
        days: { type: "string" },
        deployments: { type: "string" },
        "resource-reports-per-day": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${HELP}`);
  }
  if (args.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const periodSeconds = intOpt(args.period, "period", 3600, 60, 86_400);
  if (86_400 % periodSeconds !== 0) fail(`--period must divide a day (86400 s), got ${periodSeconds}`);
  const days = intOpt(args.days, "days", 1, 1, 30);
  const resourceReportsPerDay = intOpt(args["resource-reports-per-day"], "resource-reports-per-day", DEFAULT_RESOURCE_REPORTS_PER_DAY, 0, 1000);
  const list = (args.deployments ?? "1,20,100").split(",").map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 400)) fail(`--deployments expects integers from 1 to 400, comma separated, got ${JSON.stringify(args.deployments)}`);
  const deployments = list.map(Number);
  const json = args.json === true;

  await cryptoReady();
  const modelOptions: TfchainModelOptions = { resourceReportsPerDay };
  const results = deployments.map((D) => {
    const model = tfchainModel(D, modelOptions);
    const measured = measureOurs(D, periodSeconds, days);
    return { model, measured, row: compare(model, measured) };
  });
  const billing = billingFootprint(deployments, BILLING_TWINS, periodSeconds, days, modelOptions);
  const lines = assumptions(results[0].model.options, periodSeconds, days);
  const stored = results.map((r) => r.row.ours.stored);
  const emitted = results.map((r) => r.row.ours.emitted);
  const spread = Math.max(Math.max(...stored) - Math.min(...stored), Math.max(...emitted) - Math.min(...emitted));
  const independence =
    spread === 0
      ? `ours does not depend on D: the same ${fmt(stored[0])} B stored and ${fmt(emitted[0])} B emitted per node-day for D = ${deployments.join(", ")} (one proof header per period, whatever the number of deployments)`
      : `ours depends on D only by ${fmt(spread)} B per node-day at most (the proof header's encoding of its totals and record_count: protobuf varints widen with larger sums, and zero totals (say, no HRU or IPv4 among few deployments) are left out; and the node's capacity in its entry); no per-deployment data reaches the chain`;

  if (json) {
    process.stdout.write(
      JSON.stringify(
        {
          unit: "bytes per node-day",
          assumptions: lines,
          periodSeconds,
          days,
          independence,
          results: results.map(({ model, measured, row }) => ({
            deployments: row.deployments,
            modelled: { tfchain: model },
            measured: { ours: { ...measured, envelopeBytes: undefined, envelopeBytesMin: Math.min(...measured.envelopeBytes), envelopeBytesMax: Math.max(...measured.envelopeBytes) } },
            estimated: { pallet: row.pallet },
            summary: row,
          })),
          billing,
        },
        null,
        2,
      ) + "\n",
    );
    return;
  }

  const out: string[] = [];
  out.push("chain-footprint: bytes per node-day for usage reporting -- tfchain today (MODELLED) vs capacity-agent usage proofs (MEASURED on the chain stand-in)");
  out.push("");
  out.push("assumptions:");
  for (const l of lines) out.push(`  - ${l}`);
  out.push("");
  out.push(`MEASURED ours (per node-day; ${results[0].measured.proofs / days} proofs of ${periodSeconds} s a day, ${days} day(s)):`);
  out.push(
    ...table(
      ["D", "proofs", ...CHAIN_TABLES.map((t) => `+${t}`), "+footprint", "node entry rewrites", "call payloads", "events emitted", "node-side audit records"],
      results.map(({ measured: m }) => [
        String(m.deployments),
        fmt(m.proofs / days),
        ...CHAIN_TABLES.map((t) => fmt(m.growth[t].bytes / days)),
        fmt(m.growth.total.bytes / days),
        `${fmt(m.nodeRewriteBytes / days)} (${m.nodeEntryBytes} x ${fmt(m.proofs / days)})`,
        fmt(m.callPayloadBytes / days),
        `${fmt(m.eventBytes / days)} (${fmt(m.eventsPublished / days)})`,
        `${fmt(m.auditRecordBytes / days)} (${fmt(m.auditRecords / days)})`,
      ]),
      ["r", "r", ...CHAIN_TABLES.map(() => "r" as const), "r", "r", "r", "r", "r"],
    ).map((l) => `  ${l}`),
  );
  out.push(`  ${independence}`);
  out.push("");
  out.push("MODELLED tfchain (per node-day): calls, extrinsic bytes, state writes (bytes), events (bytes)");
  out.push(
    ...table(
      ["D", "item", "calls", "extrinsics", "state writes", "events"],
      results.flatMap(({ model }) => [
        ...MODEL_ITEMS.map((name) => {
          const it = model.items[name];
          return [String(model.deployments), it.call, fmt(it.calls), fmt(it.extrinsicBytes), `${fmt(it.storageBytes)} (${fmt(it.stateWrites)})`, `${fmt(it.eventBytes)} (${fmt(it.events)})`];
        }),
        [String(model.deployments), "total", fmt(model.total.calls), fmt(model.total.extrinsicBytes), `${fmt(model.total.storageBytes)} (${fmt(model.total.stateWrites)})`, `${fmt(model.total.eventBytes)} (${fmt(model.total.events)})`],
      ]),
      ["r", "l", "r", "r", "r", "r"],
    ).map((l) => `  ${l}`),
  );
  out.push("");
  out.push("bytes per node-day: tfchain MODELLED (stored = extrinsics + state writes; emitted = events) vs ours MEASURED (stored = footprint growth without the events table + node entry rewrites; emitted = events published)");
  out.push(
    ...table(
      ["D", "tfchain stored", "tfchain emitted", "ours stored", "ours emitted", "stored ratio", "emitted ratio"],
      results.map(({ row }) => [String(row.deployments), fmt(row.tfchain.stored), fmt(row.tfchain.emitted), fmt(row.ours.stored), fmt(row.ours.emitted), ratio(row.ratio.stored), ratio(row.ratio.emitted)]),
      ["r", "r", "r", "r", "r", "r", "r"],
    ).map((l) => `  ${l}`),
  );
  out.push("");
  out.push("ours as a pallet, ESTIMATED (measured proof envelopes + signed extrinsic overhead + system events; measured state and events)");
  out.push(
    ...table(
      ["D", "extrinsics", "state writes", "pallet stored", "pallet emitted", "tfchain/pallet stored", "tfchain/pallet emitted"],
      results.map(({ row }) => [String(row.deployments), fmt(row.pallet.extrinsicBytes), fmt(row.pallet.storageBytes), fmt(row.pallet.stored), fmt(row.pallet.emitted), ratio(row.ratio.palletStored), ratio(row.ratio.palletEmitted)]),
      ["r", "r", "r", "r", "r", "r", "r"],
    ).map((l) => `  ${l}`),
  );
  out.push("");
  out.push("billing per node-day: ours MEASURED (twin_bills + node_bills rows written, balances of the twins and the farm rewritten each period; nothing is emitted) vs tfchain MODELLED (bill_contract_for_block per contract: extrinsics + state writes; ContractBilled events)");
  out.push(
    ...table(
      ["D", "twins", "ours bill rows", "ours bill bytes", "ours balance rewrites", "ours stored", "tfchain stored", "tfchain emitted", "stored ratio"],
      billing.map((b) => [String(b.deployments), String(b.twins), fmt(b.ours.billRows), fmt(b.ours.billBytes), fmt(b.ours.balanceRewriteBytes), fmt(b.ours.stored), fmt(b.tfchain.stored), fmt(b.tfchain.emitted), ratio(b.ratio)]),
      ["r", "r", "r", "r", "r", "r", "r", "r", "r"],
    ).map((l) => `  ${l}`),
  );
  process.stdout.write(out.join("\n") + "\n");
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`chain-footprint: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
