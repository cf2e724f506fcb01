import { parseArgs, type ParseArgsConfig } from "node:util";
import { resolveNatsServers } from "../bus/url-file";
import { NATS_AUTH_FLAGS } from "../bus/auth";
import { AgentError } from "../errors";

/** Exit codes: 0 ok, 1 refused or failed, 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

export class UsageError extends AgentError<"usage"> {
  constructor(message: string) {
    super("usage", message);
  }
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** aborted on SIGINT/SIGTERM for long-running commands */
  signal: AbortSignal;
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

export interface Command {
  name: string;
  /** usage lines and option descriptions shown by --help */
  help: string;
  options: Options;
  /** sub-commands like `keys new`: positional words allowed */
  positionals?: boolean;
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }, io: Io): Promise<number>;
}

export function parse(cmd: Command, argv: string[]): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: cmd.options, strict: true, allowPositionals: cmd.positionals ?? false });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Read a required string flag. */
export function req(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

/** Read an integer flag (a positive id unless min says otherwise). */
export function intFlag(values: Record<string, unknown>, name: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
  const v = values[name];
  if (v === undefined) {
    if (opts.required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  const min = opts.min ?? 1;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`--${name} expects an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** --nats and the credential and TLS flags (bus/auth.ts) of every command that connects to NATS */
export const NATS_OPTION = { nats: { type: "string" as const }, ...NATS_AUTH_FLAGS };

/** The --help lines of the credential flags (docs/bus-security.md). */
export const NATS_AUTH_HELP = `NATS credentials and TLS (docs/bus-security.md; one way to authenticate at a time; each flag also
reads CAPACITY_AGENT_<FLAG>, e.g. CAPACITY_AGENT_NATS_NKEY; secrets are read from files, or from
CAPACITY_AGENT_NATS_PASSWORD / CAPACITY_AGENT_NATS_TOKEN, and never printed):
  --nats-nkey FILE           user nkey seed file (scripts/bus-config writes them)
  --nats-creds FILE          NATS creds file (user JWT and seed, decentralised auth)
  --nats-user NAME           user name; the password from --nats-password-file FILE
  --nats-token-file FILE     a token
  --nats-ca FILE             CA certificate(s) that sign the server's TLS certificate (turns TLS on)
  --nats-cert FILE           client TLS certificate; --nats-key FILE its private key
  --nats-inbox-prefix P      reply inbox prefix this user may read (_INBOX.<user>; scripts/bus-config)`;
export const JSON_OPTION = { json: { type: "boolean" as const } };

/** --nats, $CAPACITY_AGENT_NATS, the nats.url of a local agent's embedded server, or the default. */
export function natsServers(values: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  return natsSource(values, env).servers;
}

/** The servers and where they came from (said when the connection fails). */
export function natsSource(values: Record<string, unknown>, env: NodeJS.ProcessEnv): { servers: string[]; source: string } {
  return resolveNatsServers(values.nats as string | undefined, env);
}

/** A command's --help text; commands that connect to NATS get the credential flags' lines. */
export function helpOf(cmd: Command): string {
  return cmd.options["nats-nkey"] && !cmd.help.includes(NATS_AUTH_HELP) ? `${cmd.help}\n${NATS_AUTH_HELP}` : cmd.help;
}
