/**
 * The rules of the peer view, pure: no I/O, no timers, the clock passed in as `now`.
 *
 * An announcement enters the view only when, in this order:
 *   1. its envelope is at most `maxBytes`                       else too_large
 *   2. envelope and payload decode and are well formed          else malformed
 *   3. the subject it came on names the same farm and node      else wrong_subject
 *   4. the registry knows the node id                           else unknown_node
 *   5. the signer is the key (and scheme) the registry binds to
 *      that node id, and the signature verifies                 else bad_signature
 *   6. the farm is the one the registry gives the node          else wrong_farm
 *   7. its timestamp is within [now - window - skew, now + skew],
 *      window = expiryHeartbeats x its own heartbeat            else stale
 *   8. its sequence is higher than the highest kept for the node
 *      (equal and byte-identical: duplicate, else replay)       else replay / duplicate
 *   9. a node new to the view finds room: its farm holds fewer
 *      than maxPeersPerFarm peers and the view fewer than maxPeers else view_full
 * A peer leaves the view when `expiryHeartbeats` of ITS OWN heartbeat intervals pass (by the local
 * clock, from when the announcement was received) without a newer announcement. The highest
 * sequence of a node is remembered after it expires, so an old announcement cannot bring it back.
 */
import { DOMAIN } from "../identity/domains";
import { sameKey } from "../identity/envelope";
import { schemeFromWire, verifyDomain } from "../identity/keys";
import type { NodeRecord } from "../registry/types";
import { ok, refused, type Result } from "../result";
import { decode, WireError } from "../wire/codec";
import { decodeAnnouncementPayload, type Announcement, type Envelope } from "./wire";

/** Why an announcement was not kept. Stable: reused as the metric label and the log `reason`. */
export const DROP_REASONS = ["too_large", "malformed", "wrong_subject", "unknown_node", "bad_signature", "wrong_farm", "stale", "replay", "duplicate", "view_full"] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface Drop {
  reason: DropReason;
  /** a short human explanation for the debug log (no payload bytes) */
  detail: string;
  /** the node the message claimed to be, when it could be read */
  nodeId?: number;
}

/** A decoded, not yet trusted announcement. */
export interface Received {
  announcement: Announcement;
  envelope: Envelope;
}

export interface ViewRules {
  expiryHeartbeats: number;
  maxClockSkewMs: number;
  maxBytes: number;
  /** most peers kept per farm (default: no limit) */
  maxPeersPerFarm?: number;
  /** most peers kept in all (default: no limit); the highest sequences remembered are bounded to twice this */
  maxPeers?: number;
}

/** What the subject of a gossip message claims. */
export interface Claim {
  farmId: number;
  nodeId: number;
}

function drop(reason: DropReason, detail: string, nodeId?: number): Drop {
  return { reason, detail, ...(nodeId === undefined ? {} : { nodeId }) };
}

/** Steps 1-2: size, envelope, payload. No signature work yet. */
export function readAnnouncement(bytes: Uint8Array, maxBytes: number): Result<Received, Drop> {
  if (bytes.length > maxBytes) return refused(drop("too_large", `${bytes.length} bytes, limit ${maxBytes}`));
  let env: { payload: Uint8Array; signer: Uint8Array; scheme: number; signature: Uint8Array };
  let announcement: Announcement;
  try {
    env = decode("Signed", bytes, { maxBytes, maxRepeated: 16 });
    announcement = decodeAnnouncementPayload(env.payload, maxBytes);
  } catch (err) {
    if (err instanceof WireError) return refused(drop(err.code, err.message));
    throw err;
  }
  const scheme = schemeFromWire(env.scheme);
  if (!scheme) return refused(drop("malformed", `unknown signature scheme ${env.scheme}`, announcement.nodeId));
  if (env.signer.length !== 32 || env.signature.length !== 64) return refused(drop("malformed", "signer must be 32 bytes and signature 64 bytes", announcement.nodeId));
  return ok({ announcement, envelope: { payload: env.payload, signer: env.signer, scheme, signature: env.signature } });
}

/**
 * Read the claim of a gossip subject `<prefix>.capacity.<farm>.<node>`. Returns "ignore" for
 * subjects on the same wildcard that are not announcements (`capacity.sync.<farm>`, which a
 * grid-wide `capacity.*.*` subscription also matches), and a drop for anything else malformed.
 */
export function claimOf(subject: string, prefix: string): Claim | "ignore" | Drop {
  const head = `${prefix}.capacity.`;
  if (!subject.startsWith(head)) return drop("wrong_subject", `not a capacity subject: ${subject}`);
  const [farm, node, ...rest] = subject.slice(head.length).split(".");
  if (farm === "sync" || farm === "find") return "ignore";
  if (rest.length || !/^\d{1,10}$/.test(farm ?? "") || !/^\d{1,10}$/.test(node ?? "")) return drop("wrong_subject", `not <farm>.<node>: ${subject}`);
  return { farmId: Number(farm), nodeId: Number(node) };
}

/**
 * Steps 4-6: is this announcement really from the node it names? `record` is the registry's entry
 * for that node id (undefined: not registered). With `record === null` the caller has no
 * registry: only the signature itself is checked (valid, but not bound to a registered key).
 */
export function checkOrigin(r: Received, record: NodeRecord | undefined | null): Drop | null {
  const a = r.announcement;
  const e = r.envelope;
  if (record === undefined) return drop("unknown_node", `node ${a.nodeId} is not in the registry`, a.nodeId);
  if (record !== null && (!sameKey(record.publicKey, e.signer) || record.scheme !== e.scheme)) {
    return drop("bad_signature", `not signed by the key the registry binds to node ${a.nodeId}`, a.nodeId);
  }
  if (!verifyDomain(e.scheme, e.signer, DOMAIN.CapacityAnnouncement, e.payload, e.signature)) {
    return drop("bad_signature", "the signature does not verify", a.nodeId);
  }
  if (record !== null && record.farmId !== a.farmId) return drop("wrong_farm", `node ${a.nodeId} is in farm ${record.farmId}, not ${a.farmId}`, a.nodeId);
  return null;
}

/** Step 7: the announcement's timestamp must be within the window its own heartbeat allows. */
export function checkFresh(a: Announcement, now: number, rules: Pick<ViewRules, "expiryHeartbeats" | "maxClockSkewMs">): Drop | null {
  const oldest = now - rules.expiryHeartbeats * a.heartbeatMs - rules.maxClockSkewMs;
  const newest = now + rules.maxClockSkewMs;
  if (a.timestampMs < oldest) return drop("stale", `timestamp ${now - a.timestampMs} ms old, older than its expiry window`, a.nodeId);
  if (a.timestampMs > newest) return drop("stale", `timestamp ${a.timestampMs - now} ms in the future`, a.nodeId);
  return null;
}

/** A peer as the view keeps it. */
export interface Peer {
  announcement: Announcement;
  envelope: Envelope;
  /** local clock when it was received */
  receivedAt: number;
}

/** Kept (`joined`: the node is new to the view) or dropped. */
export type Verdict = Result<{ peer: Peer; joined: boolean }, Drop>;

export interface Offer {
  received: Received;
  /** the subject's claim (gossip); absent for sync answers */
  claim?: Claim;
  /** registry entry of the claimed node (undefined: unknown) */
  record: NodeRecord | undefined;
}

/** Steps 3-8 over a view's state; returns the verdict and changes nothing. */
export function judge(offer: Offer, kept: Peer | undefined, highWater: number | undefined, now: number, rules: ViewRules): Verdict {
  const { received, claim, record } = offer;
  const a = received.announcement;
  if (claim && (claim.nodeId !== a.nodeId || claim.farmId !== a.farmId)) {
    return refused(drop("wrong_subject", `subject names farm ${claim.farmId} node ${claim.nodeId}, the announcement farm ${a.farmId} node ${a.nodeId}`, a.nodeId));
  }
  const bad = checkOrigin(received, record) ?? checkFresh(a, now, rules);
  if (bad) return refused(bad);
  const high = Math.max(highWater ?? 0, kept?.announcement.sequence ?? 0);
  if (a.sequence <= high) {
    if (kept && a.sequence === kept.announcement.sequence && sameKey(kept.envelope.signature, received.envelope.signature)) {
      return refused(drop("duplicate", `sequence ${a.sequence} is the one kept`, a.nodeId));
    }
    return refused(drop("replay", `sequence ${a.sequence} is not above ${high}`, a.nodeId));
  }
  return ok({ peer: { announcement: a, envelope: received.envelope, receivedAt: now }, joined: kept === undefined });
}

/** True when `peer` has missed `expiryHeartbeats` of its own heartbeats at `now`. */
export function isExpired(peer: Peer, now: number, expiryHeartbeats: number): boolean {
  return now - peer.receivedAt > expiryHeartbeats * peer.announcement.heartbeatMs;
}

/**
 * The view: the latest kept announcement per node and the highest sequence ever kept per node.
 * State only; every decision is `judge`/`isExpired`, and the clock is always passed in.
 */
export class PeerTable {
  private readonly peers = new Map<number, Peer>();
  private readonly highWater = new Map<number, number>();
  private readonly perFarm = new Map<number, number>();

  constructor(readonly rules: ViewRules) {}

  /** Judge an offer and keep it when accepted. */
  offer(offer: Offer, now: number): Verdict {
    const id = offer.received.announcement.nodeId;
    const kept = this.peers.get(id);
    const v = judge(offer, kept, this.highWater.get(id), now, this.rules);
    if (!v.ok) return v;
    const { peer } = v.value;
    const farm = peer.announcement.farmId;
    if (!kept || kept.announcement.farmId !== farm) {
      if ((this.perFarm.get(farm) ?? 0) >= (this.rules.maxPeersPerFarm ?? Infinity)) return refused(drop("view_full", `farm ${farm} already has ${this.rules.maxPeersPerFarm} peers in the view`, id));
      if (!kept && this.peers.size >= (this.rules.maxPeers ?? Infinity)) return refused(drop("view_full", `the view already holds ${this.rules.maxPeers} peers`, id));
      if (kept) this.countFarm(kept.announcement.farmId, -1);
      this.countFarm(farm, 1);
    }
    this.peers.set(id, peer);
    this.highWater.delete(id); // re-insert: Map order is the eviction order
    this.highWater.set(id, peer.announcement.sequence);
    this.trimHighWater();
    return v;
  }

  private countFarm(farm: number, by: number): void {
    const n = (this.perFarm.get(farm) ?? 0) + by;
    if (n > 0) this.perFarm.set(farm, n);
    else this.perFarm.delete(farm);
  }

  /** Forget the highest sequences of the longest-gone nodes beyond 2 x maxPeers (live peers are kept). */
  private trimHighWater(): void {
    const max = 2 * (this.rules.maxPeers ?? Infinity);
    if (this.highWater.size <= max) return;
    for (const id of this.highWater.keys()) {
      if (this.highWater.size <= max) break;
      if (!this.peers.has(id)) this.highWater.delete(id);
    }
  }

  /** Peers kept for `farm`. */
  farmSize(farm: number): number {
    return this.perFarm.get(farm) ?? 0;
  }

  /** Remove and return the peers that expired at `now`. */
  expire(now: number): Peer[] {
    const gone: Peer[] = [];
    for (const [id, p] of this.peers) {
      if (isExpired(p, now, this.rules.expiryHeartbeats)) {
        this.peers.delete(id);
        this.countFarm(p.announcement.farmId, -1);
        gone.push(p);
      }
    }
    return gone;
  }

  get(nodeId: number): Peer | undefined {
    return this.peers.get(nodeId);
  }

  /** The live peers by node id (callers sweep with `expire(now)` first). */
  list(): Peer[] {
    return [...this.peers.values()].sort((a, b) => a.announcement.nodeId - b.announcement.nodeId);
  }

  get size(): number {
    return this.peers.size;
  }
}
