import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, helpOf, parse, type Io } from "./framework";
import { COMMANDS } from "./commands";
import { AGENT_VERSION } from "../version";
import { redact, secretsOf } from "../log/redact";

export { COMMANDS };

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "capacity-agent: node-local capacity planning for the ThreeFold Grid",
    "",
    "usage: capacity-agent <command> [options]   (capacity-agent <command> --help for its options)",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "  --version, -v, version  print the agent version",
    "",
    "exit codes: 0 ok, 1 refused or failed, 2 usage error",
  ].join("\n");
}

/** The NATS URLs named on the command line (--nats X, --nats=X) and in $CAPACITY_AGENT_NATS. */
function natsArgs(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const urls: string[] = [];
  argv.forEach((a, i) => {
    if (a === "--nats" && i + 1 < argv.length) urls.push(argv[i + 1]);
    else if (a.startsWith("--nats=")) urls.push(a.slice("--nats=".length));
  });
  if (env.CAPACITY_AGENT_NATS) urls.push(env.CAPACITY_AGENT_NATS);
  return urls.flatMap((u) => u.split(","));
}

export async function main(argv: string[], io?: Partial<Io>): Promise<number> {
  const ac = new AbortController();
  const env = io?.env ?? process.env;
  // error lines may quote a NATS URL or a library error: never print the credentials in them
  const secrets = [...secretsOf(natsArgs(argv, env)), ...[env.CAPACITY_AGENT_NATS_PASSWORD, env.CAPACITY_AGENT_NATS_TOKEN].filter((s): s is string => !!s && s.length >= 3)];
  const writeErr = io?.err ?? ((s: string) => process.stderr.write(s.endsWith("\n") ? s : s + "\n"));
  const full: Io = {
    out: io?.out ?? ((s) => process.stdout.write(s.endsWith("\n") ? s : s + "\n")),
    err: (s) => writeErr(redact(s, secrets)),
    env,
    signal: io?.signal ?? ac.signal,
  };
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    full.out(usage());
    return name ? EXIT_OK : EXIT_USAGE;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    full.out(AGENT_VERSION);
    return EXIT_OK;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    full.err(`capacity-agent: unknown command "${name}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  const cmd = entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    full.out(helpOf(cmd));
    return EXIT_OK;
  }
  if (!io?.signal) {
    const stop = (): void => ac.abort();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  }
  try {
    return await cmd.run(parse(cmd, rest), full);
  } catch (err) {
    if (err instanceof UsageError) {
      full.err(`capacity-agent ${cmd.name}: ${err.message}\n\n${helpOf(cmd)}`);
      return EXIT_USAGE;
    }
    const e = err as { code?: string; message?: string };
    full.err(`capacity-agent ${cmd.name}: ${e.code ? `[${e.code}] ` : ""}${e.message ?? String(err)}`);
    return EXIT_FAIL;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`capacity-agent: internal error: ${(err as Error).stack ?? err}\n`);
      process.exit(EXIT_FAIL);
    },
  );
}
