import type { Bus, BusMessage, BusSubscription } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { DOMAIN } from "../identity/domains";
import { sameKey, seal } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import type { Registry } from "../registry/types";
import { refused } from "../result";
import { encode } from "../wire/codec";
import { gather } from "./gather";
import type { GossipMetrics } from "./metrics";
import type { GossipOptions } from "./options";
import { claimOf, PeerTable, readAnnouncement, type Claim, type Peer, type Verdict } from "./view";
import { encodeSyncRequest, envelopeToWire } from "./wire";

export interface PeerViewModules {
  bus: Bus;
  subjects: Subjects;
  registry: Registry;
  signer: Signer;
  logger: Logger;
  metrics: GossipMetrics | null;
  now: () => number;
  /** called when the view changed (a peer kept or updated, or peers expired): e.g. the dashboard's live updates */
  onChange?: () => void;
}

type Source = "gossip" | "sync";

/**
 * The I/O shell around `PeerTable`: subscribes to the farm's announcements (or the grid's),
 * looks the claimed node up in the registry, lets the pure rules decide, counts and logs drops
 * (debug, with the reason code; never the payload), sweeps expired peers, catches up with
 * `capacity.sync.<farm>`, and answers `node.<self>.peers` with the view.
 *
 * The node keeps ITSELF out of its view: it knows its own state first-hand, `peers` lists the
 * other nodes, and find answers come from each node directly. Its own announcements (signed with
 * its own key) coming back on the farm subject are skipped before any signature work and are not
 * counted; anything else claiming its node id goes through the rules like any message (and is
 * dropped, since only this node holds the key).
 */
export class PeerView {
  readonly table: PeerTable;
  private readonly log: Logger;
  private subs: BusSubscription[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: GossipOptions,
    private readonly m: PeerViewModules,
  ) {
    this.log = m.logger.child({ module: "gossip" });
    this.table = new PeerTable({ expiryHeartbeats: options.expiryHeartbeats, maxClockSkewMs: options.maxClockSkewMs, maxBytes: options.maxAnnouncementBytes, maxPeersPerFarm: options.maxPeersPerFarm, maxPeers: options.maxPeers });
  }

  /** The subject pattern listened to: the own farm, or every farm with scope "grid". */
  get pattern(): string {
    return this.m.subjects.capacity(this.options.scope === "grid" ? "*" : this.options.farmId, "*");
  }

  /** `limit(subject, reply)`: false when the peers request is to be dropped (the Gossip's limiter) */
  start(limit: (subject: string, reply: string) => boolean = () => true): void {
    const { bus, subjects } = this.m;
    this.subs.push(
      bus.subscribe(this.pattern, {
        callback: (err, msg) => {
          if (!err) void this.onAnnouncement(msg).catch((e: unknown) => this.log.warn({ event: "gossip_internal_error", err: String(e) }, "could not process an announcement"));
        },
      }),
      bus.subscribe(subjects.nodePeers(this.options.nodeId), {
        callback: (err, msg) => {
          if (err || !msg.reply || !limit("peers", msg.reply)) return;
          try {
            msg.respond(this.peersReply());
          } catch (e) {
            this.log.warn({ event: "gossip_internal_error", subject: msg.subject, err: String(e) }, "could not answer a peers request");
          }
        },
      }),
    );
    this.sweepTimer = setInterval(() => this.sweep(), this.options.sweepMs);
    this.sweepTimer.unref();
    this.log.info({ event: "gossip_listening", pattern: this.pattern, scope: this.options.scope }, "listening to capacity announcements");
  }

  private async onAnnouncement(msg: BusMessage): Promise<void> {
    const claim = claimOf(msg.subject, this.m.subjects.prefix);
    if (claim === "ignore") return;
    if ("reason" in claim) return this.count("gossip", refused(claim), msg.subject);
    await this.offer(msg.data, "gossip", claim, msg.subject);
  }

  /** Judge one announcement (from gossip or a sync answer) and keep it when the rules accept it. */
  async offer(data: Uint8Array, source: Source, claim: Claim | undefined, subject: string): Promise<Verdict | null> {
    const read = readAnnouncement(data, this.options.maxAnnouncementBytes);
    if (!read.ok) {
      this.count(source, read, subject);
      return read;
    }
    const r = read.value;
    if (sameKey(r.envelope.signer, this.m.signer.publicKey)) return null; // our own, echoed back
    const record = await this.m.registry.node(r.announcement.nodeId);
    const v = this.table.offer({ received: r, claim: claim ?? (source === "sync" && this.options.scope === "farm" ? { farmId: this.options.farmId, nodeId: r.announcement.nodeId } : undefined), record }, this.m.now());
    this.count(source, v, subject);
    return v;
  }

  private count(source: Source, v: Verdict, subject: string): void {
    if (v.ok) {
      const a = v.value.peer.announcement;
      this.m.metrics?.accepted.inc({ source });
      this.m.metrics?.propagation.observe({ source }, (this.m.now() - a.timestampMs) / 1000);
      this.m.metrics?.peers.set({}, this.table.size);
      this.m.onChange?.();
      if (v.value.joined) this.log.info({ event: "peer_joined", nodeId: a.nodeId, farmId: a.farmId, source, sequence: a.sequence }, "peer joined the view");
      else this.log.trace({ event: "peer_updated", nodeId: a.nodeId, source, sequence: a.sequence }, "peer updated");
      return;
    }
    const d = v.refusal;
    this.m.metrics?.dropped.inc({ reason: d.reason });
    // duplicates are routine (a sync answer repeating what gossip brought); keep them out of debug
    const level = d.reason === "duplicate" ? "trace" : "debug";
    this.log[level]({ event: "announcement_dropped", reason: d.reason, nodeId: d.nodeId, source, subject, detail: d.detail }, "announcement dropped");
  }

  /** Remove peers that missed their heartbeats. */
  sweep(): void {
    const gone = this.table.expire(this.m.now());
    for (const p of gone) {
      this.m.metrics?.expired.inc();
      this.log.info({ event: "peer_expired", nodeId: p.announcement.nodeId, farmId: p.announcement.farmId, lastSequence: p.announcement.sequence, silentMs: this.m.now() - p.receivedAt }, "peer left the view after missing its heartbeats");
    }
    if (gone.length) {
      this.m.metrics?.peers.set({}, this.table.size);
      this.m.onChange?.();
    }
  }

  /** The live view, swept first. */
  peers(): Peer[] {
    this.sweep();
    return this.table.list();
  }

  /**
   * Catch-up: ask `capacity.sync.<farm>`; every node of the farm answers with its current signed
   * announcement, judged like gossip as it arrives. Resolves once answers have stopped coming for
   * `syncQuietMs` (and were judged), so a caller holds the farm's view one round trip after asking;
   * late answers are still taken until `syncMaxMs`. Scope "grid" still asks the own farm only:
   * other farms fill in at their next heartbeat.
   */
  sync(): Promise<number> {
    const subject = this.m.subjects.capacitySync(this.options.farmId);
    const work: Array<Promise<unknown>> = [];
    let answers = 0;
    let quiet: NodeJS.Timeout | null = null;
    let settle!: (n: number) => void;
    const settled = new Promise<number>((resolve) => (settle = resolve));
    const done = gather(this.m.bus, subject, encodeSyncRequest(this.options.farmId, this.options.nodeId), { deadlineMs: this.options.syncMaxMs, quietMs: 0 }, (data, stop) => {
      // a farm has at most maxPeersPerFarm nodes: more answers are a flood, not a farm
      if (answers >= this.options.maxPeersPerFarm) return stop();
      answers++;
      work.push(this.offer(data, "sync", undefined, subject).catch(() => null));
      if (quiet) clearTimeout(quiet);
      quiet = setTimeout(() => void Promise.all(work).then(() => settle(answers)), this.options.syncQuietMs);
    });
    void done.then(async () => {
      if (quiet) clearTimeout(quiet);
      await Promise.all(work);
      settle(answers);
      this.log.debug({ event: "gossip_synced", answers, peers: this.table.size }, "catch-up answers collected");
    });
    return settled;
  }

  /** Signed{PeersReply}: the view, as large as one NATS message allows. */
  peersReply(): Uint8Array {
    const now = this.m.now();
    const limit = Math.max(64 * 1024, (this.m.bus.maxPayload() ?? 1024 * 1024) - 4096);
    const entries: Array<Record<string, unknown>> = [];
    let size = 0;
    let truncated = false;
    for (const p of this.peers()) {
      const entrySize = p.envelope.payload.length + p.envelope.signature.length + p.envelope.signer.length + 32;
      if (size + entrySize > limit) {
        truncated = true;
        break;
      }
      size += entrySize;
      entries.push({ announcement: envelopeToWire(p.envelope), ageMs: Math.max(0, now - p.receivedAt) });
    }
    return seal(this.m.signer, DOMAIN.PeersReply, encode("PeersReply", { nodeId: this.options.nodeId, timestampMs: now, peers: entries, truncated }));
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const s of this.subs) {
      try {
        s.unsubscribe();
      } catch {
        /* the connection is closed */
      }
    }
    this.subs = [];
  }
}
