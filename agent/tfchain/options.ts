import { TfchainError } from "./errors";

export interface TfchainOptions {
  /** ws:// or wss:// URL of a tfchain node's RPC */
  url: string;
  /** connecting gives up after this (default 15000 ms) */
  connectTimeoutMs?: number;
  /** a submitted extrinsic that is not in a finalized block by then is reported `timeout` (default 120000 ms) */
  inclusionTimeoutMs?: number;
  /** terms and conditions accepted before creating a twin (userAcceptTc) */
  termsLink?: string;
  termsHash?: string;
}

export const TFCHAIN_DEFAULTS = {
  connectTimeoutMs: 15_000,
  inclusionTimeoutMs: 120_000,
  termsLink: "https://library.threefold.me/info/legal/#/legal__terms_conditions_griduser",
  termsHash: "capacity-agent",
} as const;

/** Checks a chain URL: ws:// or wss:// with a host. */
export function parseChainUrl(v: unknown, field = "chain.url"): string {
  if (typeof v !== "string" || !/^wss?:\/\/[^/\s]+/.test(v)) {
    throw new TfchainError("invalid_options", `${field}: expected a ws:// or wss:// URL of a tfchain node, got ${JSON.stringify(v)}`, { field });
  }
  return v;
}

function positiveMs(v: unknown, field: string, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 3_600_000) {
    throw new TfchainError("invalid_options", `${field}: expected milliseconds from 1 to 3600000, got ${JSON.stringify(v)}`, { field });
  }
  return v;
}

export type ResolvedTfchainOptions = Required<TfchainOptions>;

export function resolveTfchainOptions(o: TfchainOptions): ResolvedTfchainOptions {
  return {
    url: parseChainUrl(o.url),
    connectTimeoutMs: positiveMs(o.connectTimeoutMs, "connectTimeoutMs", TFCHAIN_DEFAULTS.connectTimeoutMs),
    inclusionTimeoutMs: positiveMs(o.inclusionTimeoutMs, "inclusionTimeoutMs", TFCHAIN_DEFAULTS.inclusionTimeoutMs),
    termsLink: o.termsLink ?? TFCHAIN_DEFAULTS.termsLink,
    termsHash: o.termsHash ?? TFCHAIN_DEFAULTS.termsHash,
  };
}
