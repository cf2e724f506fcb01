import * as fs from "node:fs";
import * as path from "node:path";
import { busCredentials } from "../client";
import { busHealth, connectBus, isAuthFailure, natsBus, type NatsConnection } from "../../bus/nats";
import { Subjects } from "../../bus/subjects";
import { createChainMetrics } from "../../authority/metrics";
import type { PricingInput } from "../../billing/pricing";
import { parseChainOptions } from "../../authority/options";
import { ChainServer } from "../../authority/server";
import { ChainStore } from "../../authority/store";
import { DirLock } from "../../store/lock";
import { createKeyFile, cryptoReady, loadKeyFile, toHex, type Signer } from "../../identity/keys";
import { createLogger, LOG_LEVELS, type Logger } from "../../log/logger";
import { healthOf } from "../../metrics/health";
import { redact } from "../../log/redact";
import { ensurePrivateDir } from "../../store/files";
import { MetricsServer } from "../../metrics/http";
import { MetricsRegistry } from "../../metrics/metrics";
import { EXIT_FAIL, EXIT_OK, NATS_OPTION, UsageError, intFlag, natsServers, type Command } from "../framework";

export const CHAIN_DEFAULT_DATA = "./.capacity-agent-chain";

export const chainCommand: Command = {
  name: "chain",
  help: `usage: capacity-agent chain [--data DIR] [--nats URL[,URL...]] [--key FILE] [--require-farm]
                            [--pricing FILE] [--grace-period SECONDS] [--pretty] [--log-level LEVEL]
                            [--metrics-port PORT]
       capacity-agent chain fund --twin T --amount A [--nats URL] [--json]

Plays tfchain's role for capacity-agent: binds twin and node ids to keys, keeps farms (each owned
by a twin) and node capacity, and verifies and durably stores usage proofs with the rules a chain
pallet would enforce (signed by the node's key, sequence = last + 1, contiguous periods, previous
hash, totals within the node's capacity). Subjects (prefix $CAPACITY_AGENT_SUBJECT_PREFIX, default tfgrid.v1):
  tfgrid.v1.chain.twin.register  tfgrid.v1.chain.node.register  tfgrid.v1.chain.farm.register
  tfgrid.v1.chain.proof.submit   tfgrid.v1.chain.query          events on tfgrid.v1.chain.events.<kind>
  tfgrid.v1.chain.proof.settle   tfgrid.v1.chain.fund
It bills: each proof's twin subtotals are charged to the twins and credited to the node's farm
(docs/billing.md). \`chain fund\` adds A (smallest unit) to twin T's balance: dev grids only.
Every reply and event is signed by the chain's key; pin it in clients with its public key.
  --data DIR          where chain.db and the default key live (default ${CHAIN_DEFAULT_DATA})
  --nats URLS         NATS server URLs, comma separated (default $CAPACITY_AGENT_NATS or nats://127.0.0.1:4222)
  --key FILE          the chain's key file (default <data>/chain-key.json, created mode 0600 on first start)
  --require-farm      register a node only into a farm registered on the chain (farm.register, e.g.
                      \`capacity-agent registry add --chain --farm F --twin T --key TWINKEY\`); other
                      node registrations are refused with unknown_farm. Default: off, a node's farm
                      id is taken as given (dev grids, agents whose farm was never registered)
  --pricing FILE      the pricing policy, JSON {"cuPerHour","suPerHour","ipv4PerHour","nuPerGib"}
                      (integers of the smallest unit; default tfchain's default policy values:
                      100000, 50000, 40000, 15000; docs/billing.md)
  --grace-period S    how long a twin in debt keeps its deployments, from the bill that put it in
                      debt; then its nodes delete them (default 1209600: 14 days, tfchain's grace)
  --pretty            human-readable logs instead of JSON
  --log-level LEVEL   fatal, error, warn, info (default), debug, trace, silent
  --metrics-port PORT serve Prometheus metrics on 127.0.0.1:PORT/metrics (and /healthz)`,
  options: {
    data: { type: "string" },
    ...NATS_OPTION,
    key: { type: "string" },
    "require-farm": { type: "boolean" },
    pretty: { type: "boolean" },
    "log-level": { type: "string" },
    "metrics-port": { type: "string" },
    pricing: { type: "string" },
    "grace-period": { type: "string" },
    twin: { type: "string" },
    amount: { type: "string" },
    json: { type: "boolean" },
  },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length > 0) {
      if (positionals.length !== 1 || positionals[0] !== "fund") throw new UsageError(`expected "chain" or "chain fund", got "chain ${positionals.join(" ")}"`);
      return (require("./fund") as typeof import("./fund")).fund(values, io);
    }
    const data = (values.data as string | undefined) ?? CHAIN_DEFAULT_DATA;
    const level = (values["log-level"] as string | undefined) ?? "info";
    if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
    const metricsPort = intFlag(values, "metrics-port", { min: 0, max: 65535 });
    const grace = intFlag(values, "grace-period", { max: 10 * 365 * 86_400 });
    const servers = natsServers(values, io.env);
    const subjects = new Subjects(io.env.CAPACITY_AGENT_SUBJECT_PREFIX ?? "tfgrid.v1");
    const bus = busCredentials("chain", values, io, servers);
    if (!bus) return EXIT_FAIL;
    const { credentials, secrets } = bus;
    const logger = createLogger({ level, pretty: values.pretty === true }, undefined, secrets);
    const log = logger.child({ module: "chain" });

    let lock: DirLock | null = null;
    let store: ChainStore | null = null;
    let nc: NatsConnection | null = null;
    let server: ChainServer | null = null;
    let metricsServer: MetricsServer | null = null;
    const shutdown = async (): Promise<void> => {
      await server?.close().catch(() => undefined);
      await metricsServer?.close().catch(() => undefined);
      if (nc && !nc.isClosed()) {
        // drain sends what is buffered; with the server away it would wait for a reconnect, so bound it
        const conn = nc;
        await Promise.race([conn.drain().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
        await conn.close().catch(() => undefined);
      }
      store?.close();
      lock?.release();
    };
    try {
      // a read-only data dir is named as such; the dir is private (0700) like the agent's
      ensurePrivateDir(data, (file, from, to) => log.warn({ event: "permissions_tightened", file, from: from.toString(8), to: to.toString(8) }, "tightened the permissions of a chain file"));
      // one chain stand-in per data directory (two would each accept proofs into one store)
      lock = DirLock.acquire(data, "chain", "capacity-agent chain");
      await cryptoReady(); // registrations may be signed with sr25519: load its WASM crypto once, up front
      const signer = await chainKey(values.key as string | undefined, data, log);
      store = ChainStore.open(data);
      nc = await connectBus({ servers, name: "capacity-agent chain", credentials }, logger).catch((err: unknown) => {
        if (isAuthFailure(err)) throw Object.assign(new Error(redact(`NATS at ${servers.join(", ")} refused the chain's credentials: ${(err as Error).message} (check --nats-nkey / --nats-creds; docs/bus-security.md)`, secrets)), { code: "nats_unauthorized" });
        throw Object.assign(new Error(redact(`cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message} (pass --nats URL)`, secrets)), { code: "nats_unavailable" });
      });
      const registry = new MetricsRegistry().withDefaults().withBuildInfo("chain");
      const options = parseChainOptions({ policy: { requireFarm: values["require-farm"] === true }, pricing: pricingFile(values.pricing as string | undefined), ...(grace !== undefined ? { graceMs: grace * 1000 } : {}) });
      server = new ChainServer(options, { bus: natsBus(nc), subjects, signer, store, logger, metrics: createChainMetrics(registry), now: Date.now });
      await server.start();
      if (metricsPort !== undefined) {
        const conn = nc;
        metricsServer = new MetricsServer({ host: "127.0.0.1", port: metricsPort }, { registry, logger, health: () => healthOf(busHealth(conn), null) });
        await metricsServer.start();
      }
      log.info({ event: "chain_started", publicKey: toHex(signer.publicKey), address: signer.address, scheme: signer.scheme, store: store.file, nats: servers, prefix: subjects.prefix, requireFarm: options.policy.requireFarm }, "chain stand-in started");
    } catch (err) {
      const e = err as { code?: string; message: string };
      logger.fatal({ event: "chain_start_failed", code: e.code, err: e.message }, "chain stand-in could not start");
      await shutdown();
      io.err(redact(`capacity-agent chain: ${e.code ? `[${e.code}] ` : ""}${e.message}`, secrets));
      return EXIT_FAIL;
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await shutdown();
    log.info({ event: "chain_stopped" }, "chain stand-in stopped");
    return EXIT_OK;
  },
};

/** --pricing FILE: a JSON object of prices (checked by parseChainOptions). */
function pricingFile(file: string | undefined): PricingInput | undefined {
  if (file === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw Object.assign(new Error(`--pricing ${file}: cannot read a JSON object: ${(err as Error).message}`), { code: "invalid_options" });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw Object.assign(new Error(`--pricing ${file}: expected a JSON object of prices`), { code: "invalid_options" });
  return raw as PricingInput;
}

/** The chain's key: --key FILE (must exist), or <data>/chain-key.json, created on first start. */
async function chainKey(file: string | undefined, data: string, log: Logger): Promise<Signer> {
  if (file) return loadKeyFile(file);
  const def = path.join(data, "chain-key.json");
  if (!fs.existsSync(def)) {
    fs.mkdirSync(data, { recursive: true, mode: 0o700 });
    const kf = await createKeyFile(def, "ed25519");
    log.info({ event: "chain_key_created", file: def, address: kf.address }, "created the chain's key");
  }
  return loadKeyFile(def);
}
