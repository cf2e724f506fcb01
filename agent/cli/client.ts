import type { NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../api/client";
import type { Bus } from "../bus/bus";
import { BusAuthError, credentialsFromFlags, loadCredentials, type BusCredentials } from "../bus/auth";
import { Subjects } from "../bus/subjects";
import { redact, secretsOf } from "../log/redact";
import { natsSource, type Io } from "./framework";
import { AgentError } from "../errors";

export class NatsUnavailable extends AgentError<"nats_unavailable"> {
  constructor(message: string) {
    super("nats_unavailable", message);
  }
}

export class NatsUnauthorized extends AgentError<"nats_unauthorized"> {
  constructor(message: string) {
    super("nats_unauthorized", message);
  }
}

/** Connect to NATS for one CLI command, run `fn`, and always close the connection. */
export async function withNats<T>(values: Record<string, unknown>, io: Io, fn: (bus: Bus, subjects: Subjects) => Promise<T>): Promise<T> {
  const { servers, source } = natsSource(values, io.env);
  let nc: NatsConnection;
  // the NATS client loads when a command connects, not with the module graph (fast --help)
  const { connect } = require("@nats-io/transport-node") as typeof import("@nats-io/transport-node");
  const { connectAuth, isAuthFailure, natsBus } = require("../bus/nats") as typeof import("../bus/nats");
  // credential files are read before connecting; an unreadable one is named (nats_credentials_invalid)
  const auth = connectAuth(servers, credentialsFromFlags(values, io.env));
  const secrets = [...secretsOf(servers), ...auth.secrets];
  try {
    nc = await connect({ servers, ...(auth.options as Record<string, unknown>), timeout: 3000, name: "capacity-agent cli" });
  } catch (err) {
    if (isAuthFailure(err)) {
      throw new NatsUnauthorized(redact(`NATS at ${servers.join(", ")} refused the credentials: ${(err as Error).message} (give --nats-nkey FILE, --nats-creds FILE or --nats-user with --nats-password-file; docs/bus-security.md)`, secrets));
    }
    const hint = source === "the default" ? "is an agent running? pass --nats URL or set CAPACITY_AGENT_NATS" : source === "--nats" ? "check the URL" : `the URL came from ${source}; check it or pass --nats URL`;
    throw new NatsUnavailable(redact(`cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message} (${hint})`, secrets));
  }
  try {
    return await fn(natsBus(nc), new Subjects(io.env.CAPACITY_AGENT_SUBJECT_PREFIX ?? "tfgrid.v1"));
  } finally {
    await nc.close().catch(() => undefined);
  }
}

export async function withNodeClient<T>(values: Record<string, unknown>, io: Io, fn: (client: NodeClient, bus: Bus, subjects: Subjects) => Promise<T>): Promise<T> {
  return withNats(values, io, (bus, subjects) => fn(new NodeClient(bus, subjects), bus, subjects));
}

/**
 * The bus credentials of a long-running command's flags and environment, read once so that every
 * secret in their files (and in the server URLs) is known to the log redaction. Undefined when
 * they cannot be read: the error is printed (`[code] message`) and the command exits 1.
 */
export function busCredentials(command: string, values: Record<string, unknown>, io: Io, servers: readonly string[]): { credentials: BusCredentials; secrets: string[] } | undefined {
  try {
    const credentials = credentialsFromFlags(values, io.env);
    return { credentials, secrets: [...secretsOf(servers), ...loadCredentials(credentials).secrets] };
  } catch (err) {
    if (!(err instanceof BusAuthError)) throw err;
    io.err(`capacity-agent ${command}: [${err.code}] ${err.message}`);
    return undefined;
  }
}
