import * as crypto from "node:crypto";
import { NodeClient } from "../../api/client";
import { connectBus, type NatsConnection } from "../../bus/nats";
import { Subjects } from "../../bus/subjects";
import { ChainClient } from "../../chain/client";
import { ChainRegistry } from "../../chain/registry";
import { StandinBackend } from "../../chain/standin";
import { dashboardState } from "../../dashboard/model";
import { DASHBOARD_DEFAULTS, DashboardServer } from "../../dashboard/server";
import { parseGossipOptions } from "../../gossip/options";
import { PeerView } from "../../gossip/peers";
import { cryptoReady, signerFromSeed } from "../../identity/keys";
import { createLogger, LOG_LEVELS } from "../../log/logger";
import { redact, secretsOf } from "../../log/redact";
import type { Registry } from "../../registry/types";
import { EXIT_FAIL, EXIT_OK, NATS_OPTION, UsageError, intFlag, natsServers, type Command } from "../framework";
import { registryFrom } from "./find";

/** The id the dashboard's view runs under (PeerView needs one; it answers no peers requests under it). */
const DASHBOARD_VIEW_ID = 0xffffffff;

export const dashboardCommand: Command = {
  name: "dashboard",
  help: `usage: capacity-agent dashboard [--nats URL] [--farm F] [--port P] [--host H] [--registry FILE]
                                [--pretty] [--log-level LEVEL]

Serves a web page (http://H:P/) showing every node of farm F from the signed gossip: capacity bars
per unit (used / reservable), free capacity, power state, heartbeat age, agent version, and the
farm's totals, updated live (server-sent events). Click a node for its deployments and usage
state (asked of the node, tfgrid.v1.node.<N>.status) and its last usage proofs (asked of the
chain). Every announcement is verified against the registry's key for the node it names (the
registry file, else the chain), as the agents do; the dashboard holds no node key and changes
nothing. Without --farm it shows every farm it hears.
  --nats URL         NATS server(s) (default $CAPACITY_AGENT_NATS or nats://127.0.0.1:4222)
  --farm F           the farm to show (default: every farm)
  --port P           HTTP port (default ${DASHBOARD_DEFAULTS.port}; 0 picks a free one, logged as dashboard_listening)
  --host H           address to listen on (default ${DASHBOARD_DEFAULTS.host}; the page has no login: keep it local
                     or behind a proxy that authenticates)
  --registry FILE    registry to verify announcements against (default $CAPACITY_AGENT_REGISTRY, else the chain)
  --pretty           human-readable logs instead of JSON
  --log-level LEVEL  fatal, error, warn, info (default), debug, trace, silent`,
  options: { ...NATS_OPTION, farm: { type: "string" }, port: { type: "string" }, host: { type: "string" }, registry: { type: "string" }, pretty: { type: "boolean" }, "log-level": { type: "string" } },
  async run({ values }, io) {
    const farm = intFlag(values, "farm", { max: 0xffffffff }) ?? null;
    const port = intFlag(values, "port", { min: 0, max: 65535 }) ?? DASHBOARD_DEFAULTS.port;
    const host = (values.host as string | undefined) ?? DASHBOARD_DEFAULTS.host;
    const level = (values["log-level"] as string | undefined) ?? "info";
    if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
    const servers = natsServers(values, io.env);
    const secrets = secretsOf(servers);
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
      nc = await connectBus({ servers, name: "capacity-agent dashboard" }, logger).catch((err: unknown) => {
        throw Object.assign(new Error(redact(`cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message} (pass --nats URL)`, secrets)), { code: "nats_unavailable" });
      });
      const chain = new ChainClient(nc, subjects);
      const registry: Registry = fileRegistry ?? new ChainRegistry({ lookupsPerSecond: 50 }, { client: new StandinBackend(chain), logger });
      // the view's own key is throw-away: it only tells the view which announcements are "its own" (none)
      const signer = signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32)));
      const listeners = new Set<() => void>();
      const pv = new PeerView(parseGossipOptions({ nodeId: DASHBOARD_VIEW_ID, farmId: farm ?? 1, twinId: DASHBOARD_VIEW_ID, scope: farm === null ? "grid" : "farm" }), {
        nc,
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
          node: new NodeClient(nc, subjects, 3000),
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
  },
};
