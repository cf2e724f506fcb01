import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "..", "..");
export const CLI = path.join(ROOT, "dist", "agent", "cli", "main.js");

/** The compiled CLI must exist (npm test builds it first in pretest). */
export function requireBuilt(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (npm test does it in pretest)`);
}

export function tmpDir(prefix = "ca-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI as a child process and collect its output. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  requireBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], cwd });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function cliSync(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  requireBuilt();
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface AgentProcess {
  child: ChildProcess;
  /** every JSON log line so far */
  logs: Array<Record<string, unknown>>;
  /** every stdout line so far, as written */
  lines: string[];
  waitForEvent(event: string, ms?: number, pred?: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

/** Start `capacity-agent run` as a real process; resolves once it logs agent_started. */
export function startAgent(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<AgentProcess> {
  return startDaemon(["run", ...args], "agent_started", env, cwd);
}

/** Start `capacity-agent chain` (the chain stand-in) as a real process; resolves once it logs chain_started. */
export function startChain(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
  return startDaemon(["chain", ...args], "chain_started", env);
}

/** Call `fn` with each whole line `stream` writes, and the line parsed when it is JSON (a log line). */
export function onLines(stream: NodeJS.ReadableStream, fn: (line: string, json: Record<string, unknown> | undefined) => void): void {
  let buf = "";
  stream.on("data", (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(line) as Record<string, unknown>;
      } catch {
        /* not JSON */
      }
      fn(line, json);
    }
  });
}

/** Start a long-running CLI command that logs JSON lines; resolves once it logs `readyEvent`. */
export async function startDaemon(argv: string[], readyEvent: string, env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<AgentProcess> {
  requireBuilt();
  const child = spawn(process.execPath, [CLI, ...argv], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], cwd });
  const logs: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  let stderr = "";
  const waiters: Array<() => void> = [];
  onLines(child.stdout!, (line, json) => {
    lines.push(line);
    if (json) logs.push(json);
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const waitForEvent = (event: string, ms = 20_000, pred: (l: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = logs.find((l) => l.event === event && pred(l));
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
          return true;
        }
        if (child.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`agent exited (${child.exitCode}) before ${event}: ${stderr}\n${JSON.stringify(logs.slice(-5))}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms; stderr: ${stderr}; last logs: ${JSON.stringify(logs.slice(-5))}`)), ms);
      const loop = (): void => {
        if (!check()) waiters.push(loop);
      };
      child.once("exit", () => check());
      loop();
    });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitForEvent(readyEvent);
  return {
    child,
    logs,
    lines,
    waitForEvent,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
