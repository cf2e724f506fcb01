import type { Bus } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { DOMAIN } from "../identity/domains";
import { envelopeReady, open, sameKey } from "../identity/envelope";
import type { Registry } from "../registry/types";
import { decode, encode, toSafeNumber, WireError } from "../wire/codec";
import type { WirePeersReply } from "../wire/generated";
import { GossipError } from "./errors";
import { GOSSIP_DEFAULTS } from "./options";
import { checkOrigin, readAnnouncement } from "./view";
import type { Announcement } from "./wire";

export interface PeersView {
  nodeId: number;
  timestampMs: number;
  truncated: boolean;
  /** by node id */
  peers: Array<{ announcement: Announcement; ageMs: number }>;
  /** entries whose announcement did not verify (never expected from an honest node) */
  invalid: number;
  /** false when no registry was given: signatures were checked, key bindings were not */
  boundToRegistry: boolean;
}

const PEERS_LIMITS = { maxBytes: 64 * 1024 * 1024, maxRepeated: 1 << 20 };

/**
 * Ask node `nodeId` for its view (`<prefix>.node.<node>.peers`). The reply must be signed by that
 * node (by the registry's key for it when a registry is given) and every announcement in it must
 * carry a valid signature of the node it names.
 */
export async function queryPeers(bus: Bus, subjects: Subjects, nodeId: number, opts: { registry: Registry | null; timeoutMs?: number }): Promise<PeersView> {
  let data: Uint8Array;
  try {
    data = (await bus.request(subjects.nodePeers(nodeId), encode("PeersRequest", {}), { timeout: opts.timeoutMs ?? 5000 })).data;
  } catch (err) {
    throw new GossipError("node_unreachable", `node ${nodeId} did not answer (${(err as Error).message}); is its agent running and connected to this NATS?`, { cause: err });
  }
  await envelopeReady(data, PEERS_LIMITS);
  const o = open(data, DOMAIN.PeersReply, PEERS_LIMITS);
  if (!o.ok) throw new GossipError("bad_reply", `node ${nodeId}'s peers reply: ${o.refusal.message}`);
  if (opts.registry) {
    const rec = await opts.registry.node(nodeId);
    if (!rec) throw new GossipError("bad_reply", `node ${nodeId} is not in the registry`);
    if (!sameKey(rec.publicKey, o.value.signer)) throw new GossipError("bad_reply", `the peers reply is not signed by the key the registry binds to node ${nodeId}`);
  }
  let r: WirePeersReply;
  try {
    r = decode("PeersReply", o.value.payload, PEERS_LIMITS);
  } catch (err) {
    if (err instanceof WireError) throw new GossipError("bad_reply", `node ${nodeId}'s peers reply: ${err.message}`, { cause: err });
    throw err;
  }
  if (r.nodeId !== nodeId) throw new GossipError("bad_reply", `asked node ${nodeId}, node ${r.nodeId} answered`);
  const peers: PeersView["peers"] = [];
  let invalid = 0;
  for (const e of r.peers) {
    if (!e.announcement) {
      invalid++;
      continue;
    }
    const bytes = encode("Signed", e.announcement);
    await envelopeReady(bytes, { maxBytes: GOSSIP_DEFAULTS.maxAnnouncementBytes });
    const read = readAnnouncement(bytes, GOSSIP_DEFAULTS.maxAnnouncementBytes);
    if (!read.ok) {
      invalid++;
      continue;
    }
    const rec = read.value;
    const binding = opts.registry ? await opts.registry.node(rec.announcement.nodeId) : null;
    if (checkOrigin(rec, binding)) {
      invalid++;
      continue;
    }
    peers.push({ announcement: rec.announcement, ageMs: toSafeNumber(e.ageMs, "ageMs") });
  }
  peers.sort((a, b) => a.announcement.nodeId - b.announcement.nodeId);
  return { nodeId: r.nodeId, timestampMs: toSafeNumber(r.timestampMs, "timestampMs"), truncated: r.truncated, peers, invalid, boundToRegistry: opts.registry !== null };
}
