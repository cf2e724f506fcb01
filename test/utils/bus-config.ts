import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { BusCredentials } from "../../agent/bus/auth";
import { connectAuth, freePort } from "../../agent/bus/nats";
import { ROOT } from "./agent";
import { startNatsWithConfig, type NatsServerHandle } from "./nats";

export const BUS_CONFIG = path.join(ROOT, "dist", "scripts", "bus-config.js");

/** A user of `scripts/bus-config --json`. */
export interface BusUser {
  name: string;
  kind: "node" | "deployer" | "chain";
  publicKey: string;
  seedFile: string;
  /** with --jwt */
  credsFile: string;
  configFile: string;
  inboxPrefix: string;
}

/** scripts/bus-config (compiled) writing into `out` with `args` (on a free port), and the nats-server of the configuration it wrote, started. */
export async function securedBus(out: string, args: string[]): Promise<{ url: string; users: Record<string, BusUser>; server: NatsServerHandle }> {
  const port = await freePort();
  const info = JSON.parse(execFileSync(process.execPath, [BUS_CONFIG, "--out", out, "--port", String(port), ...args, "--json"], { encoding: "utf8" })) as { url: string; serverConfig: string; users: BusUser[] };
  const server = await startNatsWithConfig(info.serverConfig, info.url);
  return { url: info.url, users: Object.fromEntries(info.users.map((u) => [u.name, u])), server };
}

/** A client connection made the way the agent makes its own, kept in `open`, with the errors the server sends it (permissions violations). */
export async function connectWatched(url: string, creds: BusCredentials, open: NatsConnection[]): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await connect({ servers: [url], ...(connectAuth([url], creds).options as object), timeout: 3000, maxReconnectAttempts: 0 });
  open.push(nc);
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(String((s as { error?: unknown }).error));
  })().catch(() => undefined);
  return { nc, errors };
}
