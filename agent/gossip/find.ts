/**
 * Find capacity: the client side of `<prefix>.capacity.find` and the ranking of the answers.
 *
 * Every node that can fit the request answers with its signed announcement. The client checks
 * each answer like a peer view would (size, decoding, signature bound to the registry's key for
 * that node, fresh timestamp), then that it really fits and is in the asked farm, keeps the
 * newest answer per node, and ranks them. With `query.deploymentId`, answers from nodes that hold
 * that deployment come back apart, as `holders` (whatever their room, farm or power).
 */
import type { Bus } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { fits, UNIT_NAMES, type UnitName, type Units } from "../capacity/units";
import { envelopeReady } from "../identity/envelope";
import type { Registry } from "../registry/types";
import { gather } from "./gather";
import { GOSSIP_DEFAULTS } from "./options";
import { checkFresh, checkOrigin, readAnnouncement, type DropReason } from "./view";
import { encodeFindRequest, type Announcement, type FindQuery } from "./wire";

/** Units a ranking looks at when the request names none. */
const DEFAULT_RANK_UNITS: UnitName[] = ["cru", "mru", "sru", "hru"];

/**
 * The ranking score of a node for a request: the share of the node's reservable capacity left
 * free, after placing the request, in its TIGHTEST unit among the units the request asks for (all
 * of cru, mru, sru, hru when it asks for none). 1 = empty node, 0 = the request fills a unit.
 */
export function rankScore(want: Units, a: Pick<Announcement, "free" | "reservable">): number {
  const asked = UNIT_NAMES.filter((u) => want[u] > 0);
  let score = Infinity;
  for (const u of asked.length ? asked : DEFAULT_RANK_UNITS) {
    if (a.reservable[u] <= 0) continue;
    score = Math.min(score, (a.free[u] - want[u]) / a.reservable[u]);
  }
  return score === Infinity ? 0 : score;
}

/**
 * Best first: the highest `rankScore` (spreads deployments: the node left with the most headroom
 * in the scarcest requested unit, which also makes losing a race to another deployer less likely);
 * ties go to more free memory, then the lower node id (so the order is stable).
 */
export function rankAnnouncements<T extends Pick<Announcement, "nodeId" | "free" | "reservable">>(want: Units, list: T[]): T[] {
  const scored = list.map((a) => ({ a, s: rankScore(want, a) }));
  scored.sort((x, y) => y.s - x.s || y.a.free.mru - x.a.free.mru || x.a.nodeId - y.a.nodeId);
  return scored.map((x) => x.a);
}

export type FindDropReason = DropReason | "no_fit" | "standby" | "wrong_deployment";

export interface FindOptions {
  /** verify answers against this registry; null: signature only (not bound to registered keys) */
  registry: Registry | null;
  /** stop after this long, ms (default 1500) */
  deadlineMs?: number;
  /** stop this long after the last answer, ms (default 300) */
  quietMs?: number;
  now?: () => number;
  signal?: AbortSignal;
  /** stop collecting after this many answers, valid or not (default 20000: a bound on what a flood of answers can make the client hold) */
  maxAnswers?: number;
}

export interface FindOutcome {
  /** fitting nodes, best first (nodes that said they hold the asked deployment are not among them) */
  found: Announcement[];
  /** nodes that said they hold `query.deploymentId` (verified like any answer), by node id */
  holders: Announcement[];
  /** with `query.wakeable`: fitting nodes in standby, best first (wake one to deploy there) */
  wakeable: Announcement[];
  /** answers thrown away, by reason */
  dropped: Partial<Record<FindDropReason, number>>;
  /** false when no registry was given: signatures were checked, key bindings were not */
  boundToRegistry: boolean;
}

export const FIND_DEFAULTS = { deadlineMs: 1500, quietMs: 300, maxAnswers: 20_000 };

/** Ask the grid (or one farm) for nodes that fit `query.want`; verify, de-duplicate and rank the answers. */
export async function findCapacity(bus: Bus, subjects: Subjects, query: FindQuery, opts: FindOptions): Promise<FindOutcome> {
  const now = opts.now ?? Date.now;
  const best = new Map<number, Announcement>();
  const holders = new Map<number, Announcement>();
  const sleeping = new Map<number, Announcement>();
  const dropped: Partial<Record<FindDropReason, number>> = {};
  const count = (r: FindDropReason): void => {
    dropped[r] = (dropped[r] ?? 0) + 1;
  };
  const rules = { expiryHeartbeats: GOSSIP_DEFAULTS.expiryHeartbeats, maxClockSkewMs: GOSSIP_DEFAULTS.maxClockSkewMs };
  const pending: Array<Promise<void>> = [];
  let stopped = false;
  const consider = async (data: Uint8Array, stop: () => void): Promise<void> => {
    await envelopeReady(data, { maxBytes: GOSSIP_DEFAULTS.maxAnnouncementBytes });
    const read = readAnnouncement(data, GOSSIP_DEFAULTS.maxAnnouncementBytes);
    if (!read.ok) return count(read.refusal.reason);
    const r = read.value;
    const a = r.announcement;
    const record = opts.registry ? await opts.registry.node(a.nodeId) : null;
    const bad = checkOrigin(r, record) ?? checkFresh(a, now(), rules);
    if (bad) return count(bad.reason);
    if (a.holds) {
      // only an answer about the asked id counts; a node holding it answers whatever its room
      if (!query.deploymentId || a.holds.id !== query.deploymentId) return count("wrong_deployment");
      const had = holders.get(a.nodeId);
      if (!had || had.sequence < a.sequence) holders.set(a.nodeId, a);
      best.delete(a.nodeId);
      return;
    }
    if (holders.has(a.nodeId)) return count("duplicate");
    if (query.farmId && a.farmId !== query.farmId) return count("wrong_farm");
    if (a.power !== "up" && !query.wakeable) return count("standby");
    if (!fits(query.want, a.free)) return count("no_fit");
    if (a.power !== "up") {
      const had = sleeping.get(a.nodeId);
      if (!had || had.sequence < a.sequence) sleeping.set(a.nodeId, a);
      return;
    }
    const seen = best.get(a.nodeId);
    if (seen && seen.sequence >= a.sequence) return count("duplicate");
    best.set(a.nodeId, a);
    if (query.limit && best.size >= query.limit && !stopped) {
      stopped = true;
      stop();
    }
  };
  await gather(bus, subjects.capacityFind(), encodeFindRequest(query), { deadlineMs: opts.deadlineMs ?? FIND_DEFAULTS.deadlineMs, quietMs: opts.quietMs ?? FIND_DEFAULTS.quietMs, signal: opts.signal }, (data, stop) => {
    if (pending.length >= (opts.maxAnswers ?? FIND_DEFAULTS.maxAnswers)) return stop();
    pending.push(consider(data, stop));
  });
  await Promise.all(pending);
  let found = rankAnnouncements(query.want, [...best.values()]);
  if (query.limit) found = found.slice(0, query.limit);
  const wakeable = rankAnnouncements(query.want, [...sleeping.values()].filter((a) => !best.has(a.nodeId)));
  return { found, holders: [...holders.values()].sort((x, y) => x.nodeId - y.nodeId), wakeable, dropped, boundToRegistry: opts.registry !== null };
}
