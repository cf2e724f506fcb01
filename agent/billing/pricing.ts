import { AMOUNT_FIELDS, type UsageAmounts } from "../proofs/proof";
import { AgentError } from "../errors";

/**
 * Pricing (docs/billing.md): tfchain's formulas (GRID.md "Billing formulas") over a period's
 * metered amounts, in integers only. Shared by the chain stand-in (charging) and the twin's
 * `bills verify` (recomputing), so both get the same number.
 *
 *   cost = CU price x CU-hours + SU price x SU-hours + IPv4 price x IPv4-hours + NU price x NU GiB
 *
 * CU-hours and SU-hours come from the records (cu_micro_hours, su_micro_hours: the meter applies
 * the CU and SU formulas per deployment and time slice); IPv4 from ipv4_seconds; NU from nu_bytes.
 * Prices are per hour (per GiB for NU) in the chain's smallest unit. Rounding: the exact rational
 * cost is computed over one common denominator and rounded down once, per twin and period; a twin
 * is never charged more than the exact price. Time the node was down is not in the amounts, so it
 * is never billed.
 */
export interface PricingPolicy {
  /** per CU per hour (tfchain default policy: 100000) */
  cuPerHour: bigint;
  /** per SU per hour (tfchain default policy: 50000) */
  suPerHour: bigint;
  /** per public IPv4 per hour (tfchain default policy: 40000) */
  ipv4PerHour: bigint;
  /** per GiB of public traffic (tfchain default policy: 15000) */
  nuPerGib: bigint;
}

export const PRICING_DEFAULTS: PricingPolicy = { cuPerHour: 100_000n, suPerHour: 50_000n, ipv4PerHour: 40_000n, nuPerGib: 15_000n };

/** The JSON form (config, --json): integers as numbers or decimal strings. */
export type PricingInput = Partial<Record<keyof PricingPolicy, number | string>>;

export class PricingError extends AgentError<"invalid_options"> {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super("invalid_options", message);
    this.name = "PricingError";
  }
}

const MAX_PRICE = 1n << 48n;

/** Parse a pricing policy: each price a non-negative integer (number or decimal string) below 2^48. */
export function parsePricing(raw: PricingInput = {}, fieldPrefix = "chain.pricing"): PricingPolicy {
  const out = { ...PRICING_DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in PRICING_DEFAULTS)) throw new PricingError(`${fieldPrefix}.${k}: unknown price (known: ${Object.keys(PRICING_DEFAULTS).join(", ")})`, `${fieldPrefix}.${k}`);
    const ok = (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) || (typeof v === "string" && /^(0|[1-9][0-9]{0,17})$/.test(v));
    if (!ok || BigInt(v as number | string) >= MAX_PRICE) {
      throw new PricingError(`${fieldPrefix}.${k}: expected a non-negative integer below 2^48 (smallest unit per hour), got ${JSON.stringify(v)}`, `${fieldPrefix}.${k}`);
    }
    out[k as keyof PricingPolicy] = BigInt(v as number | string);
  }
  return out;
}

/** A policy with the chain's version of it (docs/billing.md "Policy versions"; 0: unversioned). */
export type VersionedPricing = PricingPolicy & { version: number };

export function pricingEquals(a: PricingPolicy, b: PricingPolicy): boolean {
  return a.cuPerHour === b.cuPerHour && a.suPerHour === b.suPerHour && a.ipv4PerHour === b.ipv4PerHour && a.nuPerGib === b.nuPerGib;
}

export function pricingToJson(p: PricingPolicy): Record<keyof PricingPolicy, string> {
  return { cuPerHour: p.cuPerHour.toString(), suPerHour: p.suPerHour.toString(), ipv4PerHour: p.ipv4PerHour.toString(), nuPerGib: p.nuPerGib.toString() };
}

const MICRO = 1_000_000n;
const SECONDS_PER_HOUR = 3600n;
const GIB = 1n << 30n;
/** the common denominator: micro-hours x seconds-per-hour x bytes-per-GiB */
const DENOMINATOR = MICRO * SECONDS_PER_HOUR * GIB;

/** The amount charged for `a`, in the smallest unit, rounded down once (see above). Never negative. */
export function price(a: UsageAmounts, p: PricingPolicy): bigint {
  for (const f of AMOUNT_FIELDS) if (a[f] < 0n) throw new RangeError(`pricing: ${f} is negative (${a[f]})`);
  const numerator =
    (p.cuPerHour * a.cuMicroHours + p.suPerHour * a.suMicroHours) * SECONDS_PER_HOUR * GIB + p.ipv4PerHour * a.ipv4Seconds * MICRO * GIB + p.nuPerGib * a.nuBytes * MICRO * SECONDS_PER_HOUR;
  return numerator / DENOMINATOR;
}
