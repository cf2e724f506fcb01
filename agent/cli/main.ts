import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, parse, type Command, type Io } from "./framework";
import { hardwareCommand } from "./commands/hardware";
import { keysCommand } from "./commands/keys";
import { runCommand } from "./commands/run";
import { deployCommand } from "./commands/deploy";
import { deleteCommand } from "./commands/delete";
import { statusCommand } from "./commands/status";
import { registryCommand } from "./commands/registry";
import { findCommand } from "./commands/find";
import { peersCommand } from "./commands/peers";
import { chainCommand } from "./commands/chain";
import { proofsCommand } from "./commands/proofs";
import { twinCommand } from "./commands/twin";
import { farmCommand } from "./commands/farm";
import { chainInfoCommand } from "./commands/chain-info";
import { verifierCommand } from "./commands/verifier";
import { AGENT_VERSION } from "../version";

/** Every command of the CLI. Add a command: one file in commands/, one line here. */
export const COMMANDS: Command[] = [runCommand, hardwareCommand, keysCommand, deployCommand, deleteCommand, statusCommand, registryCommand, findCommand, peersCommand, proofsCommand, chainCommand, twinCommand, farmCommand, chainInfoCommand, verifierCommand];

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
    "exit codes: 0 ok, 1 refused or failed, 2 usage error",
  ].join("\n");
}

export async function main(argv: string[], io?: Partial<Io>): Promise<number> {
  const ac = new AbortController();
  const full: Io = {
    out: io?.out ?? ((s) => process.stdout.write(s.endsWith("\n") ? s : s + "\n")),
    err: io?.err ?? ((s) => process.stderr.write(s.endsWith("\n") ? s : s + "\n")),
    env: io?.env ?? process.env,
    signal: io?.signal ?? ac.signal,
  };
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    full.out(usage());
    return name ? EXIT_OK : EXIT_USAGE;
  }
  if (name === "--version") {
    full.out(AGENT_VERSION);
    return EXIT_OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    full.err(`capacity-agent: unknown command "${name}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    full.out(cmd.help);
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
      full.err(`capacity-agent ${cmd.name}: ${err.message}\n\n${cmd.help}`);
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
