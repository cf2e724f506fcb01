import type { Units } from "../capacity/units";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import type { ChainBackend } from "./backend";
import { RetryTimer } from "../util/retry";

export interface ChainLinkOptions {
  farmId: number;
  /** first retry after a failed registration, ms; doubles up to retryMaxMs */
  retryMinMs: number;
  retryMaxMs: number;
}

export const CHAIN_LINK_RETRY = { retryMinMs: 1000, retryMaxMs: 60_000 };

/** The ids the chain holds for this node's key, after a registration round. */
export interface ChainIds {
  twinId: number;
  nodeId: number;
  /** what the node registration did */
  kind: "registered" | "updated" | "unchanged";
}

export type RegisterOutcome = ({ ok: true } & ChainIds) | { ok: false; what: "twin" | "node"; code: string; message: string };

/**
 * Keeps this node registered on the chain, as zos does on tfchain: it ensures the node key's twin
 * and the twin's node (farm, hardware capacity), with calls signed by the node key; the chain
 * assigns both ids (ChainBackend). It registers again whenever the hardware changes, and when the
 * chain says it does not know the node (refresh). Registration never blocks the agent: while the
 * chain is away it retries with backoff, and the node keeps serving. Every successful round hands
 * the ids to `onRegistered`.
 */
export class ChainLink {
  private readonly log: Logger;
  private total: Units;
  private readonly backoff: RetryTimer;
  private running = false;
  private again = false;
  private closed = false;
  private unavailableLogged = false;
  private registered = false;

  constructor(
    readonly options: ChainLinkOptions,
    private readonly m: { backend: ChainBackend; signer: Signer; logger: Logger; total: Units; onRegistered?: (ids: ChainIds) => void },
  ) {
    this.log = m.logger.child({ module: "chain-link" });
    this.total = m.total;
    this.backoff = new RetryTimer({ minMs: options.retryMinMs, maxMs: options.retryMaxMs }, () => void this.register());
  }

  /**
   * One registration round: the twin, then the node. Refusals are values; throws ChainError
   * (`chain_unavailable`, `bad_reply`) when the chain cannot be asked.
   */
  async registerOnce(): Promise<RegisterOutcome> {
    const { backend, signer } = this.m;
    const t = await backend.ensureTwin(signer);
    if (!t.ok) return { ok: false, what: "twin", code: t.code, message: t.message };
    const n = await backend.ensureNode(signer, { farmId: this.options.farmId, total: this.total });
    if (!n.ok) return { ok: false, what: "node", code: n.code, message: n.message };
    return { ok: true, twinId: t.id, nodeId: n.id, kind: n.kind };
  }

  /** The agent registered already (registerOnce at start): start() then does not register again. */
  markRegistered(): void {
    this.registered = true;
  }

  /** Start: register in the background, unless a registration succeeded already. */
  start(): void {
    if (!this.registered) void this.register();
  }

  /** New hardware totals: register them (the chain bounds usage proofs by the registered capacity). */
  setTotal(total: Units): void {
    this.total = total;
    void this.register();
  }

  /** Register again now (the chain said it does not know this node: a new chain store). */
  refresh(): void {
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
    let r: RegisterOutcome;
    try {
      r = await this.registerOnce();
    } catch (err) {
      if (!this.unavailableLogged) {
        this.log.warn({ event: "chain_unavailable", err: (err as Error).message }, "cannot register with the chain; retrying in the background");
        this.unavailableLogged = true;
      }
      this.retry();
      return false;
    }
    if (!r.ok) {
      // unauthorized: the chain binds something to another key, or the farm does not admit this
      // node's twin; a person must act (wrong key file, farm) - retried with backoff meanwhile
      const level = r.code === "unauthorized" ? "error" : "warn";
      this.log[level]({ event: "chain_registration_refused", what: r.what, code: r.code, reason: r.message }, "the chain refused this node's registration");
      this.retry();
      return false;
    }
    this.backoff.reset();
    this.unavailableLogged = false;
    this.registered = true;
    this.log.info({ event: "chain_registered", nodeId: r.nodeId, farmId: this.options.farmId, twinId: r.twinId, kind: r.kind, total: this.total }, "registered with the chain");
    this.m.onRegistered?.(r);
    return true;
  }

  /** Whether a registration round succeeded since start. */
  get isRegistered(): boolean {
    return this.registered;
  }

  private retry(): void {
    this.backoff.schedule();
  }

  close(): void {
    this.closed = true;
    this.backoff.close();
  }
}
