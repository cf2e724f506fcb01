/**
 * Power drivers: how a node goes to standby and how it wakes a peer.
 * - `zos`: the node powers off (Zero-OS does that when its power target is Down); peers wake it
 *   with Wake-on-LAN, 10 magic packets 500 ms apart to the MAC in its announcement, as zos does.
 * - `command`: runs configured commands (`power.standbyCommand`, `power.wakeCommand` with the
 *   peer's node id and MAC in the environment as NODE_ID and NODE_MAC).
 * - `dev`: only marks the state (local grids): the agent keeps running, refuses deployments with
 *   `node_standby`, and is woken by a signed wake request over NATS.
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { PowerError } from "./errors";

export interface WakeTarget {
  nodeId: number;
  /** "aa:bb:cc:dd:ee:ff" from the node's announcement; empty when unknown */
  mac: string;
}

export interface PowerDriver {
  readonly kind: "zos" | "dev" | "command";
  /** Put this node to standby (after the agent marked itself standby and announced it). */
  standby(): Promise<void>;
  /** Wake a peer (the dev driver cannot: a dev node is woken by a wake request over NATS). */
  wake(target: WakeTarget): Promise<void>;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Whether `mac` is a MAC address as announcements carry it ("aa:bb:cc:dd:ee:ff"). */
export function isMac(mac: string): boolean {
  return MAC_RE.test(mac);
}

/** The Wake-on-LAN magic packet: 6 bytes 0xff, then the MAC 16 times (102 bytes). */
export function magicPacket(mac: string): Buffer {
  if (!isMac(mac)) throw new PowerError("no_mac", `not a MAC address: "${mac}" (expected aa:bb:cc:dd:ee:ff)`);
  const m = Buffer.from(mac.split(":").map((h) => parseInt(h, 16)));
  const out = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) m.copy(out, 6 + i * 6);
  return out;
}

export interface WolOptions {
  /** where the packets go (default 255.255.255.255, the local broadcast) */
  address: string;
  /** UDP port (default 9, discard) */
  port: number;
  /** packets per wake (default 10, as zos) */
  count: number;
  /** pause between packets, ms (default 500, as zos) */
  intervalMs: number;
}

export const WOL_DEFAULTS: WolOptions = { address: "255.255.255.255", port: 9, count: 10, intervalMs: 500 };

/** Send `count` magic packets to `mac`, `intervalMs` apart, over UDP to address:port. */
export async function sendWakeOnLan(mac: string, options: Partial<WolOptions> = {}, signal?: AbortSignal): Promise<void> {
  const o = { ...WOL_DEFAULTS, ...options };
  const packet = magicPacket(mac);
  const sock = createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(0, () => {
        sock.off("error", reject);
        resolve();
      });
    });
    if (o.address === "255.255.255.255" || o.address.endsWith(".255")) sock.setBroadcast(true);
    for (let i = 0; i < o.count; i++) {
      if (signal?.aborted) return;
      if (i > 0) await new Promise((r) => setTimeout(r, o.intervalMs));
      await new Promise<void>((resolve, reject) => sock.send(packet, o.port, o.address, (err) => (err ? reject(new PowerError("driver_failed", `wake-on-lan: could not send to ${o.address}:${o.port}`, { cause: err })) : resolve())));
    }
  } finally {
    sock.close();
  }
}

export class DevDriver implements PowerDriver {
  readonly kind = "dev" as const;
  async standby(): Promise<void> {}
  async wake(): Promise<void> {}
}

export class ZosDriver implements PowerDriver {
  readonly kind = "zos" as const;
  constructor(private readonly wol: Partial<WolOptions> = {}, private readonly powerOff: () => Promise<void> = async () => {}) {}
  standby(): Promise<void> {
    return this.powerOff();
  }
  async wake(t: WakeTarget): Promise<void> {
    if (!isMac(t.mac)) throw new PowerError("no_mac", `node ${t.nodeId} announced no MAC address; it cannot be woken by wake-on-lan`);
    await sendWakeOnLan(t.mac, this.wol);
  }
}

function run(cmd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("/bin/sh", ["-c", cmd], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, _out, stderr) => {
      if (err) reject(new PowerError("driver_failed", `power command failed: ${cmd}: ${String(stderr).trim().slice(0, 200) || err.message}`, { cause: err }));
      else resolve();
    });
  });
}

export class CommandDriver implements PowerDriver {
  readonly kind = "command" as const;
  constructor(private readonly commands: { standby: string; wake: string }) {}
  standby(): Promise<void> {
    return this.commands.standby ? run(this.commands.standby, {}) : Promise.resolve();
  }
  wake(t: WakeTarget): Promise<void> {
    return this.commands.wake ? run(this.commands.wake, { NODE_ID: String(t.nodeId), NODE_MAC: t.mac }) : Promise.resolve();
  }
}
