import { ChainError } from "./errors";
import { intInRange } from "../util/ints";

/** Options of ChainClient. */
export interface ChainClientOptions {
  /** how long a call waits for the chain, ms (default 5000) */
  timeoutMs?: number;
  /** pin: when set, replies must be signed by this 32-byte public key, else `bad_reply` */
  chainKey?: Uint8Array;
}

export const CHAIN_CLIENT_DEFAULTS = { timeoutMs: 5000 };

/** Options of ChainRegistry. */
export interface ChainRegistryOptions {
  /** how long a found twin or node is served from the cache, ms (default 60000) */
  ttlMs?: number;
  /** how long "not registered" is served from the cache, ms (default 2000) */
  negativeTtlMs?: number;
  /** most cached ids (twins and nodes together); the oldest go first (default 10000) */
  maxEntries?: number;
  /**
   * lookups sent to the chain per second, for twins and for nodes each (burst: twice that); more
   * resolve from the cache or as not registered, without asking (default 50)
   */
  lookupsPerSecond?: number;
  /**
   * "recorded" (default): a twin signs with the scheme the chain recorded for it (the stand-in);
   * "any": the chain stores accounts, not schemes (tfchain), so a twin's record says "any" and a
   * signature verifying under ed25519 or sr25519 for its public key is accepted
   */
  twinSchemes?: "recorded" | "any";
}

export const CHAIN_REGISTRY_DEFAULTS: Required<ChainRegistryOptions> = { ttlMs: 60_000, negativeTtlMs: 2_000, maxEntries: 10_000, lookupsPerSecond: 50, twinSchemes: "recorded" };

/** An integer option in [min, max], else ChainError invalid_options naming the field. */
export function intField(v: unknown, field: string, min: number, max: number): number {
  const r = intInRange(v, min, max);
  if (!r.ok) throw new ChainError("invalid_options", `${field}: ${r.problem}`, { field });
  return r.value;
}

export function parseChainRegistryOptions(raw: ChainRegistryOptions = {}): Required<ChainRegistryOptions> {
  const o = { ...CHAIN_REGISTRY_DEFAULTS, ...raw };
  intField(o.ttlMs, "chainRegistry.ttlMs", 0, 86_400_000);
  intField(o.negativeTtlMs, "chainRegistry.negativeTtlMs", 0, 86_400_000);
  intField(o.maxEntries, "chainRegistry.maxEntries", 1, 10_000_000);
  intField(o.lookupsPerSecond, "chain.lookupsPerSecond", 1, 1_000_000);
  if (o.twinSchemes !== "recorded" && o.twinSchemes !== "any") {
    throw new ChainError("invalid_options", `chainRegistry.twinSchemes: expected "recorded" or "any", got ${JSON.stringify(o.twinSchemes)}`, { field: "chainRegistry.twinSchemes" });
  }
  return o;
}
