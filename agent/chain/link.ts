import type { Units } from "../capacity/units";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import type { ChainClient, ChainResult } from "./client";

export interface ChainLinkOptions {
  nodeId: number;
  farmId: number;
  twinId: number;
  /** first retry after a failed registration, ms; doubles up to retryMaxMs */
  retryMinMs: number;
  retryMaxMs: number;
}

export const CHAIN_LINK_RETRY = { retryMinMs: 1000, retryMaxMs: 60_000 };

/**
 * Keeps this node registered on the chain, as zos does on tfchain: at start it registers the
 * node's twin and the node (id, farm, twin, hardware capacity) with calls signed by the node key,
 * and registers the node again whenever its hardware changes. Registration never blocks the agent:
 * while the chain is away it retries with backoff, and the node keeps serving.
 */
export class ChainLink {
  private readonly log: Logger;
  private total: Units;
  private twinDone = false;
  private timer: NodeJS.Timeout | null = null;
  private retryMs: number;
  private running = false;
  private again = false;
  private closed = false;
  private unavailableLogged = false;

  constructor(
    readonly options: ChainLinkOptions,
    private readonly m: { client: ChainClient; signer: Signer; logger: Logger; total: Units },
  ) {
    this.log = m.logger.child({ module: "chain-link" });
    this.total = m.total;
    this.retryMs = options.retryMinMs;
  }

  start(): void {
    void this.register();
  }

  /** New hardware totals: register them (the chain bounds usage proofs by the registered capacity). */
  setTotal(total: Units): void {
    this.total = total;
    void this.register();
  }

  /** Register again now (the chain said it does not know this node: a new chain store). */
  refresh(): void {
    this.twinDone = false;
    void this.register();
  }

  private async register(): Promise<void> {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        if (!(await this.once())) return;
      } while (this.again && !this.closed);
    } finally {
      this.running = false;
    }
  }

  /** One registration round; false when it has to be retried later. */
  private async once(): Promise<boolean> {
    const { client, signer } = this.m;
    const o = this.options;
    const total = this.total;
    let r: ChainResult;
    try {
      if (!this.twinDone) {
        const t = await client.registerTwin(signer, o.twinId);
        if (!t.ok && t.code !== "unauthorized") return this.refused("twin", t);
        // unauthorized: the twin id is another key's; retrying will not change that, so say so
        // once and register the node all the same (its proofs do not depend on its twin)
        if (!t.ok) this.log.error({ event: "chain_registration_refused", what: "twin", code: t.code, reason: t.message }, "the chain binds this node's twin id to another key; check --twin-id");
        this.twinDone = true;
      }
      r = await client.registerNode(signer, { nodeId: o.nodeId, farmId: o.farmId, twinId: o.twinId, total });
    } catch (err) {
      if (!this.unavailableLogged) {
        this.log.warn({ event: "chain_unavailable", err: (err as Error).message }, "cannot register with the chain; retrying in the background");
        this.unavailableLogged = true;
      }
      this.retry();
      return false;
    }
    if (!r.ok) return this.refused("node", r);
    this.retryMs = this.options.retryMinMs;
    this.unavailableLogged = false;
    this.log.info({ event: "chain_registered", nodeId: o.nodeId, farmId: o.farmId, twinId: o.twinId, total }, "registered with the chain");
    return true;
  }

  private refused(what: "twin" | "node", r: { code: string; message: string }): false {
    // unauthorized: the id is bound to another key on the chain; a person must act (wrong key file or id)
    const level = r.code === "unauthorized" ? "error" : "warn";
    this.log[level]({ event: "chain_registration_refused", what, code: r.code, reason: r.message }, "the chain refused this node's registration");
    this.retry();
    return false;
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    const delay = Math.round(this.retryMs * (0.8 + Math.random() * 0.4));
    this.retryMs = Math.min(this.options.retryMaxMs, this.retryMs * 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.register();
    }, delay);
    this.timer.unref?.();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
