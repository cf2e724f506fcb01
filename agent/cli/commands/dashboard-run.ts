import * as crypto from "node:crypto";
import { NodeClient } from "../../api/client";
import { busCredentials } from "../client";
import { connectBus, isAuthFailure, natsBus, type NatsConnection } from "../../bus/nats";
import { Subjects } from "../../bus/subjects";
import { ChainClient } from "../../chain/client";
import { ChainRegistry } from "../../chain/registry";
import { StandinBackend } from "../../chain/standin";
import { dashboardState } from "../../dashboard/model";
import { DashboardServer } from "../../dashboard/server";
import { DASHBOARD_DEFAULTS } from "../../dashboard/options";
import { parseGossipOptions } from "../../gossip/options";
import { PeerView } from "../../gossip/peers";
import { cryptoReady, signerFromSeed } from "../../identity/keys";
import { createLogger, LOG_LEVELS } from "../../log/logger";
import { redact } from "../../log/redact";
import type { Registry } from "../../registry/types";
import { EXIT_FAIL, EXIT_OK, UsageError, intFlag, natsServers, type Io } from "../framework";
import { registryFrom } from "./find";

/** The id the dashboard's view runs under (PeerView needs one; it answers no peers requests under it). */
const DASHBOARD_VIEW_ID = 0xffffffff;

/** `capacity-agent dashboard`: connect, verify the farm's gossip, serve the page until SIGINT/SIGTERM. */
export async function runDashboard(values: Record<string, unknown>, io: Io): Promise<number> {
  const farm = intFlag(values, "farm", { max: 0xffffffff }) ?? null;
  const port = intFlag(values, "port", { min: 0, max: 65535 }) ?? DASHBOARD_DEFAULTS.port;
  const host = (values.host as string | undefined) ?? DASHBOARD_DEFAULTS.host;
  const level = (values["log-level"] as string | undefined) ?? "info";
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
  const servers = natsServers(values, io.env);
  const bus = busCredentials("dashboard", values, io, servers);
  if (!bus) return EXIT_FAIL;
  const { credentials, secrets } = bus;
  const subjects = new Subjects(io.env.CAPACITY_AGENT_SUBJECT_PREFIX ?? "tfgrid.v1");
  const logger = createLogger({ level, pretty: values.pretty === true }, undefined, secrets);
  const log = logger.child({ module: "dashboard" });
  const fileRegistry = registryFrom(values, io.env);

  let nc: NatsConnection | null = null;
  let view: PeerView | null = null;
  let server: DashboardServer | null = null;
  const shutdown = async (): Promise<void> => {
    await server?.close().catch(() => undefined);
    view?.close();
    await nc?.close().catch(() => undefined);
  };
  try {
    await cryptoReady(); // announcements may be signed with sr25519
    nc = await connectBus({ servers, name: "capacity-agent dashboard", credentials }, logger).catch((err: unknown) => {
      if (isAuthFailure(err)) throw Object.assign(new Error(redact(`NATS at ${servers.join(", ")} refused the dashboard's credentials: ${(err as Error).message} (check --nats-nkey / --nats-creds; docs/bus-security.md)`, secrets)), { code: "nats_unauthorized" });
      throw Object.assign(new Error(redact(`cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message} (pass --nats URL)`, secrets)), { code: "nats_unavailable" });
    });
    const bus = natsBus(nc);
    const chain = new ChainClient(bus, subjects);
    const registry: Registry = fileRegistry ?? new ChainRegistry({ lookupsPerSecond: 50 }, { client: new StandinBackend(chain), logger });
    // the view's own key is throw-away: it only tells the view which announcements are "its own" (none)
    const signer = signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32)));
    const listeners = new Set<() => void>();
    const pv = new PeerView(parseGossipOptions({ nodeId: DASHBOARD_VIEW_ID, farmId: farm ?? 1, twinId: DASHBOARD_VIEW_ID, scope: farm === null ? "grid" : "farm" }), {
      bus,
      subjects,
      registry,
      signer,
      logger,
      metrics: null,
      now: Date.now,
      onChange: () => listeners.forEach((fn) => fn()),
    });
    view = pv;
    pv.start(() => false); // it listens; it answers no peers requests (it is not a node)
    if (farm !== null) await pv.sync();
    server = new DashboardServer(
      { ...DASHBOARD_DEFAULTS, host, port },
      {
        state: () => dashboardState(pv.peers(), farm, Date.now()),
        onChange: (fn) => {
          listeners.add(fn);
          return () => listeners.delete(fn);
        },
        node: new NodeClient(bus, subjects, 3000),
        chain,
        logger,
      },
    );
    await server.start();
    log.info({ event: "dashboard_started", farm, nodes: pv.peers().length, registry: fileRegistry ? "file" : "chain", url: `http://${host}:${server.port}/` }, "dashboard started");
  } catch (err) {
    const e = err as { code?: string; message: string };
    logger.fatal({ event: "dashboard_start_failed", code: e.code, err: e.message }, "dashboard could not start");
    await shutdown();
    io.err(redact(`capacity-agent dashboard: ${e.code ? `[${e.code}] ` : ""}${e.message}`, secrets));
    return EXIT_FAIL;
  }
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) return resolve();
    io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await shutdown();
  log.info({ event: "dashboard_stopped" }, "dashboard stopped");
  return EXIT_OK;
}
