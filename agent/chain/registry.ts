import { Budget } from "../bus/limits";
import type { Logger } from "../log/logger";
import type { Metrics } from "../metrics/metrics";
import type { NodeRecord, Registry, TwinRecord } from "../registry/types";
import type { ChainBackend } from "./backend";
import { ChainError } from "./errors";
import { parseChainRegistryOptions, type ChainRegistryOptions } from "./options";

interface Entry<T> {
  value: T | undefined;
  expiresMs: number;
}

/**
 * A Registry backed by a chain (ChainBackend: the stand-in through ChainClient, or tfchain, whose
 * twins carry scheme "any" with twinSchemes "any": it stores accounts, not schemes). Found twins and nodes are cached
 * for `ttlMs`, misses for `negativeTtlMs`; concurrent lookups of one id share one request.
 * When the chain is unavailable (or answers with a reply that does not verify) a lookup serves
 * the stale cached entry if there is one, else resolves undefined, and that answer is kept for
 * `negativeTtlMs` so lookups do not each wait for the chain's timeout; the outage is logged once
 * (and its end once). It never rejects.
 *
 * Bounded against forged input (gossip naming node ids nobody registered, deploys naming unknown
 * twins): at most `maxEntries` cached ids (the least recently used go first), and at most `lookupsPerSecond`
 * requests to the chain per kind (twins, nodes), so a flood of unknown node ids can neither grow
 * the cache and the in-flight table nor crowd out the twin lookups deploys need. A lookup over
 * the rate serves the stale entry if there is one, else resolves undefined (not registered)
 * without asking, uncached; it is counted (`capacity_agent_requests_shed_total{subject="chain_lookup"}`).
 */
export class ChainRegistry implements Registry {
  private readonly opts: Required<ChainRegistryOptions>;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly cache = new Map<string, Entry<TwinRecord | NodeRecord>>();
  private readonly inflight = new Map<string, Promise<TwinRecord | NodeRecord | undefined>>();
  private outage: string | null = null;
  private readonly client: ChainLookups;
  private readonly metrics: Metrics | null;
  private readonly budgets: { t: Budget; n: Budget };
  private lastShedLog = -Infinity;

  constructor(options: ChainRegistryOptions, modules: { client: ChainLookups; logger: Logger; now?: () => number; metrics?: Metrics | null }) {
    this.opts = parseChainRegistryOptions(options);
    this.log = modules.logger.child({ module: "chain-registry" });
    this.now = modules.now ?? Date.now;
    this.client = modules.client;
    this.metrics = modules.metrics ?? null;
    const rule = { rate: this.opts.lookupsPerSecond, burst: 2 * this.opts.lookupsPerSecond };
    this.budgets = { t: new Budget(rule, this.now), n: new Budget(rule, this.now) };
  }

  /** Cached ids (found and not found). */
  get size(): number {
    return this.cache.size;
  }

  /** Lookups waiting for the chain. */
  get pending(): number {
    return this.inflight.size;
  }

  twin(id: number): Promise<TwinRecord | undefined> {
    return this.lookup(`t${id}`, async () => {
      const t = await this.client.twin(id);
      return t && { id: t.twinId, publicKey: t.publicKey, scheme: this.opts.twinSchemes === "any" ? "any" : t.scheme };
    }) as Promise<TwinRecord | undefined>;
  }

  node(id: number): Promise<NodeRecord | undefined> {
    return this.lookup(`n${id}`, async () => {
      const n = await this.client.node(id);
      return n && { id: n.nodeId, farmId: n.farmId, twinId: n.twinId, publicKey: n.publicKey, scheme: n.scheme };
    }) as Promise<NodeRecord | undefined>;
  }

  /** Forget cached entries (all, or one twin/node), e.g. after a registration this process made. */
  invalidate(which?: { twin?: number; node?: number }): void {
    if (!which) return this.cache.clear();
    if (which.twin !== undefined) this.cache.delete(`t${which.twin}`);
    if (which.node !== undefined) this.cache.delete(`n${which.node}`);
  }

  private lookup(key: string, fetch: () => Promise<TwinRecord | NodeRecord | undefined>): Promise<TwinRecord | NodeRecord | undefined> {
    const hit = this.cache.get(key);
    if (hit) {
      // least recently used goes first: ids in use stay cached while a flood of unknown ids passes through
      this.cache.delete(key);
      this.cache.set(key, hit);
      if (hit.expiresMs > this.now()) return Promise.resolve(hit.value);
    }
    const running = this.inflight.get(key);
    if (running) return running;
    if (!this.budgets[key[0] as "t" | "n"].take()) {
      this.metrics?.shed.inc({ subject: "chain_lookup", reason: "global_rate" });
      if (this.now() - this.lastShedLog >= 10_000) {
        this.lastShedLog = this.now();
        this.log.warn({ event: "chain_lookups_shed", kind: key[0] === "t" ? "twin" : "node", lookupsPerSecond: this.opts.lookupsPerSecond }, "more registry lookups than the chain rate allows; unknown ids resolve to not registered");
      }
      return Promise.resolve(hit?.value);
    }
    const p = this.fetch(key, fetch, hit).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetch(key: string, fetch: () => Promise<TwinRecord | NodeRecord | undefined>, stale: Entry<TwinRecord | NodeRecord> | undefined): Promise<TwinRecord | NodeRecord | undefined> {
    let value: TwinRecord | NodeRecord | undefined;
    try {
      value = await fetch();
    } catch (err) {
      const code = err instanceof ChainError ? err.code : "error";
      if (this.outage !== code) {
        this.outage = code;
        this.log.warn({ event: "chain_registry_unavailable", code, err: (err as Error).message }, "the chain registry cannot be read; serving cached entries, unknown ids resolve to not registered");
      }
      // keep serving what is known (or "not registered") for a short while instead of making every
      // lookup wait for the chain's timeout; it is asked again after negativeTtlMs
      this.put(key, stale?.value, this.opts.negativeTtlMs);
      return stale?.value;
    }
    if (this.outage) {
      this.outage = null;
      this.log.info({ event: "chain_registry_available" }, "the chain registry answers again");
    }
    this.put(key, value, value ? this.opts.ttlMs : this.opts.negativeTtlMs);
    return value;
  }

  private put(key: string, value: TwinRecord | NodeRecord | undefined, ttlMs: number): void {
    this.cache.delete(key); // re-insert: Map order is the eviction order
    this.cache.set(key, { value, expiresMs: this.now() + ttlMs });
    while (this.cache.size > this.opts.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}

/** What ChainRegistry asks the chain: any ChainBackend (or the stand-in's ChainClient) has these. */
export type ChainLookups = Pick<ChainBackend, "twin" | "node">;

/**
 * Asks each registry in order and returns the first hit (e.g. a local file for dev keys, then the
 * chain). A registry that fails is skipped; if none has the id and one failed, the first failure
 * is thrown. close() closes every registry in the list.
 */
export class CompositeRegistry implements Registry {
  constructor(private readonly list: Registry[]) {}

  private async first<T>(ask: (r: Registry) => Promise<T | undefined>): Promise<T | undefined> {
    let failure: unknown;
    let failed = false;
    for (const r of this.list) {
      try {
        const v = await ask(r);
        if (v) return v;
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
      }
    }
    if (failed) throw failure;
    return undefined;
  }

  twin(id: number): Promise<TwinRecord | undefined> {
    return this.first((r) => r.twin(id));
  }

  node(id: number): Promise<NodeRecord | undefined> {
    return this.first((r) => r.node(id));
  }

  async close(): Promise<void> {
    for (const r of this.list) await r.close?.().catch(() => undefined);
  }
}
