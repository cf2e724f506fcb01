import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findNatsServer, freePort, natsAnswers } from "../../agent/bus/nats";

export interface NatsServerHandle {
  url: string;
  port: number;
  clusterPort?: number;
  child: ChildProcess;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export function natsBin(): string {
  const bin = findNatsServer();
  if (!bin) throw new Error("nats-server binary not found: install it (apt-get install nats-server) or set NATS_SERVER_BIN");
  return bin;
}

async function waitFor(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Start a real nats-server on a free loopback port; optional cluster routes. */
export async function startNats(opts: { cluster?: { name: string; port: number; routes: number[] }; jetstream?: boolean } = {}): Promise<NatsServerHandle> {
  const port = await freePort();
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nats-"));
  if (opts.jetstream) args.push("-js", "-sd", dir);
  if (opts.cluster) {
    args.push("--cluster_name", opts.cluster.name, "--cluster", `nats://127.0.0.1:${opts.cluster.port}`);
    if (opts.cluster.routes.length) args.push("--routes", opts.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(","));
  }
  const handle = await spawnNats(args, `nats://127.0.0.1:${port}`, `nats-server on ${port}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return { ...handle, port, clusterPort: opts.cluster?.port };
}

/** A nats-server from a configuration file (scripts/bus-config writes them) that serves at `url`; resolves once it answers. */
export async function startNatsWithConfig(configFile: string, url: string): Promise<NatsServerHandle> {
  return { ...(await spawnNats(["-c", configFile], url, `nats-server of ${configFile}`)), port: Number(new URL(url).port) };
}

async function spawnNats(args: string[], url: string, what: string, onExit: () => void = () => undefined): Promise<Omit<NatsServerHandle, "port" | "clusterPort">> {
  const child = spawn(natsBin(), args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`);
    return natsAnswers(url, 300);
  }, 10_000, what);
  const stopWith = (sig: NodeJS.Signals) => (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => {
        onExit();
        resolve();
      });
      child.kill(sig);
    });
  return { url, child, stop: stopWith("SIGTERM"), kill: stopWith("SIGKILL") };
}

/** A three-server cluster on loopback (for failover tests). */
export async function startNatsCluster(): Promise<NatsServerHandle[]> {
  const cports = [await freePort(), await freePort(), await freePort()];
  const servers: NatsServerHandle[] = [];
  for (let i = 0; i < 3; i++) {
    servers.push(await startNats({ cluster: { name: "test", port: cports[i], routes: cports.filter((_, j) => j !== i) } }));
  }
  return servers;
}

export { waitFor };
