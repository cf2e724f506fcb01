/**
 * The REPORT of scripts/chain-footprint: tfchain MODELLED (model.ts) against ours MEASURED
 * (harness.ts), per node-day, as text tables or JSON; and the report of --real (real.ts).
 */
import { CHAIN_TABLES } from "../../agent/authority/store";
import type { BillingRow, Measurement } from "./harness";
import type { RealRow } from "./real";
import {
  BLOCKS_PER_DAY,
  CONTRACT_BILL_BYTES,
  CONTRACT_BILLING_INFORMATION_BYTES,
  CONTRACT_MAP_KEY_BYTES,
  CONTRACT_PAYMENT_STATE_BYTES,
  CONTRACT_RESOURCES_BYTES,
  EVENT_INDEX_BYTES,
  EVENT_PHASE_BYTES,
  EVENT_RECORD_OVERHEAD,
  EVENT_TOPICS_BYTES,
  EXTRINSIC_SUCCESS_FIELD_BYTES,
  MODEL_ITEMS,
  NODE_UPTIME_REPORTED_FIELD_BYTES,
  NRU_CONSUMPTION_BYTES,
  palletEstimate,
  REPORT_UPTIME_ARGS_BYTES,
  SIGNED_EXTRINSIC_OVERHEAD,
  SYSTEM_EVENT_BYTES_PER_EXTRINSIC,
  TRANSACTION_FEE_PAID_FIELD_BYTES,
  type PalletEstimate,
  type TfchainModel,
  type TfchainModelOptions,
} from "./model";

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

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const ratio = (r: number): string => `${r >= 100 ? r.toFixed(0) : r.toFixed(1)}x`;

function table(header: string[], rows: string[][], align: Array<"l" | "r">): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (align[i] === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
}

/** One number of deployments: the model, the measurement, and their comparison. */
export interface Result {
  model: TfchainModel;
  measured: Measurement;
  row: Row;
}

/** The report of a run over `deployments`, as printed: text tables, or JSON with `json`. */
export function footprintReport(results: readonly Result[], billing: readonly BillingRow[], deployments: readonly number[], periodSeconds: number, days: number, json: boolean): string {
  const lines = assumptions(results[0].model.options, periodSeconds, days);
  const stored = results.map((r) => r.row.ours.stored);
  const emitted = results.map((r) => r.row.ours.emitted);
  const spread = Math.max(Math.max(...stored) - Math.min(...stored), Math.max(...emitted) - Math.min(...emitted));
  const independence =
    spread === 0
      ? `ours does not depend on D: the same ${fmt(stored[0])} B stored and ${fmt(emitted[0])} B emitted per node-day for D = ${deployments.join(", ")} (one proof header per period, whatever the number of deployments)`
      : `ours depends on D only by ${fmt(spread)} B per node-day at most (the proof header's encoding of its totals and record_count: protobuf varints widen with larger sums, and zero totals (say, no HRU or IPv4 among few deployments) are left out; and the node's capacity in its entry); no per-deployment data reaches the chain`;

  if (json) {
    return (
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
      ) + "\n"
    );
  }

  const out: string[] = [];
  /** a titled table, indented, after a blank line */
  const section = (title: string, ...args: Parameters<typeof table>): void => {
    out.push("", title, ...table(...args).map((l) => `  ${l}`));
  };
  out.push("chain-footprint: bytes per node-day for usage reporting -- tfchain today (MODELLED) vs capacity-agent usage proofs (MEASURED on the chain stand-in)");
  out.push("");
  out.push("assumptions:");
  for (const l of lines) out.push(`  - ${l}`);
  section(
    `MEASURED ours (per node-day; ${results[0].measured.proofs / days} proofs of ${periodSeconds} s a day, ${days} day(s)):`,
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
  );
  out.push(`  ${independence}`);
  section(
    "MODELLED tfchain (per node-day): calls, extrinsic bytes, state writes (bytes), events (bytes)",
    ["D", "item", "calls", "extrinsics", "state writes", "events"],
    results.flatMap(({ model }) => [
      ...MODEL_ITEMS.map((name) => {
        const it = model.items[name];
        return [String(model.deployments), it.call, fmt(it.calls), fmt(it.extrinsicBytes), `${fmt(it.storageBytes)} (${fmt(it.stateWrites)})`, `${fmt(it.eventBytes)} (${fmt(it.events)})`];
      }),
      [String(model.deployments), "total", fmt(model.total.calls), fmt(model.total.extrinsicBytes), `${fmt(model.total.storageBytes)} (${fmt(model.total.stateWrites)})`, `${fmt(model.total.eventBytes)} (${fmt(model.total.events)})`],
    ]),
    ["r", "l", "r", "r", "r", "r"],
  );
  section(
    "bytes per node-day: tfchain MODELLED (stored = extrinsics + state writes; emitted = events) vs ours MEASURED (stored = footprint growth without the events table + node entry rewrites; emitted = events published)",
    ["D", "tfchain stored", "tfchain emitted", "ours stored", "ours emitted", "stored ratio", "emitted ratio"],
    results.map(({ row }) => [String(row.deployments), fmt(row.tfchain.stored), fmt(row.tfchain.emitted), fmt(row.ours.stored), fmt(row.ours.emitted), ratio(row.ratio.stored), ratio(row.ratio.emitted)]),
    ["r", "r", "r", "r", "r", "r", "r"],
  );
  section(
    "ours as a pallet, ESTIMATED (measured proof envelopes + signed extrinsic overhead + system events; measured state and events)",
    ["D", "extrinsics", "state writes", "pallet stored", "pallet emitted", "tfchain/pallet stored", "tfchain/pallet emitted"],
    results.map(({ row }) => [String(row.deployments), fmt(row.pallet.extrinsicBytes), fmt(row.pallet.storageBytes), fmt(row.pallet.stored), fmt(row.pallet.emitted), ratio(row.ratio.palletStored), ratio(row.ratio.palletEmitted)]),
    ["r", "r", "r", "r", "r", "r", "r"],
  );
  section(
    "billing per node-day: ours MEASURED (twin_bills + node_bills rows written, balances of the twins and the farm rewritten each period; nothing is emitted) vs tfchain MODELLED (bill_contract_for_block per contract: extrinsics + state writes; ContractBilled events)",
    ["D", "twins", "ours bill rows", "ours bill bytes", "ours balance rewrites", "ours stored", "tfchain stored", "tfchain emitted", "stored ratio"],
    billing.map((b) => [String(b.deployments), String(b.twins), fmt(b.ours.billRows), fmt(b.ours.billBytes), fmt(b.ours.balanceRewriteBytes), fmt(b.ours.stored), fmt(b.tfchain.stored), fmt(b.tfchain.emitted), ratio(b.ratio)]),
    ["r", "r", "r", "r", "r", "r", "r", "r", "r"],
  );
  return out.join("\n") + "\n";
}

/** The report of --real, as printed: a table and the items per D, or JSON with `json`. */
export function realReport(rows: readonly RealRow[], billingBlocks: number, json: boolean): string {
  if (json) return JSON.stringify({ runtime: "substrate-threefold spec 49 (chopsticks)", billingBlocks, rows }, null, 2) + "\n";
  const n = (v: number): string => v.toLocaleString("en-US");
  const out: string[] = [];
  out.push(`chain-footprint --real: bytes per node-day MEASURED on the tfchain runtime (substrate-threefold spec 49 under chopsticks)`);
  out.push(`stored = block bytes (signed extrinsics) + state written (key + value of each new or changed TfgridModule/SmartContractModule entry); emitted = events`);
  out.push(`billing: the runtime's own, measured over ${billingBlocks} blocks and scaled to ${BLOCKS_PER_DAY} blocks a day; contract creation and registration are once, shown apart`);
  out.push("");
  out.push("| D | today: stored / emitted (measured) | today: model | ours: stored / emitted (measured) | ratio stored / emitted | once: D contracts / our registration |");
  out.push("|---|---|---|---|---|---|");
  for (const r of rows) {
    const ts = r.today.total.blockBytes + r.today.total.writtenBytes;
    const os = r.ours.total.blockBytes + r.ours.total.writtenBytes;
    const onceC = r.today.contractsOnce.blockBytes + r.today.contractsOnce.writtenBytes;
    const onceR = r.ours.registrationOnce.blockBytes + r.ours.registrationOnce.writtenBytes;
    out.push(
      `| ${r.deployments} | ${n(ts)} / ${n(r.today.total.eventBytes)} B | ${n(r.model.stored)} / ${n(r.model.emitted)} B | ${n(os)} / ${n(r.ours.total.eventBytes)} B | ${(ts / os).toFixed(1)}x / ${(r.today.total.eventBytes / Math.max(1, r.ours.total.eventBytes)).toFixed(1)}x | ${n(onceC)} / ${n(onceR)} B |`,
    );
  }
  out.push("");
  out.push("per item (block bytes, state written, state grown, event bytes):");
  for (const r of rows) {
    for (const [name, b] of Object.entries({ ...r.today, ours_proofs: r.ours.proofs, ours_registration: r.ours.registrationOnce })) {
      if (name === "total") continue;
      out.push(`  D=${r.deployments} ${name.padEnd(18)} ${String(b.extrinsics).padStart(5)} extrinsics  blocks ${n(b.blockBytes).padStart(10)}  written ${n(b.writtenBytes).padStart(10)} (${b.writes} writes)  grown ${n(b.grownBytes).padStart(9)}  events ${n(b.eventBytes).padStart(10)} (${b.events})`);
    }
  }
  return out.join("\n") + "\n";
}
