/**
 * The MODEL of what tfchain stores and emits today for usage reporting, per node-day (GRID.md "What
 * tfchain stores and emits today"), and our usage proofs as a tfchain pallet would carry them.
 * Pure arithmetic, every size a named SCALE constant; test/unit/chain-footprint-model.test.ts
 * checks it. Used by scripts/chain-footprint (harness.ts measures ours, report.ts prints both).
 */

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
/** Blocks a day: one every 6 s. */
export const BLOCKS_PER_DAY = 14_400;
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

/**
 * spec 49's billing frequency in blocks (seen in ContractsToBillAt: each contract at creation + 600 k):
 * 600 blocks hold exactly one billing of each contract and scale to a day exactly (x 24), the
 * default window of `--real --billing-blocks`.
 */
export const BILLING_CYCLE_BLOCKS = 600;
