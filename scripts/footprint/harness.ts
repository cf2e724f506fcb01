/**
 * The MEASUREMENT of our usage proofs on the chain stand-in's real code (ChainServer.handle and
 * ChainStore, no NATS): a node registers, then sends one proof per period for some days; what the
 * chain keeps and emits is measured, and what billing adds (billingFootprint).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MemoryBus } from "../../agent/bus/memory";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, MiB, UNIT_NAMES, type Units } from "../../agent/capacity/units";
import { parseChainOptions } from "../../agent/authority/options";
import { ChainServer } from "../../agent/authority/server";
import { CHAIN_TABLES, ChainStore, type ChainTable } from "../../agent/authority/store";
import { chainCallToWire, type WireChainReply } from "../../agent/chain/wire";
import { DOMAIN } from "../../agent/identity/domains";
import { open, sameKey, seal } from "../../agent/identity/envelope";
import { signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { buildProof, headAfter, type ProofHead } from "../../agent/proofs/build";
import { hashesEqual } from "../../agent/proofs/merkle";
import { ZERO_HASH } from "../../agent/proofs/proof";
import { meterPeriod, type MeterReservation } from "../../agent/usage/meter";
import { decode, encode } from "../../agent/wire/codec";
import { tfchainModel, type TfchainModelOptions } from "./model";

// =================================================================================================
// The measurement: the chain stand-in's real code paths, no NATS.
// =================================================================================================

/** The bus ChainServer.handle publishes its events on, counting them by kind (nothing subscribes). */
class CountingBus extends MemoryBus {
  events = 0;
  bytes = 0;
  readonly byKind = new Map<string, { count: number; bytes: number }>();

  override publish(subject: string, data?: Uint8Array, opts?: { reply?: string }): void {
    const n = data?.length ?? 0;
    this.events++;
    this.bytes += n;
    const i = subject.lastIndexOf(".events.");
    const kind = i >= 0 ? subject.slice(i + ".events.".length) : subject;
    const k = this.byKind.get(kind) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += n;
    this.byKind.set(kind, k);
    super.publish(subject, data ?? new Uint8Array(0), opts);
  }

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
  if (!o.ok) throw new Error(`${what}: the chain's reply does not verify: ${o.refusal.message}`);
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
      bus,
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
    let head: ProofHead = { sequence: 0, periodEndMs: T0, hash: ZERO_HASH };
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
      // the proof as the agent builds it (agent/proofs/build.ts); billing (docs/billing.md): the twin subtotals travel with it
      const proof = buildProof(head, { nodeId: NODE_ID, farmId: FARM_ID, periodEndMs: end, ...metered }, nodeKey);
      auditRecords += proof.records.length;
      auditRecordBytes += proof.records.reduce((s, r) => s + r.bytes.length, 0);
      const submission = encode("ProofSubmission", { proof: proof.envelope, twins: proof.twins });
      const r = expectOk(`proof.settle (sequence ${k + 1}, ${D} deployments, ${twins} twins)`, server.handle("proof.settle", submission), chainKey.publicKey);
      if (!hashesEqual(new Uint8Array(r.proofHash), proof.hash)) throw new Error(`proof ${k + 1}: the chain answered proof hash ${Buffer.from(r.proofHash).toString("hex")}, expected ${Buffer.from(proof.hash).toString("hex")}`);
      head = headAfter(proof);
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
      lastProofHash: Buffer.from(head.hash).toString("hex"),
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
