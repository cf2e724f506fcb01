import * as fs from "node:fs";
import * as path from "node:path";
import { AgentError } from "../errors";

/**
 * When `run` starts its own nats-server on a free port, it writes the URL to `<dataDir>/nats.url`
 * (mode 0600) and removes it on stop, so that client commands started in the same directory find
 * that server without flags. Kept free of the NATS client so the CLI reads it cheaply.
 */
export const NATS_URL_FILE = "nats.url";
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
/** the data dir `run` uses by default, relative to where it runs */
export const DEFAULT_DATA_DIR = ".capacity-agent";

const URL_RE = /^nats:\/\/[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

export function writeNatsUrlFile(dataDir: string, url: string): string {
  const file = path.join(dataDir, NATS_URL_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, url + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
  return file;
}

/** Remove the file if it still names `url` (another agent may have written its own since). */
export function removeNatsUrlFile(file: string, url: string): void {
  try {
    if (fs.readFileSync(file, "utf8").trim() === url) fs.rmSync(file, { force: true });
  } catch {
    /* gone already */
  }
}

export class NatsUrlFileError extends AgentError<"invalid_nats_url_file"> {
  constructor(message: string) {
    super("invalid_nats_url_file", message);
  }
}

/** The URL in `file`, undefined when there is no such file; a file with anything else is an error. */
export function readNatsUrlFile(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new NatsUrlFileError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!URL_RE.test(text)) throw new NatsUrlFileError(`${file} holds no NATS URL (${JSON.stringify(text.slice(0, 60))}); delete it, or pass --nats URL`);
  return text;
}

/**
 * Where a client command's NATS servers come from, first that applies: --nats, $CAPACITY_AGENT_NATS,
 * the nats.url an agent with an embedded server wrote in $CAPACITY_AGENT_DATA or ./.capacity-agent
 * (relative to `cwd`), the default nats://127.0.0.1:4222.
 */
export function resolveNatsServers(flag: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): { servers: string[]; source: string } {
  const split = (v: string): string[] =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  if (flag !== undefined) return { servers: split(flag), source: "--nats" };
  if (env.CAPACITY_AGENT_NATS) return { servers: split(env.CAPACITY_AGENT_NATS), source: "$CAPACITY_AGENT_NATS" };
  const dirs = [...(env.CAPACITY_AGENT_DATA ? [path.resolve(cwd, env.CAPACITY_AGENT_DATA)] : []), path.resolve(cwd, DEFAULT_DATA_DIR)];
  for (const dir of dirs) {
    const file = path.join(dir, NATS_URL_FILE);
    const url = readNatsUrlFile(file);
    if (url) return { servers: [url], source: file };
  }
  return { servers: [DEFAULT_NATS_URL], source: "the default" };
}
