import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort } from "../../agent/bus/nats";
import { ROOT } from "./agent";

export const DEV_SCRIPT = path.join(ROOT, "dist", "scripts", "tfchain-dev.js");

/** The raw tfchain spec the tests run ($TFCHAIN_SPEC or ../shared/tfchain next to the repository). */
export function tfchainSpec(): string {
  return path.resolve(process.env.TFCHAIN_SPEC ?? path.join(ROOT, "..", "shared", "tfchain", "devnet-spec49.chainSpecRaw.json"));
}

/** The metadata of a later tfchain (spec 132) the encoding test checks calls against. */
export function tfchainMetadata132(): string {
  return path.resolve(process.env.TFCHAIN_METADATA ?? path.join(path.dirname(tfchainSpec()), "metadata-2023-04.scale"));
}

/**
 * `describe` when the file exists, else `describe.skip` with a message saying what is missing
 * (the runtime is test data kept outside the repository; see docs/tfchain.md).
 */
export function describeWith(file: string, what: string): jest.Describe {
  if (fs.existsSync(file)) return describe;
  process.stderr.write(`SKIPPED: ${what} needs ${file} (absent): put the tfchain test data there or set TFCHAIN_SPEC/TFCHAIN_METADATA (docs/tfchain.md)\n`);
  return describe.skip;
}

export interface TfchainHandle {
  url: string;
  port: number;
  db?: string;
  child: ChildProcess;
  /** SIGTERM, wait for exit */
  stop(): Promise<number | null>;
  /** SIGKILL, wait for exit */
  kill(): Promise<void>;
}

/** Start scripts/tfchain-dev (compiled) on a free port; resolves with its URL once it prints it. */
export async function startTfchain(opts: { db?: string; port?: number; timeoutMs?: number } = {}): Promise<TfchainHandle> {
  if (!fs.existsSync(DEV_SCRIPT)) throw new Error(`${DEV_SCRIPT} is missing: run "npm run build"`);
  const port = opts.port ?? (await freePort());
  const args = [DEV_SCRIPT, "--spec", tfchainSpec(), "--port", String(port)];
  if (opts.db) args.push("--db", opts.db);
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tfchain-dev printed no URL within ${opts.timeoutMs ?? 180_000} ms:\n${stderr}`));
    }, opts.timeoutMs ?? 180_000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = /^(ws:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tfchain-dev exited (${code}) before printing its URL:\n${stderr}`));
    });
  });
  const waitExit = (sig: NodeJS.Signals): Promise<number | null> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      child.once("exit", (code) => resolve(code));
      child.kill(sig);
    });
  return { url, port, db: opts.db, child, stop: () => waitExit("SIGTERM"), kill: async () => void (await waitExit("SIGKILL")) };
}
