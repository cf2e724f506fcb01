import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createInbox, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../log/logger";
import { redact, secretsOf } from "../log/redact";
import { inboxPrefixOf, loadCredentials, type BusCredentials, type LoadedCredentials } from "./auth";
import type { Bus } from "./bus";

export type { NatsConnection };

export interface BusOptions {
  servers: string[];
  /** connection name shown by nats-server */
  name: string;
  /** how long the first connect may take, ms (default 5000) */
  timeoutMs?: number;
  /** NATS credentials and TLS (agent/bus/auth.ts); none: an open bus, or credentials in the URLs */
  credentials?: BusCredentials;
}

/** What the agent knows of its NATS connection right now (for /healthz). */
export interface BusHealth {
  connected: boolean;
  /** the server connected to, or last connected to */
  server: string;
  /** when the connection was last lost or regained (ms since epoch; 0: connected from the start) */
  sinceMs: number;
  disconnects: number;
}

const busStates = new WeakMap<NatsConnection, BusHealth>();

/** The connection's state as its status events told it (a connection not made by connectBus: by isClosed()). */
export function busHealth(nc: NatsConnection): BusHealth {
  const s = busStates.get(nc);
  if (!s) return { connected: !nc.isClosed(), server: nc.getServer(), sinceMs: 0, disconnects: 0 };
  return { ...s, connected: s.connected && !nc.isClosed() };
}

/**
 * Credentials written in the server URLs (`nats://user:pass@host`, `nats://token@host`,
 * `nats://host?token=T`), as connect options: nats.js itself ignores a URL's userinfo.
 * The first URL that carries any wins.
 */
export function natsAuth(servers: readonly string[]): { user?: string; pass?: string; token?: string } {
  for (const s of servers) {
    let u: URL;
    try {
      u = new URL(s.includes("://") ? s : `nats://${s}`);
    } catch {
      continue;
    }
    const token = u.searchParams.get("token");
    if (u.username && u.password) return { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
    if (u.username) return { token: decodeURIComponent(u.username) };
    if (token) return { token };
  }
  return {};
}

/**
 * Connect options for `servers` with `credentials`: configured credentials win over credentials
 * written in the URLs. Throws BusAuthError (code nats_credentials_invalid) for an unreadable file.
 */
export function connectAuth(servers: readonly string[], credentials: BusCredentials | undefined): LoadedCredentials {
  const loaded = loadCredentials(credentials);
  if (loaded.method !== "none") return loaded;
  return { ...loaded, options: { ...natsAuth(servers), ...loaded.options } };
}

/** A connect failure the server gave because of the credentials (wrong, missing or not allowed). */
export function isAuthFailure(err: unknown): boolean {
  const e = err as { message?: unknown; code?: unknown; name?: unknown } | null;
  const text = `${String(e?.name ?? "")} ${String(e?.code ?? "")} ${String(e?.message ?? "")}`;
  return /authoriz|authenticat|AUTHORIZATION_VIOLATION|AUTHENTICATION_EXPIRED/i.test(text);
}

/**
 * Connect to NATS and ride reconnects forever: the agent keeps serving from its store while the
 * bus is away, and NATS moves it to another server of the cluster when one dies.
 */
export async function connectBus(options: BusOptions, logger: Logger): Promise<NatsConnection> {
  const log = logger.child({ module: "bus" });
  // server names and errors are logged without the credentials of the configured URLs
  const auth = connectAuth(options.servers, options.credentials);
  const secrets = [...secretsOf(options.servers), ...auth.secrets];
  const clean = (s: unknown): string => redact(String(s), secrets);
  const nc = await connect({
    servers: options.servers,
    ...(auth.options as Record<string, unknown>),
    name: options.name,
    timeout: options.timeoutMs ?? 5000,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 5000,
    maxPingOut: 2,
  });
  log.info({ event: "nats_connected", server: clean(nc.getServer()), auth: auth.method, nkey: auth.publicKey, tls: options.credentials?.tls !== undefined }, "connected to NATS");
  const state: BusHealth = { connected: true, server: clean(nc.getServer()), sinceMs: 0, disconnects: 0 };
  busStates.set(nc, state);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect") {
        state.connected = s.type === "reconnect";
        state.server = nc.getServer();
        state.sinceMs = Date.now();
        if (s.type === "disconnect") state.disconnects++;
      }
      switch (s.type) {
        case "disconnect":
          log.warn({ event: "nats_disconnected", server: clean(s.server) }, "NATS connection lost; reconnecting");
          break;
        case "reconnect":
          log.info({ event: "nats_reconnected", server: clean(nc.getServer()) }, "reconnected to NATS");
          break;
        case "error":
          log.warn({ event: "nats_error", err: clean(s.error) }, "NATS error");
          break;
        default:
          log.debug({ event: "nats_status", type: s.type }, "NATS status");
      }
    }
  })().catch(() => undefined);
  return nc;
}

/** True when something speaks NATS at host:port (a TCP connect and the INFO line), within ms. */
export function natsAnswers(url: string, ms = 1000): Promise<boolean> {
  // credentials (user:pass@ or token@) may precede the host
  const m = /^(?:[a-z]+:\/\/)?(?:[^@/]*@)?([^:/@]+):(\d+)/i.exec(url);
  if (!m) return Promise.resolve(false);
  return new Promise((resolve) => {
    const sock = net.connect({ host: m[1], port: Number(m[2]) });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(ms, () => done(false));
    sock.once("error", () => done(false));
    sock.once("data", (d) => done(d.toString("utf8").startsWith("INFO")));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

export const NATS_SERVER_CANDIDATES = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];

export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER_BIN && fs.existsSync(env.NATS_SERVER_BIN)) return env.NATS_SERVER_BIN;
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    const p = path.join(dir, "nats-server");
    if (dir && fs.existsSync(p)) return p;
  }
  return NATS_SERVER_CANDIDATES.find((p) => fs.existsSync(p));
}

export interface EmbeddedNats {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Start a nats-server child on a free loopback port and wait until it answers. */
export async function startEmbeddedNats(bin: string, storeDir: string, logger: Logger): Promise<EmbeddedNats> {
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  fs.mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  const child = spawn(bin, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const deadline = Date.now() + 10_000;
  while (!(await natsAnswers(url, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the embedded nats-server did not start: ${stderr.trim() || "no output"}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  logger.child({ module: "bus" }).info({ event: "nats_embedded_started", url, pid: child.pid }, "started an embedded nats-server");
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      }),
  };
}

const buses = new WeakMap<NatsConnection, Bus>();

/**
 * The Bus over a nats.js connection: the one implementation the agent and the CLI use. Calls go
 * straight to the connection (same subjects, same bytes); one Bus per connection.
 */
export function natsBus(nc: NatsConnection): Bus {
  const known = buses.get(nc);
  if (known) return known;
  const bus: Bus = {
    publish: (subject, data, opts) => nc.publish(subject, data, opts?.reply ? { reply: opts.reply } : undefined),
    subscribe: (subject, opts) => nc.subscribe(subject, { callback: (err, msg) => opts.callback(err, msg) }),
    request: (subject, data, opts) => nc.request(subject, data, { timeout: opts.timeout }),
    flush: () => nc.flush(),
    // the connection's own inbox prefix: with per-user permissions it may read only its own inboxes
    createInbox: () => createInbox(inboxPrefixOf(nc)),
    maxPayload: () => nc.info?.max_payload,
    getServer: () => nc.getServer(),
    isClosed: () => nc.isClosed(),
    onReconnect: (fn, onEnd) => onReconnect(nc, fn, onEnd),
  };
  buses.set(nc, bus);
  return bus;
}

/**
 * Call `fn` after every reconnect of `nc` (awaited one at a time); returns a stop function.
 * Components that must redo something when the bus comes back (re-announce, resend) use it.
 */
export function onReconnect(nc: NatsConnection, fn: () => Promise<void> | void, onEnd?: (err: unknown) => void): () => void {
  const iter = nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
  let stopped = false;
  void (async () => {
    for await (const s of iter) {
      if (stopped) break;
      if (s.type === "reconnect") await fn();
    }
  })().catch((err: unknown) => onEnd?.(err));
  return () => {
    stopped = true;
    iter.stop?.();
  };
}
