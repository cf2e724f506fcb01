import { decode, encode, toSafeNumber, WireError } from "../wire/codec";
import type { WireUsageAmounts, WireUsageAmountsInput } from "../wire/generated";

/**
 * Usage amounts (usage.proto UsageAmounts) as bigints: byte-seconds of a large node over a day
 * pass 2^53, so they never go through a JS number.
 */
export interface UsageAmounts {
  cruSeconds: bigint;
  mruByteSeconds: bigint;
  sruByteSeconds: bigint;
  hruByteSeconds: bigint;
  ipv4Seconds: bigint;
  gpuSeconds: bigint;
  nuBytes: bigint;
  cuMicroHours: bigint;
  suMicroHours: bigint;
}

export const AMOUNT_FIELDS = ["cruSeconds", "mruByteSeconds", "sruByteSeconds", "hruByteSeconds", "ipv4Seconds", "gpuSeconds", "nuBytes", "cuMicroHours", "suMicroHours"] as const;
export type AmountField = (typeof AMOUNT_FIELDS)[number];

export const UINT64_MAX = (1n << 64n) - 1n;

export function zeroAmounts(): UsageAmounts {
  return { cruSeconds: 0n, mruByteSeconds: 0n, sruByteSeconds: 0n, hruByteSeconds: 0n, ipv4Seconds: 0n, gpuSeconds: 0n, nuBytes: 0n, cuMicroHours: 0n, suMicroHours: 0n };
}

export function addAmounts(a: UsageAmounts, b: UsageAmounts): UsageAmounts {
  const r = zeroAmounts();
  for (const f of AMOUNT_FIELDS) r[f] = a[f] + b[f];
  return r;
}

export function amountsToWire(a: UsageAmounts): WireUsageAmountsInput & Record<AmountField, string> {
  const r = {} as Record<AmountField, string>;
  for (const f of AMOUNT_FIELDS) {
    if (a[f] < 0n || a[f] > UINT64_MAX) throw new WireError("malformed", `${f}: ${a[f]} does not fit in uint64`);
    r[f] = a[f].toString();
  }
  return r;
}

export function amountsFromWire(w: WireUsageAmounts | null | undefined): UsageAmounts {
  const r = zeroAmounts();
  if (!w) return r;
  for (const f of AMOUNT_FIELDS) r[f] = BigInt(w[f] ?? 0);
  return r;
}

/** JSON-friendly amounts (decimal strings; byte-seconds pass 2^53). */
export function amountsToJson(a: UsageAmounts): Record<AmountField, string> {
  return amountsToWire(a);
}

/** blake2b-256, Substrate's hash. */
export function blake2b256(data: Uint8Array): Uint8Array {
  // @polkadot/util-crypto loads on the first hash (node's crypto has blake2b-512 only)
  const { blake2AsU8a } = require("@polkadot/util-crypto") as typeof import("@polkadot/util-crypto");
  return blake2AsU8a(data, 256);
}

export const ZERO_HASH = new Uint8Array(32);

/** One deployment's usage in one period (usage.proto UsageRecord). */
export interface UsageRecord {
  deploymentId: number;
  twinId: number;
  firstVersion: number;
  lastVersion: number;
  servedMs: number;
  amounts: UsageAmounts;
}

/** The proof header (usage.proto UsageProof): what the node signs and the chain keeps. */
export interface ProofHeader {
  nodeId: number;
  farmId: number;
  sequence: number;
  periodStartMs: number;
  periodEndMs: number;
  previousHash: Uint8Array;
  recordCount: number;
  totals: UsageAmounts;
  recordsRoot: Uint8Array;
  downtimeMs: number;
  /**
   * Merkle root of the twin subtotals (agent/billing/twins.ts; docs/billing.md): 32 bytes, or
   * empty in a header from before billing (such a proof bills nobody).
   */
  twinsRoot?: Uint8Array;
  twinCount?: number;
}

export function encodeRecord(r: UsageRecord): Uint8Array {
  return encode("UsageRecord", {
    deploymentId: r.deploymentId,
    twinId: r.twinId,
    firstVersion: r.firstVersion,
    lastVersion: r.lastVersion,
    servedMs: r.servedMs,
    amounts: amountsToWire(r.amounts),
  });
}

export function decodeRecord(bytes: Uint8Array): UsageRecord {
  const w = decode("UsageRecord", bytes, { maxBytes: 1024, maxRepeated: 0 });
  return {
    deploymentId: toSafeNumber(w.deploymentId, "deploymentId"),
    twinId: w.twinId,
    firstVersion: w.firstVersion,
    lastVersion: w.lastVersion,
    servedMs: toSafeNumber(w.servedMs, "servedMs"),
    amounts: amountsFromWire(w.amounts),
  };
}

export function encodeProofHeader(h: ProofHeader): Uint8Array {
  return encode("UsageProof", {
    nodeId: h.nodeId,
    farmId: h.farmId,
    sequence: h.sequence,
    periodStartMs: h.periodStartMs,
    periodEndMs: h.periodEndMs,
    previousHash: h.previousHash,
    recordCount: h.recordCount,
    totals: amountsToWire(h.totals),
    recordsRoot: h.recordsRoot,
    downtimeMs: h.downtimeMs,
    ...(h.twinsRoot && h.twinsRoot.length > 0 ? { twinsRoot: h.twinsRoot, twinCount: h.twinCount ?? 0 } : {}),
  });
}

/** Decode untrusted header bytes; shapes are checked (hash lengths, safe integers), not the rules. */
export function decodeProofHeader(bytes: Uint8Array): ProofHeader {
  const w = decode("UsageProof", bytes, { maxBytes: 1024, maxRepeated: 0 });
  if (w.previousHash.length !== 32) throw new WireError("malformed", `previousHash must be 32 bytes, got ${w.previousHash.length}`);
  if (w.recordsRoot.length !== 32) throw new WireError("malformed", `recordsRoot must be 32 bytes, got ${w.recordsRoot.length}`);
  const twinsRoot = w.twinsRoot ?? new Uint8Array(0);
  if (twinsRoot.length !== 0 && twinsRoot.length !== 32) throw new WireError("malformed", `twinsRoot must be 32 bytes (or absent), got ${twinsRoot.length}`);
  if (twinsRoot.length === 0 && w.twinCount) throw new WireError("malformed", `twinCount ${w.twinCount} without a twinsRoot`);
  return {
    nodeId: w.nodeId,
    farmId: w.farmId,
    sequence: toSafeNumber(w.sequence, "sequence"),
    periodStartMs: toSafeNumber(w.periodStartMs, "periodStartMs"),
    periodEndMs: toSafeNumber(w.periodEndMs, "periodEndMs"),
    previousHash: new Uint8Array(w.previousHash),
    recordCount: w.recordCount,
    totals: amountsFromWire(w.totals),
    recordsRoot: new Uint8Array(w.recordsRoot),
    downtimeMs: toSafeNumber(w.downtimeMs, "downtimeMs"),
    // a header from before billing has neither field (so it decodes to what was encoded)
    ...(twinsRoot.length > 0 ? { twinsRoot: new Uint8Array(twinsRoot), twinCount: w.twinCount ?? 0 } : {}),
  };
}

/** The hash that chains proofs: blake2b-256 of the exact header bytes that were signed. */
export function proofHash(headerBytes: Uint8Array): Uint8Array {
  return blake2b256(headerBytes);
}
