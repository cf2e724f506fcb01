import { GossipError } from "./errors";
import { intInRange } from "../util/ints";

/** Options of the gossip module; `parseGossipOptions` checks each one and names the bad field. */
export interface GossipOptions {
  nodeId: number;
  farmId: number;
  twinId: number;
  /** heartbeat: the announcer publishes at least this often, ms (default 30000; `run --heartbeat`) */
  heartbeatMs: number;
  /** "farm": listen to the own farm's announcements only (default); "grid": every farm */
  scope: "farm" | "grid";
  /**
   * coalescing window, ms (default 75): the first change after a quiet period is published at
   * once; changes within this long after a change publish go out together at the window's end, so
   * every change is on the wire within 100 ms and a burst is about one message per window
   */
  debounceMs: number;
  /** a peer leaves the view after this many of ITS OWN heartbeat intervals without a message (default 3) */
  expiryHeartbeats: number;
  /**
   * clock difference tolerated between nodes, ms (default 30000). An announcement whose timestamp
   * is older than its expiry window plus this, or newer than now plus this, is dropped as `stale`.
   */
  maxClockSkewMs: number;
  /** largest announcement envelope accepted, bytes (default 4096); larger ones are `too_large` */
  maxAnnouncementBytes: number;
  /** catch-up: start() goes on once no sync answer came for this long, ms (default 150) */
  syncQuietMs: number;
  /** catch-up: sync answers are taken (in the background) until this long after asking, ms (default 2000) */
  syncMaxMs: number;
  /** how often expired peers are swept out (reads also sweep), ms (default 500) */
  sweepMs: number;
  /** sequence numbers reserved in the store per write (default 1000) */
  sequenceBlock: number;
  /** most peers kept per farm; announcements of more new nodes are dropped as view_full (default 1000) */
  maxPeersPerFarm: number;
  /** most peers kept in all (default 20000) */
  maxPeers: number;
  /** find and sync requests answered per second per requester connection (default 20; burst twice that) */
  requestRate: number;
  /** find and sync requests answered per second in all; more are dropped unanswered (default 500) */
  answersPerSecond: number;
  /**
   * peers requests (a diagnostic read whose reply can be large) answered per second per requester
   * connection (default 50; burst twice that) and in all (default 100)
   */
  peersRate: number;
  peersPerSecond: number;
  /** announced for power management (docs/power.md): the MAC peers wake by wake-on-lan; a public config keeps the node up */
  mac?: string;
  publicConfig?: boolean;
}

export const GOSSIP_DEFAULTS: Omit<GossipOptions, "nodeId" | "farmId" | "twinId"> = {
  heartbeatMs: 30_000,
  scope: "farm",
  debounceMs: 75,
  expiryHeartbeats: 3,
  maxClockSkewMs: 30_000,
  maxAnnouncementBytes: 4096,
  syncQuietMs: 150,
  syncMaxMs: 2000,
  sweepMs: 500,
  sequenceBlock: 1000,
  maxPeersPerFarm: 1000,
  maxPeers: 20_000,
  requestRate: 20,
  answersPerSecond: 500,
  peersRate: 50,
  peersPerSecond: 100,
};

/** Smallest and largest heartbeat a node may announce (and peers accept), ms. */
export const HEARTBEAT_RANGE_MS: [number, number] = [100, 3_600_000];

const RANGES: Record<string, [number, number]> = {
  nodeId: [1, 0xffffffff],
  farmId: [1, 0xffffffff],
  twinId: [1, 0xffffffff],
  heartbeatMs: HEARTBEAT_RANGE_MS,
  debounceMs: [0, 100],
  expiryHeartbeats: [2, 100],
  maxClockSkewMs: [0, 86_400_000],
  maxAnnouncementBytes: [256, 1024 * 1024],
  syncQuietMs: [10, 60_000],
  syncMaxMs: [10, 60_000],
  sweepMs: [10, 60_000],
  sequenceBlock: [1, 1_000_000],
  maxPeersPerFarm: [1, 1_000_000],
  maxPeers: [1, 10_000_000],
  requestRate: [1, 1_000_000],
  answersPerSecond: [1, 1_000_000],
  peersRate: [1, 1_000_000],
  peersPerSecond: [1, 1_000_000],
};

export function parseGossipOptions(raw: Partial<GossipOptions> & { nodeId: number; farmId: number; twinId: number }): GossipOptions {
  const o = { ...GOSSIP_DEFAULTS, ...raw } as GossipOptions;
  for (const [field, [min, max]] of Object.entries(RANGES)) {
    const v = (o as unknown as Record<string, unknown>)[field];
    const r = intInRange(v, min, max);
    if (!r.ok) throw new GossipError("invalid_options", `gossip.${field}: ${r.problem}`, { field: `gossip.${field}` });
  }
  if (o.scope !== "farm" && o.scope !== "grid") throw new GossipError("invalid_options", `gossip.scope: expected "farm" or "grid"`, { field: "gossip.scope" });
  if (o.syncMaxMs < o.syncQuietMs) throw new GossipError("invalid_options", "gossip.syncMaxMs: must not be below gossip.syncQuietMs", { field: "gossip.syncMaxMs" });
  return o;
}

/** The bounds a configuration file may set (config.gossip.*). */
export type GossipBounds = Partial<Pick<GossipOptions, "maxPeersPerFarm" | "maxPeers" | "requestRate" | "answersPerSecond" | "peersRate" | "peersPerSecond">>;

/** Gossip options from the agent's configuration (config.gossip: heartbeatSeconds, scope and the bounds). */
export function gossipOptionsFrom(c: { nodeId: number; farmId: number; twinId: number; gossip: { heartbeatSeconds: number; scope: "farm" | "grid" } & GossipBounds }): GossipOptions {
  const { heartbeatSeconds, scope, ...bounds } = c.gossip;
  return parseGossipOptions({ nodeId: c.nodeId, farmId: c.farmId, twinId: c.twinId, heartbeatMs: Math.round(heartbeatSeconds * 1000), scope, ...bounds });
}
