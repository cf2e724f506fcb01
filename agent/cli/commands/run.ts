import { Agent } from "../../agent";
import { loadConfig, type ConfigOverrides } from "../../config/options";
import { createLogger } from "../../log/logger";
import { redact, secretsOf } from "../../log/redact";
import { ConfigError } from "../../config/errors";
import { BusAuthError, loadCredentials, NATS_AUTH_FLAGS } from "../../bus/auth";
import { EXIT_FAIL, EXIT_OK, NATS_AUTH_HELP, UsageError, type Command } from "../framework";

export const RUN_OPTIONS = {
  config: { type: "string" as const },
  nats: { type: "string" as const },
  data: { type: "string" as const },
  "node-id": { type: "string" as const },
  "farm-id": { type: "string" as const },
  "twin-id": { type: "string" as const },
  key: { type: "string" as const },
  registry: { type: "string" as const },
  pretty: { type: "boolean" as const },
  "log-level": { type: "string" as const },
  heartbeat: { type: "string" as const },
  period: { type: "string" as const },
  "metrics-port": { type: "string" as const },
  "no-chain": { type: "boolean" as const },
  "chain-url": { type: "string" as const },
  "verifier-key": { type: "string" as const },
  ...NATS_AUTH_FLAGS,
};

export const runCommand: Command = {
  name: "run",
  help: `usage: capacity-agent run [--config FILE] [--nats URL[,URL...]] [--data DIR] [--node-id N]
                          [--farm-id F] [--twin-id T] [--key FILE] [--registry FILE] [--pretty]
                          [--log-level LEVEL] [--heartbeat SECONDS] [--period SECONDS]
                          [--metrics-port PORT] [--no-chain] [--chain-url URL] [--verifier-key HEX]
                          [NATS credentials and TLS]

With no options it runs on embedded defaults: a dev identity (node 1, farm 1) created in
./.capacity-agent, NATS at nats://127.0.0.1:4222, and if nothing answers there, a nats-server
child on a free port (when the binary exists); its URL goes to <data>/nats.url, where client
commands run in the same directory find it, and the export line for other shells is printed.
  --config FILE       JSON config file (see README, "Configuration")
  --nats URLS         NATS server URLs, comma separated (several = a cluster to fail over to)
  --data DIR          data directory (store, dev key, dev registry)
  --node-id N         node id; --farm-id F farm id; --twin-id T the node's twin id
  --key FILE          node key file (from capacity-agent keys new)
  --registry FILE     JSON registry of twin and node keys
  --pretty            human-readable logs instead of JSON
  --log-level LEVEL   fatal, error, warn, info (default), debug, trace, silent
  --heartbeat SECONDS capacity announcement heartbeat (default 30)
  --period SECONDS    usage metering period (default 3600)
  --metrics-port PORT serve Prometheus metrics on 127.0.0.1:PORT/metrics (and /healthz)
  --no-chain          do not register with the chain nor send it usage proofs (they are still
                      built and kept for audit); keys come from the registry file only
  --chain-url URL     run on tfchain (ws:// or wss://) instead of the stand-in: the node key's
                      twin and node are registered there (the farm of --farm-id must exist:
                      capacity-agent farm create), the node id is tfchain's, twins resolve from
                      its storage, proofs go in system.remark extrinsics (docs/tfchain.md)
  --verifier-key HEX  with --chain-url: trust the verdicts (twins in debt, grace ends) of the
                      verifier with this public key (0x hex; chain.verifierKey); without it
                      no twin is refused as in debt on tfchain (docs/billing.md)
${NATS_AUTH_HELP}
The agent registers itself with the chain stand-in (capacity-agent chain) on the same NATS,
resolves twin and node keys through it after the registry file, and sends it one usage proof
per period; while no chain answers it keeps working and delivers the proofs later.
Every flag also reads from an environment variable CAPACITY_AGENT_<FLAG> (e.g. CAPACITY_AGENT_NODE_ID);
CAPACITY_AGENT_SUBJECT_PREFIX sets the subject prefix (config subjectPrefix; default tfgrid.v1).`,
  options: RUN_OPTIONS,
  async run({ values }, io) {
    const flags: ConfigOverrides = {
      config: values.config as string | undefined,
      nats: values.nats as string | undefined,
      data: values.data as string | undefined,
      nodeId: values["node-id"] as string | undefined,
      farmId: values["farm-id"] as string | undefined,
      twinId: values["twin-id"] as string | undefined,
      key: values.key as string | undefined,
      registry: values.registry as string | undefined,
      pretty: values.pretty as boolean | undefined,
      logLevel: values["log-level"] as string | undefined,
      heartbeat: values.heartbeat as string | undefined,
      period: values.period as string | undefined,
      metricsPort: values["metrics-port"] as string | undefined,
      noChain: values["no-chain"] as boolean | undefined,
      chainUrl: values["chain-url"] as string | undefined,
      verifierKey: values["verifier-key"] as string | undefined,
      natsAuth: values,
    };
    let config;
    try {
      config = loadConfig(flags, io.env);
    } catch (err) {
      // a bad flag value is a usage error (exit 2); a bad config file or variable stays exit 1
      if (err instanceof ConfigError && err.field.startsWith("--") && err.field !== "--config") throw new UsageError(err.message);
      throw err;
    }
    // the credential files are read once here, so that every secret in them is redacted from the logs
    let credentialSecrets: string[];
    try {
      credentialSecrets = loadCredentials(config.nats.credentials).secrets;
    } catch (err) {
      if (!(err instanceof BusAuthError)) throw err;
      io.err(`capacity-agent run: [${err.code}] ${err.message}`);
      return EXIT_FAIL;
    }
    const secrets = [...secretsOf(config.nats.servers), ...credentialSecrets];
    const logger = createLogger(config.log, undefined, secrets);
    const agent = new Agent(config, logger);
    try {
      await agent.start();
    } catch (err) {
      const e = err as { code?: string; message: string };
      logger.fatal({ event: "agent_start_failed", code: e.code, err: e.message }, "agent could not start");
      await agent.close();
      io.err(redact(`capacity-agent run: ${e.code ? `[${e.code}] ` : ""}${e.message}`, secrets));
      return EXIT_FAIL;
    }
    if (agent.natsUrlFile) {
      // for the person at the terminal (stdout holds the JSON logs)
      io.err(`capacity-agent run: started nats-server at ${agent.natsUrl}; client commands run here find it (${agent.natsUrlFile}); elsewhere:\n  export CAPACITY_AGENT_NATS=nats://${agent.natsUrl.replace(/^nats:\/\//, "")}`);
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await agent.close();
    return EXIT_OK;
  },
};
