import * as fs from "node:fs";
import * as path from "node:path";
import type { ChainClient } from "../../agent/chain/client";
import { loadKeyFile, type Signer } from "../../agent/identity/keys";
import { cli } from "./agent";

/** The key file paths DIR/<name>.json, by name. */
export function keyFiles<N extends string>(dir: string, names: readonly N[]): Record<N, string> {
  return Object.fromEntries(names.map((n) => [n, path.join(dir, `${n}.json`)])) as Record<N, string>;
}

/** New key files DIR/<name>.json (`keys new`), by name; a [name, scheme] pair picks the scheme. */
export async function newKeys(dir: string, names: Array<string | [string, "ed25519" | "sr25519"]>): Promise<Record<string, string>> {
  const keys: Record<string, string> = keyFiles(dir, names.map((n) => (typeof n === "string" ? n : n[0])));
  for (const n of names) {
    const [name, type] = typeof n === "string" ? [n, undefined] : n;
    const r = await cli(["keys", "new", "--out", keys[name], ...(type ? ["--type", type] : [])]);
    if (r.code !== 0) throw new Error(`keys new ${name}: ${r.stderr}`);
  }
  return keys;
}

/** New twins DIR/twin<n>.json (`keys new`) registered on the chain stand-in; their chain ids and keys, in order. */
export async function chainTwins(dir: string, chain: ChainClient, count: number): Promise<Array<{ id: number; signer: Signer }>> {
  const keys = await newKeys(dir, Array.from({ length: count }, (_, i) => `twin${i + 1}`));
  const twins: Array<{ id: number; signer: Signer }> = [];
  for (const file of Object.values(keys)) {
    const signer = await loadKeyFile(file);
    const r = await chain.registerTwin(signer);
    if (!r.ok) throw new Error(`twin registration: [${r.code}] ${r.message}`);
    twins.push({ id: r.id, signer });
  }
  return twins;
}

/** DIR/registry.json binding node and twin ids to key files (`registry add --file`); its path. */
export async function registryFile(dir: string, entries: { nodes?: Array<{ id: number; farm: number; key: string }>; twins?: Array<{ id: number; key: string }> }): Promise<string> {
  const file = path.join(dir, "registry.json");
  const add = async (args: string[]): Promise<void> => {
    const r = await cli(["registry", "add", "--file", file, ...args]);
    if (r.code !== 0) throw new Error(`registry add ${args.join(" ")}: ${r.stderr}`);
  };
  for (const n of entries.nodes ?? []) await add(["--node", String(n.id), "--farm", String(n.farm), "--key", n.key]);
  for (const t of entries.twins ?? []) await add(["--twin", String(t.id), "--key", t.key]);
  return file;
}

/**
 * DIR/config.json with every disk of this machine classed SSD (virtual disks report rotational,
 * i.e. HDD, and VMs and zmounts need SSD), `hardware` added to that section and `rest` beside it;
 * its path.
 */
export async function ssdConfig(dir: string, hardware: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): Promise<string> {
  const hw = JSON.parse((await cli(["hardware", "--json"])).stdout) as { disks: Array<{ name: string }> };
  const file = path.join(dir, "config.json");
  fs.writeFileSync(file, JSON.stringify({ ...rest, hardware: { ...hardware, diskOverrides: Object.fromEntries(hw.disks.map((d) => [d.name, "ssd"])) } }));
  return file;
}

type Stoppable = { stop(): Promise<unknown> } | { close(): Promise<unknown> } | undefined;

/** Stop what a test file started, in the order given (clients first, the servers they use last); a list in its order. */
export async function stopAll(...things: Array<Stoppable | Stoppable[]>): Promise<void> {
  for (const t of things.flat()) {
    if (t === undefined || t === null) continue;
    if ("stop" in t) await t.stop();
    else await t.close();
  }
}
