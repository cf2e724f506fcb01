import type { ApiPromise } from "@polkadot/api";
import type { PricingPolicy } from "../billing/pricing";
import { TfchainError } from "./errors";
import { LEGACY_TYPES_MAX_SPEC } from "./types";

/**
 * tfchain's pricing, read from the chain and converted into our PricingPolicy (docs/billing.md
 * "Pricing on tfchain"). A farm names a pricing policy (`Farm.pricing_policy_id`,
 * `tfgridModule.pricingPolicies`); each price is a `Policy {value, unit}` in "units USD" (10^-7
 * USD, as tfchain's billing counts: 10000 units = 1 mUSD) per hour, for one `unit` of bytes (CU,
 * SU and NU; the IPv4 price is per IP and hour). Bills on tfchain are in TFT: the runtime's TFT
 * price (`tftPriceModule.averageTftPrice`, else `tftPrice`) converts them; spec 49 stores it as
 * U16F16 USD, later runtimes as u32 mUSD. 1 TFT = 10^7 planck.
 *
 *   planck per hour = floor( value x 2^30 / unit_bytes x 1000 / tft_price_musd )
 *
 * computed as one integer division per price (the TFT price kept as the fraction it is stored
 * as); then each bill is rounded down once per twin and period (billing/pricing.ts). A TFT price of
 * 0 (not set: the spec-49 devnet genesis) falls back to `fallbackTftPriceMusd` (default 1000: one
 * USD per TFT, so one unit USD is one planck).
 */

/** One price as tfchain stores it. */
export interface ChainPrice {
  value: bigint;
  unit: string;
}

export interface ChainPricingPolicy {
  id: number;
  name: string;
  cu: ChainPrice;
  su: ChainPrice;
  nu: ChainPrice;
  ipu: ChainPrice;
}

/** A TFT price in mUSD as the fraction num / den (U16F16 is raw x 1000 / 65536). */
export interface TftPrice {
  num: bigint;
  den: bigint;
  /** where it came from */
  source: "averageTftPrice" | "tftPrice" | "fallback";
}

export interface FarmPricing {
  farmId: number;
  policy: ChainPricingPolicy;
  tftPrice: TftPrice;
  /** planck per hour (per GiB for NU), ready for billing/pricing.ts */
  pricing: PricingPolicy;
}

export const DEFAULT_FALLBACK_TFT_PRICE_MUSD = 1000;

const UNIT_BYTES: Record<string, bigint> = { Bytes: 1n, Kilobytes: 1n << 10n, Megabytes: 1n << 20n, Gigabytes: 1n << 30n, Terrabytes: 1n << 40n, Terabytes: 1n << 40n };
const GIB = 1n << 30n;

function unitBytes(p: ChainPrice, what: string): bigint {
  const b = UNIT_BYTES[p.unit];
  if (b === undefined) throw new TfchainError("bad_reply", `pricing policy ${what}: unknown unit ${JSON.stringify(p.unit)}`);
  return b;
}

/** Pure: tfchain's policy and TFT price as our planck-per-hour policy (rounded down once per price). */
export function convertPricing(p: ChainPricingPolicy, tft: TftPrice): PricingPolicy {
  if (tft.num <= 0n || tft.den <= 0n) throw new TfchainError("bad_reply", "the TFT price must be positive");
  // value [units USD per unit-of-bytes per hour] -> per GiB: x 2^30 / unit_bytes; units USD -> mUSD: / 10^4;
  // mUSD -> TFT: / (num/den); TFT -> planck: x 10^7. Together: x 2^30 x 1000 x den / (unit_bytes x num)
  const perGib = (c: ChainPrice, what: string): bigint => (c.value * GIB * 1000n * tft.den) / (unitBytes(c, what) * tft.num);
  return {
    cuPerHour: perGib(p.cu, "cu"),
    suPerHour: perGib(p.su, "su"),
    nuPerGib: perGib(p.nu, "nu"),
    // per IP and hour: no bytes unit
    ipv4PerHour: (p.ipu.value * 1000n * tft.den) / tft.num,
  };
}

interface Codec {
  toString(): string;
  toJSON(): unknown;
  toU8a(bare?: boolean): Uint8Array;
  isSome?: boolean;
  isEmpty?: boolean;
  unwrap?: () => Codec;
}

function tg(api: ApiPromise, section: string, item: string): ((...a: unknown[]) => Promise<Codec>) | undefined {
  return (api.query as unknown as Record<string, Record<string, ((...a: unknown[]) => Promise<Codec>) | undefined> | undefined>)[section]?.[item];
}

async function read(api: ApiPromise, section: string, item: string, ...keys: unknown[]): Promise<Codec | undefined> {
  const q = tg(api, section, item);
  if (!q) return undefined;
  let v: Codec;
  try {
    v = await q(...keys);
  } catch (err) {
    throw new TfchainError("chain_unavailable", `reading ${section}.${item} failed: ${(err as Error).message}`, { cause: err });
  }
  if (typeof v.isSome === "boolean") return v.isSome ? v.unwrap!() : undefined;
  return v;
}

function priceOf(j: Record<string, unknown>, field: string, id: number): ChainPrice {
  const p = j[field] as { value?: unknown; unit?: unknown } | undefined;
  if (!p || (typeof p.value !== "number" && typeof p.value !== "string") || typeof p.unit !== "string") {
    throw new TfchainError("bad_reply", `pricing policy ${id}: field ${field} is not a {value, unit}; the type definitions do not match the runtime`);
  }
  return { value: BigInt(p.value), unit: p.unit };
}

/** `tfgridModule.pricingPolicies(id)`, or undefined when absent. */
export async function readPricingPolicy(api: ApiPromise, id: number): Promise<ChainPricingPolicy | undefined> {
  const v = await read(api, "tfgridModule", "pricingPolicies", id);
  if (!v) throw new TfchainError("unsupported_runtime", "the runtime has no tfgridModule.pricingPolicies");
  const j = v.toJSON() as Record<string, unknown>;
  // a ValueQuery map answers an absent id with the default value (id 0)
  if (!j || Number(j.id) !== id) return undefined;
  const nameHex = typeof j.name === "string" ? j.name : "";
  const name = /^0x[0-9a-f]*$/i.test(nameHex) ? Buffer.from(nameHex.slice(2), "hex").toString("utf8") : nameHex;
  return { id, name, cu: priceOf(j, "cu", id), su: priceOf(j, "su", id), nu: priceOf(j, "nu", id), ipu: priceOf(j, "ipu", id) };
}

/** The runtime's TFT price in mUSD (a fraction), or the fallback when it has none or it is 0. */
export async function readTftPrice(api: ApiPromise, fallbackMusd = DEFAULT_FALLBACK_TFT_PRICE_MUSD): Promise<TftPrice> {
  const fixedPoint = api.runtimeVersion.specVersion.toNumber() <= LEGACY_TYPES_MAX_SPEC;
  for (const item of ["averageTftPrice", "tftPrice"] as const) {
    const v = await read(api, "tftPriceModule", item);
    if (!v) continue;
    let raw: bigint;
    if (fixedPoint) {
      // U16F16 ([u8; 4], little endian): USD x 2^16
      const b = v.toU8a(true);
      if (b.length !== 4) throw new TfchainError("bad_reply", `tftPriceModule.${item}: ${b.length} bytes, expected a U16F16 (4)`);
      raw = BigInt(Buffer.from(b).readUInt32LE(0));
      if (raw > 0n) return { num: raw * 1000n, den: 65536n, source: item };
    } else {
      raw = BigInt(v.toString());
      if (raw > 0n) return { num: raw, den: 1n, source: item };
    }
  }
  if (!Number.isSafeInteger(fallbackMusd) || fallbackMusd < 1) throw new TfchainError("invalid_options", `the fallback TFT price must be a positive integer of mUSD, got ${fallbackMusd}`);
  return { num: BigInt(fallbackMusd), den: 1n, source: "fallback" };
}

/** The farm's pricing policy id (`Farm.pricing_policy_id`). */
export async function farmPricingPolicyId(api: ApiPromise, farmId: number): Promise<number | undefined> {
  const v = await read(api, "tfgridModule", "farms", farmId);
  if (!v) return undefined;
  const j = v.toJSON() as Record<string, unknown>;
  if (!j || Number(j.id) !== farmId) return undefined;
  const id = Number(j.pricing_policy_id ?? j.pricingPolicyId);
  if (!Number.isSafeInteger(id) || id < 0) throw new TfchainError("bad_reply", `farm ${farmId}: no pricing_policy_id; the type definitions do not match the runtime`);
  return id;
}

/** What the farm's nodes bill with: its policy (policy 1, tfchain's default, when the farm names 0) and the TFT price, converted. */
export async function readFarmPricing(api: ApiPromise, farmId: number, fallbackTftPriceMusd = DEFAULT_FALLBACK_TFT_PRICE_MUSD): Promise<FarmPricing> {
  const id = await farmPricingPolicyId(api, farmId);
  if (id === undefined) throw new TfchainError("not_found", `farm ${farmId} is not on the chain`);
  const policy = await readPricingPolicy(api, id === 0 ? 1 : id);
  if (!policy) throw new TfchainError("not_found", `pricing policy ${id === 0 ? 1 : id} of farm ${farmId} is not on the chain`);
  const tftPrice = await readTftPrice(api, fallbackTftPriceMusd);
  return { farmId, policy, tftPrice, pricing: convertPricing(policy, tftPrice) };
}

/**
 * The runtime's grace period for twins that cannot pay, ms: `smartContractModule.gracePeriod`
 * (blocks) times the block time (twice `timestamp.minimumPeriod`), where the runtime exposes it as
 * a constant; undefined where it does not (spec 49 and spec 132 do not: their value is in the
 * runtime's code only).
 */
export function readGracePeriodMs(api: ApiPromise): number | undefined {
  const consts = api.consts as unknown as Record<string, Record<string, { toString(): string } | undefined> | undefined>;
  const blocks = consts.smartContractModule?.gracePeriod;
  const minimum = consts.timestamp?.minimumPeriod;
  if (!blocks || !minimum) return undefined;
  const ms = Number(blocks.toString()) * 2 * Number(minimum.toString());
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}
