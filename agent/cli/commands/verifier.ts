import * as fs from "node:fs";
import * as path from "node:path";
import { connectBus, natsBus, type NatsConnection } from "../../bus/nats";
import { Subjects } from "../../bus/subjects";
import { createChainMetrics } from "../../authority/metrics";
import { parseChainOptions } from "../../authority/options";
import { ChainServer } from "../../authority/server";
import { ChainStore } from "../../authority/store";
import { createKeyFile, loadKeyFile, toHex, type Signer } from "../../identity/keys";
import { createLogger, LOG_LEVELS } from "../../log/logger";
import { MetricsRegistry } from "../../metrics/metrics";
import { TfchainBackend } from "../../tfchain/backend";
import { chainUrlFlag } from "./tfchain-common";
import { ProofVerifier } from "../../authority/verifier";
import { EXIT_FAIL, EXIT_OK, NATS_OPTION, UsageError, intFlag, natsServers, req, type Command } from "../framework";
import { readGracePeriodMs } from "../../tfchain/pricing";
import { TFCHAIN_GRACE_MS } from "../../billing/grace";

export const verifierCommand: Command = {
  name: "verifier",
  help: `usage: capacity-agent verifier --chain-url URL --data DIR [--nats URL[,URL...]] [--key FILE]
                               [--tft-price-musd N] [--grace-period SECONDS] [--pretty] [--log-level LEVEL]

Reads every finalized block of the tfchain at URL, takes each system.remark that parses as a
usage-proof envelope and judges it with the chain stand-in's rules and codes (signed by the key
tfchain binds to the node, sequence = last + 1, contiguous period, previous hash, totals within
the node's capacity on tfchain). It keeps one entry per node and the accepted proof headers in
DIR/chain.db, remembers the last block it judged (DIR/verifier-cursor.json: a restart goes on
from there), and answers the stand-in's query subject (tfgrid.v1.chain.query), so
\`capacity-agent proofs list/show/verify\` work against it unchanged.
  --chain-url URL     ws:// or wss:// URL of a tfchain node (required)
  --data DIR          where chain.db, the cursor and the default key live (required)
  --nats URLS         NATS server URLs, comma separated (default $CAPACITY_AGENT_NATS or nats://127.0.0.1:4222)
  --key FILE          the key its query replies are signed with (default <data>/verifier-key.json, created 0600)
  --tft-price-musd N  mUSD per TFT when the runtime has no TFT price (default 1000); proofs with twin
                      subtotals are charged with the farm's tfchain pricing policy (docs/billing.md)
  --grace-period S    how long a twin in debt keeps its deployments (default: the runtime's
                      smartContractModule.gracePeriod where it has that constant, else 14 days,
                      tfchain's value). Nodes ask for the verdict on their proofs (twins in debt,
                      grace ends) on the query subject and trust it under this verifier's key
  --pretty            human-readable logs instead of JSON
  --log-level LEVEL   fatal, error, warn, info (default), debug, trace, silent`,
  options: { "chain-url": { type: "string" }, data: { type: "string" }, ...NATS_OPTION, key: { type: "string" }, "tft-price-musd": { type: "string" }, pretty: { type: "boolean" }, "log-level": { type: "string" } },
  async run({ values }, io) {
    const url = chainUrlFlag(values);
    const data = req(values, "data");
    const level = (values["log-level"] as string | undefined) ?? "info";
    if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
    const tftRaw = values["tft-price-musd"] as string | undefined;
    if (tftRaw !== undefined && !/^[1-9][0-9]{0,9}$/.test(tftRaw)) throw new UsageError(`--tft-price-musd must be a positive integer of mUSD, got ${JSON.stringify(tftRaw)}`);
    const fallbackTftPriceMusd = tftRaw === undefined ? undefined : Number(tftRaw);
    const graceSeconds = intFlag(values, "grace-period", { max: 10 * 365 * 86_400 });
    const servers = natsServers(values, io.env);
    const subjects = new Subjects(io.env.CAPACITY_AGENT_SUBJECT_PREFIX ?? "tfgrid.v1");
    const logger = createLogger({ level, pretty: values.pretty === true });
    const log = logger.child({ module: "verifier" });

    let store: ChainStore | null = null;
    let nc: NatsConnection | null = null;
    let backend: TfchainBackend | null = null;
    let verifier: ProofVerifier | null = null;
    const shutdown = async (): Promise<void> => {
      await verifier?.close().catch(() => undefined);
      await backend?.close().catch(() => undefined);
      if (nc && !nc.isClosed()) {
        const conn = nc;
        await Promise.race([conn.drain().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
        await conn.close().catch(() => undefined);
      }
      store?.close();
    };
    try {
      const signer = await verifierKey(values.key as string | undefined, data);
      store = ChainStore.open(data);
      nc = await connectBus({ servers, name: "capacity-agent verifier" }, logger);
      backend = await TfchainBackend.connect({ url }, { logger });
      let nowMs = Date.now();
      const bus = natsBus(nc);
      const graceMs = graceSeconds !== undefined ? graceSeconds * 1000 : (readGracePeriodMs(backend.api) ?? TFCHAIN_GRACE_MS);
      const server = new ChainServer(parseChainOptions({ graceMs }), { bus, subjects, signer, store, logger, metrics: createChainMetrics(new MetricsRegistry()), now: () => nowMs });
      verifier = new ProofVerifier(data, { backend, store, server, bus, subjects, logger, setNow: (ms) => (nowMs = ms), fallbackTftPriceMusd });
      await verifier.start();
      log.info({ event: "verifier_ready", url, graceMs, publicKey: toHex(signer.publicKey), store: store.file, nats: servers }, "verifier started");
    } catch (err) {
      const e = err as { code?: string; message: string };
      logger.fatal({ event: "verifier_start_failed", code: e.code, err: e.message }, "verifier could not start");
      await shutdown();
      io.err(`capacity-agent verifier: ${e.code ? `[${e.code}] ` : ""}${e.message}`);
      return EXIT_FAIL;
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await shutdown();
    log.info({ event: "verifier_stopped" }, "verifier stopped");
    return EXIT_OK;
  },
};

async function verifierKey(file: string | undefined, data: string): Promise<Signer> {
  if (file) return loadKeyFile(file);
  const def = path.join(data, "verifier-key.json");
  if (!fs.existsSync(def)) {
    fs.mkdirSync(data, { recursive: true, mode: 0o700 });
    await createKeyFile(def, "ed25519");
  }
  return loadKeyFile(def);
}
