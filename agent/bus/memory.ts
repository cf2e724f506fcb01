import type { Bus, BusMessage, BusSubscribeOptions, BusSubscription } from "./bus";
import { AgentError } from "../errors";

/** A request nobody listens to: the error nats.js gives (`isNoResponders()`), so callers read both alike. */
export class NoRespondersError extends AgentError<"no_responders"> {
  constructor(subject: string) {
    super("no_responders", `no responders: ${subject}`);
    this.name = "NoRespondersError";
  }
  isNoResponders(): boolean {
    return true;
  }
}

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * A Bus inside one process: subjects with NATS wildcards, delivery in a later microtask (as over
 * a connection, a publisher never runs its subscribers' code inside `publish`), request/reply
 * through private inboxes, no-responders when nobody listens. For benchmarks and scripts that run
 * modules without a nats-server, and for unit tests of the modules' shells; integration tests use
 * a real nats-server through `natsBus`.
 */
export class MemoryBus implements Bus {
  private readonly subs = new Set<{ pattern: string; opts: BusSubscribeOptions }>();
  private readonly reconnectWatchers = new Set<() => Promise<void> | void>();
  private inboxes = 0;
  private closed = false;

  constructor(
    /** what maxPayload() answers (undefined: as a connection before the server said) */
    private readonly payloadLimit?: number,
  ) {}

  publish(subject: string, data: Uint8Array, opts?: { reply?: string }): void {
    if (this.closed) throw new Error("the bus is closed");
    const reply = opts?.reply;
    for (const sub of [...this.subs]) {
      if (!subjectMatches(sub.pattern, subject)) continue;
      const msg: BusMessage = {
        subject,
        data,
        reply,
        respond: (answer) => {
          if (!reply) return false;
          this.publish(reply, answer);
          return true;
        },
      };
      queueMicrotask(() => {
        if (this.subs.has(sub)) sub.opts.callback(null, msg);
      });
    }
  }

  subscribe(subject: string, opts: BusSubscribeOptions): BusSubscription {
    const sub = { pattern: subject, opts };
    this.subs.add(sub);
    return { unsubscribe: () => void this.subs.delete(sub) };
  }

  request(subject: string, data: Uint8Array, opts: { timeout: number }): Promise<{ readonly data: Uint8Array }> {
    if (![...this.subs].some((s) => subjectMatches(s.pattern, subject))) return Promise.reject(new NoRespondersError(subject));
    return new Promise((resolve, reject) => {
      const inbox = this.createInbox();
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(Object.assign(new Error(`request on ${subject} timed out after ${opts.timeout} ms`), { code: "TIMEOUT" }));
      }, opts.timeout);
      const sub = this.subscribe(inbox, {
        callback: (_err, msg) => {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve({ data: msg.data });
        },
      });
      this.publish(subject, data, { reply: inbox });
    });
  }

  async flush(): Promise<void> {
    // everything published so far has been queued; let the queued deliveries run
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  createInbox(): string {
    return `_INBOX.memory.${++this.inboxes}`;
  }

  maxPayload(): number | undefined {
    return this.payloadLimit;
  }

  getServer(): string {
    return "memory";
  }

  isClosed(): boolean {
    return this.closed;
  }

  onReconnect(fn: () => Promise<void> | void): () => void {
    this.reconnectWatchers.add(fn);
    return () => void this.reconnectWatchers.delete(fn);
  }

  /** Tell every onReconnect watcher the bus came back (tests of what modules redo after a reconnect). */
  async reconnected(): Promise<void> {
    for (const fn of [...this.reconnectWatchers]) await fn();
  }

  close(): void {
    this.closed = true;
    this.subs.clear();
    this.reconnectWatchers.clear();
  }
}
