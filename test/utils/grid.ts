import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../../agent/bus/subjects";
import { queryPeers, type PeersView } from "../../agent/gossip/client";
import type { Registry } from "../../agent/registry/types";
import { ROOT, requireBuilt } from "./agent";
import { natsBus } from "../../agent/bus/nats";

export const LOCAL_GRID = path.join(ROOT, "dist", "scripts", "local-grid.js");

export interface LocalGridInfo {
  nats: string;
  dir: string;
  registry: string;
  config: string;
  twin: { id: number; key: string };
  sharedHardware: boolean;
  nodes: Array<{ nodeId: number; farmId: number; pid: number; data: string; log: string; key: string }>;
}

export interface LocalGrid {
  info: LocalGridInfo;
  child: ChildProcess;
  /** JSON log lines of agent `nodeId` so far */
  logs(nodeId: number): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Run scripts/local-grid (compiled) with --json and wait for its ready line. */
export async function startLocalGrid(args: string[], ms = 60_000): Promise<LocalGrid> {
  requireBuilt();
  if (!fs.existsSync(LOCAL_GRID)) throw new Error(`${LOCAL_GRID} is missing: run "npm run build"`);
  const child = spawn(process.execPath, [LOCAL_GRID, "--json", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const info = await new Promise<LocalGridInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`local-grid not ready within ${ms} ms: ${err}`)), ms);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes('"local_grid_ready"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as LocalGridInfo);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`local-grid exited (${code}): ${err}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    info,
    child,
    logs: (nodeId) => {
      const n = info.nodes.find((x) => x.nodeId === nodeId)!;
      return fs
        .readFileSync(n.log, "utf8")
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Poll `fn` until it returns a truthy value; fail with the last value after `ms`. */
export async function eventually<T>(fn: () => Promise<T> | T, ms: number, what: string, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(last)} ${lastErr ? String(lastErr) : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The view node `nodeId` holds, verified against `registry`. */
export function viewOf(nc: NatsConnection, nodeId: number, registry: Registry | null, timeoutMs = 2000): Promise<PeersView> {
  return queryPeers(natsBus(nc), new Subjects(), nodeId, { registry, timeoutMs });
}
