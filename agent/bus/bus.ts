/**
 * The bus the modules talk over: publish, subscribe, request, and the few facts of the connection
 * they need (an inbox for scatter-gather, the largest payload, reconnects). The modules (node API,
 * gossip, usage, power, chain client and stand-in, verifier, dashboard) take a `Bus`; the one
 * implementation over a nats.js connection is `natsBus` (agent/bus/nats.ts), wired in agent.ts
 * and by the CLI's `withNats`. Unit tests pass a small object that implements this interface.
 *
 * The shapes follow nats.js (callback subscriptions, `{ timeout }` on requests), so a module reads
 * the same over the interface as over the connection, and the bytes on the wire do not change.
 */

/** A message delivered to a subscription. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** where the sender waits for an answer; empty or absent for a plain publish */
  readonly reply?: string;
  /** answer on `reply`; false when there is nobody to answer */
  respond(data: Uint8Array): boolean;
}

export interface BusSubscription {
  unsubscribe(): void;
}

export interface BusSubscribeOptions {
  /** called for every message, in order; `err` when the subscription failed (e.g. a permission violation) */
  callback(err: Error | null, msg: BusMessage): void;
}

export interface Bus {
  publish(subject: string, data: Uint8Array, opts?: { reply?: string }): void;
  subscribe(subject: string, opts: BusSubscribeOptions): BusSubscription;
  /**
   * One request, one reply. Rejects when nobody answers within `timeout` ms; an error with
   * `isNoResponders()` returning true when nobody listens on the subject (see `isNoResponders`).
   */
  request(subject: string, data: Uint8Array, opts: { timeout: number }): Promise<{ readonly data: Uint8Array }>;
  /** resolves once the server has processed everything sent so far (subscriptions included) */
  flush(): Promise<void>;
  /** a new reply subject under this connection's inbox prefix (with per-user permissions it may read only its own inboxes) */
  createInbox(): string;
  /** the largest payload the server accepts, bytes; undefined before the server said */
  maxPayload(): number | undefined;
  /** the server connected to (for logs; may carry credentials: redact before printing) */
  getServer(): string;
  isClosed(): boolean;
  /**
   * Call `fn` after every reconnect (awaited one at a time); returns a stop function. Components
   * that must redo something when the bus comes back (re-announce, resend) use it.
   */
  onReconnect(fn: () => Promise<void> | void, onEnd?: (err: unknown) => void): () => void;
}

/** True for a request error that says nobody listens on the subject (nats.js RequestError, duck-typed). */
export function isNoResponders(err: unknown): boolean {
  return typeof (err as { isNoResponders?: unknown } | null)?.isNoResponders === "function" && (err as { isNoResponders(): boolean }).isNoResponders();
}
