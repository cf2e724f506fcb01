import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort } from "../../agent/bus/nats";
import { fundAccounts, PLANCK_PER_TFT } from "../../agent/tfchain/dev";
import { cli, ROOT } from "./agent";

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

/** New key files (`keys new`, each with its scheme), their accounts funded with 1000 TFT on the chain at `chainUrl`. */
export async function fundedKeyFiles(chainUrl: string, files: Array<[string, "ed25519" | "sr25519"]>): Promise<void> {
  const addresses: string[] = [];
  for (const [file, type] of files) {
    const made = await cli(["keys", "new", "--out", file, "--type", type]);
    if (made.code !== 0) throw new Error(`keys new ${file}: ${made.stderr}`);
    addresses.push(JSON.parse(made.stdout).address as string);
  }
  await fundAccounts(chainUrl, addresses, 1000n * PLANCK_PER_TFT);
}

/** `twin register` on tfchain with `key`: the twin id. */
export async function registerTwin(chainUrl: string, key: string): Promise<number> {
  return (JSON.parse(await tfchainCli(["twin", "register", "--chain-url", chainUrl, "--key", key, "--json"])) as { twinId: number }).twinId;
}

/** `farm create` on tfchain by `key`'s twin, named `prefix`-<random>: the farm id. */
export async function createFarm(chainUrl: string, key: string, prefix: string): Promise<number> {
  return (JSON.parse(await tfchainCli(["farm", "create", "--chain-url", chainUrl, "--key", key, "--json", "--name", `${prefix}-${crypto.randomBytes(3).toString("hex")}`])) as { farmId: number }).farmId;
}

async function tfchainCli(args: string[]): Promise<string> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`${args.slice(0, 2).join(" ")}: ${r.stderr}`);
  return r.stdout;
}
