import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The ids the chain assigned to this node, kept in the agent's data dir (chain-ids.json) so a
 * restart while the chain is away serves under the same node id.
 */
export const CHAIN_IDS_FILE = "chain-ids.json";

export interface SavedChainIds {
  nodeId: number;
  twinId: number;
  farmId: number;
}

function id(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 0xffffffff;
}

/** The saved ids; undefined when there are none. A file that is not what this module wrote throws (the agent does not start). */
export function readChainIds(dataDir: string): SavedChainIds | undefined {
  const file = path.join(dataDir, CHAIN_IDS_FILE);
  if (!fs.existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}); delete it to learn the ids from the chain again`);
  }
  const r = raw as Partial<SavedChainIds> | null;
  if (!r || !id(r.nodeId) || !id(r.twinId) || !id(r.farmId)) throw new Error(`${file} does not hold {"nodeId","twinId","farmId"} as ids from 1 to 4294967295; delete it to learn the ids from the chain again`);
  return { nodeId: r.nodeId, twinId: r.twinId, farmId: r.farmId };
}

/** Save the ids (atomically: a crash leaves the old file or the new one). */
export function writeChainIds(dataDir: string, ids: SavedChainIds): void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, CHAIN_IDS_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(ids) + "\n");
  fs.renameSync(tmp, file);
}
