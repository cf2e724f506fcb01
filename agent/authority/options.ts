import { parsePricing, PricingError, type PricingInput, type PricingPolicy } from "../billing/pricing";
import type { UnitName } from "../capacity/units";
import { ChainError } from "../chain/errors";
import { intField as int } from "../chain/options";
import { TFCHAIN_GRACE_MS } from "../billing/grace";

/**
 * The rules the chain enforces (rules.ts); what a pallet would keep as its configuration.
 * `parseChainPolicy` / `parseChainOptions` check each field and name the bad one.
 */
export interface ChainPolicy {
  /**
   * clock difference tolerated between the chain and the nodes and twins that call it, ms
   * (default 60000): a ChainCall whose timestamp is further than this from the chain's clock is
   * `stale_request`, and a proof whose period ends further than this in the future is `malformed`
   */
  maxClockSkewMs: number;
  /**
   * how long before the node's first registration its FIRST proof (sequence 1) may start, ms
   * (default 86400000, a day). A node aligns its first period down to a period boundary and may
   * have metered a little before it registered; a bound keeps a new node from claiming months of
   * usage from before it existed on the chain. Later proofs are bound by contiguity instead.
   */
  firstProofLookbackMs: number;
  /**
   * largest overprovision factor per unit the chain accepts in proofs: a unit's amount over a
   * period may be at most capacity x factor x period (default CRU 4, as the agent allows 1..4 for
   * CPU; every other unit 1). Integers.
   */
  overprovision: Record<UnitName, number>;
  /**
   * a node may register (or update its registration) only into a farm registered on the chain
   * (farm.register), else `unknown_farm` (default false: dev grids and agents that never register
   * a farm keep working, and a node's farm id is taken as given, as before farms were kept)
   */
  requireFarm: boolean;
  /** most farms one twin may own (default 16); more are `quota_exceeded` */
  maxFarmsPerTwin: number;
  /** most twins on one farm's allow list (default 256); more are `quota_exceeded` */
  maxAllowedTwinsPerFarm: number;
}

export const CHAIN_POLICY_DEFAULTS: ChainPolicy = {
  maxClockSkewMs: 60_000,
  firstProofLookbackMs: 86_400_000,
  overprovision: { cru: 4, mru: 1, sru: 1, hru: 1, ipv4u: 1, gpu: 1 },
  requireFarm: false,
  maxFarmsPerTwin: 16,
  maxAllowedTwinsPerFarm: 256,
};

/**
 * Bounds on what callers can make the chain stand-in do and keep (limits.ts). Registration calls
 * (twin, node and farm) are counted per signing key and over all keys (token buckets: a rate per
 * second and a burst); new twins (new accounts, permanent state) have a budget of their own. Over
 * any of them a call is `rate_limited`. The per-key buckets are kept for at most maxTrackedKeys
 * keys (the least recently seen go first), so a flood of new keys cannot grow the chain's memory.
 */
export interface ChainLimits {
  /** registration calls per second per key (default 2), burst perKeyBurst (default 10) */
  perKeyPerSecond: number;
  perKeyBurst: number;
  /** registration calls per second over all keys (default 200), burst globalBurst (default 400) */
  globalPerSecond: number;
  globalBurst: number;
  /** new twins per second over all keys (default 10), burst newTwinsBurst (default 100) */
  newTwinsPerSecond: number;
  newTwinsBurst: number;
  /** keys whose buckets are remembered (default 10000) */
  maxTrackedKeys: number;
}

export const CHAIN_LIMITS_DEFAULTS: ChainLimits = {
  perKeyPerSecond: 2,
  perKeyBurst: 10,
  globalPerSecond: 200,
  globalBurst: 400,
  newTwinsPerSecond: 10,
  newTwinsBurst: 100,
  maxTrackedKeys: 10_000,
};

/** Options of the chain stand-in's server (server.ts). */
export interface ChainOptions {
  policy: ChainPolicy;
  limits: ChainLimits;
  /** prices of the billing (docs/billing.md; defaults: tfchain's default pricing policy values) */
  pricing: PricingPolicy;
  /** largest request accepted on any chain subject, bytes (default 16384); larger ones are `too_large` */
  maxRequestBytes: number;
  /** most proofs one query returns (default 1000, also the largest allowed) */
  maxProofsPerQuery: number;
  /** refusal counters are written to the store at most this often, ms (default 1000) */
  refusalFlushMs: number;
  /**
   * how long a twin in debt keeps its deployments, ms, from the bill that put it in debt (default
   * 14 days, tfchain's GracePeriod: billing/grace.ts); then nodes delete them (docs/billing.md "Grace")
   */
  graceMs: number;
}

export const CHAIN_DEFAULTS: Omit<ChainOptions, "policy" | "limits" | "pricing"> = {
  maxRequestBytes: 16 * 1024,
  maxProofsPerQuery: 1000,
  refusalFlushMs: 1000,
  graceMs: TFCHAIN_GRACE_MS,
};

export function parseChainPolicy(raw: Partial<ChainPolicy> = {}): ChainPolicy {
  const o = { ...CHAIN_POLICY_DEFAULTS, ...raw, overprovision: { ...CHAIN_POLICY_DEFAULTS.overprovision, ...(raw.overprovision ?? {}) } };
  int(o.maxClockSkewMs, "chain.policy.maxClockSkewMs", 0, 86_400_000);
  int(o.firstProofLookbackMs, "chain.policy.firstProofLookbackMs", 0, Number.MAX_SAFE_INTEGER);
  for (const [unit, f] of Object.entries(o.overprovision)) {
    if (!(unit in CHAIN_POLICY_DEFAULTS.overprovision)) throw new ChainError("invalid_options", `chain.policy.overprovision.${unit}: unknown unit`, { field: `chain.policy.overprovision.${unit}` });
    int(f, `chain.policy.overprovision.${unit}`, 1, 16);
  }
  int(o.maxFarmsPerTwin, "chain.policy.maxFarmsPerTwin", 1, 1_000_000);
  int(o.maxAllowedTwinsPerFarm, "chain.policy.maxAllowedTwinsPerFarm", 0, 100_000);
  if (typeof o.requireFarm !== "boolean") {
    throw new ChainError("invalid_options", `chain.policy.requireFarm: expected true or false, got ${JSON.stringify(o.requireFarm)}`, { field: "chain.policy.requireFarm" });
  }
  return o;
}

export function parseChainLimits(raw: Partial<ChainLimits> = {}): ChainLimits {
  const o = { ...CHAIN_LIMITS_DEFAULTS, ...raw };
  for (const k of ["perKeyPerSecond", "globalPerSecond", "newTwinsPerSecond"] as const) {
    if (typeof o[k] !== "number" || !(o[k] > 0) || o[k] > 1_000_000) throw new ChainError("invalid_options", `chain.limits.${k}: expected a number above 0, at most 1000000, got ${JSON.stringify(o[k])}`, { field: `chain.limits.${k}` });
  }
  for (const k of ["perKeyBurst", "globalBurst", "newTwinsBurst"] as const) int(o[k], `chain.limits.${k}`, 1, 1_000_000);
  int(o.maxTrackedKeys, "chain.limits.maxTrackedKeys", 1, 10_000_000);
  return o;
}

export function parseChainOptions(
  raw: Partial<Omit<ChainOptions, "policy" | "limits" | "pricing">> & { policy?: Partial<ChainPolicy>; limits?: Partial<ChainLimits>; pricing?: PricingInput } = {},
): ChainOptions {
  let pricing: PricingPolicy;
  try {
    pricing = parsePricing(raw.pricing);
  } catch (err) {
    if (err instanceof PricingError) throw new ChainError("invalid_options", err.message, { field: err.field, cause: err });
    throw err;
  }
  const o = { ...CHAIN_DEFAULTS, ...raw, policy: parseChainPolicy(raw.policy), limits: parseChainLimits(raw.limits), pricing };
  int(o.maxRequestBytes, "chain.maxRequestBytes", 1024, 1024 * 1024);
  int(o.maxProofsPerQuery, "chain.maxProofsPerQuery", 1, 1000);
  int(o.refusalFlushMs, "chain.refusalFlushMs", 10, 3_600_000);
  int(o.graceMs, "chain.graceMs", 1, 10 * 365 * 86_400_000);
  return o;
}
