/**
 * The peer-view rules as tables: each drop reason, sequence ordering, expiry with an injected clock.
 * Real keys and real signatures; no sockets, no timers.
 */
import * as crypto from "node:crypto";
import { GiB } from "../../agent/capacity/units";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import type { NodeRecord } from "../../agent/registry/types";
import { encode } from "../../agent/wire/codec";
import { checkOrigin, claimOf, isExpired, judge, PeerTable, readAnnouncement, type Claim, type DropReason, type Peer, type Received, type ViewRules } from "../../agent/gossip/view";
import { encodeAnnouncement, sealAnnouncement, type Announcement } from "../../agent/gossip/wire";

const NOW = 1_700_000_000_000;
const RULES: ViewRules = { expiryHeartbeats: 3, maxClockSkewMs: 30_000, maxBytes: 4096 };

let keyA: Signer; // node 1's key
let keyB: Signer; // node 2's key
let keySr: Signer; // an sr25519 key
let registry: Map<number, NodeRecord>;

beforeAll(async () => {
  await cryptoReady();
  keyA = signerFromSeed("ed25519", crypto.randomBytes(32));
  keyB = signerFromSeed("ed25519", crypto.randomBytes(32));
  keySr = signerFromSeed("sr25519", crypto.randomBytes(32));
  registry = new Map([
    [1, { id: 1, farmId: 1, twinId: 1, publicKey: keyA.publicKey, scheme: "ed25519" }],
    [2, { id: 2, farmId: 1, twinId: 2, publicKey: keyB.publicKey, scheme: "ed25519" }],
    [3, { id: 3, farmId: 2, twinId: 3, publicKey: keySr.publicKey, scheme: "sr25519" }],
  ]);
});

const units = (n: number) => ({ cru: 4 * n, mru: 8 * GiB * n, sru: 100 * GiB * n, hru: 0, ipv4u: 0, gpu: 0 });

function ann(over: Partial<Announcement> = {}): Announcement {
  return {
    nodeId: 1,
    farmId: 1,
    twinId: 1,
    sequence: 10,
    timestampMs: NOW,
    total: units(2),
    reserved: units(0),
    reservable: units(2),
    used: units(1),
    free: units(1),
    deployments: 1,
    power: "up",
    heartbeatMs: 1000,
    agentVersion: "0.1.0",
    ...over,
  };
}

function received(bytes: Uint8Array): Received {
  const r = readAnnouncement(bytes, RULES.maxBytes);
  if (!r.ok) throw new Error(`fixture did not decode: ${r.refusal.reason} ${r.refusal.detail}`);
  return r.value;
}

const sealed = (signer: Signer, over: Partial<Announcement> = {}): Uint8Array => sealAnnouncement(signer, ann(over)).bytes;

describe("readAnnouncement: size and shape before any signature work", () => {
  const cases: Array<[string, () => Uint8Array, DropReason | "ok"]> = [
    ["a well-formed signed announcement", () => sealed(keyA), "ok"],
    ["larger than the limit", () => new Uint8Array(RULES.maxBytes + 1), "too_large"],
    ["random bytes", () => new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x01]), "malformed"],
    ["an envelope around garbage", () => encode("Signed", { payload: new Uint8Array([0xff, 0xff, 0xff]), signer: keyA.publicKey, scheme: 1, signature: new Uint8Array(64) }), "malformed"],
    ["an unknown signature scheme", () => encode("Signed", { payload: encodeAnnouncement(ann()), signer: keyA.publicKey, scheme: 9, signature: new Uint8Array(64) }), "malformed"],
    ["a short signature", () => encode("Signed", { payload: encodeAnnouncement(ann()), signer: keyA.publicKey, scheme: 1, signature: new Uint8Array(10) }), "malformed"],
    ["node id 0", () => sealed(keyA, { nodeId: 0 }), "malformed"],
    ["sequence 0", () => sealed(keyA, { sequence: 0 }), "malformed"],
    ["a heartbeat below 100 ms", () => sealed(keyA, { heartbeatMs: 5 }), "malformed"],
    ["an unknown power state", () => encode("Signed", { payload: encode("CapacityAnnouncement", { ...ann(), power: 7, total: {}, reserved: {}, reservable: {}, used: {}, free: {} }), signer: keyA.publicKey, scheme: 1, signature: new Uint8Array(64) }), "malformed"],
    ["free units missing", () => encode("Signed", { payload: encode("CapacityAnnouncement", { nodeId: 1, farmId: 1, sequence: 1, power: 1, heartbeatMs: 1000 }), signer: keyA.publicKey, scheme: 1, signature: new Uint8Array(64) }), "malformed"],
    ["an agent version of 100 characters", () => sealed(keyA, { agentVersion: "x".repeat(100) }), "malformed"],
  ];
  test.each(cases)("%s -> %s", (_name, make, want) => {
    const r = readAnnouncement(make(), RULES.maxBytes);
    expect(r.ok ? "ok" : r.refusal.reason).toBe(want);
  });
});

describe("claimOf: what the subject claims", () => {
  const cases: Array<[string, Claim | "ignore" | DropReason]> = [
    ["tfgrid.v1.capacity.1.5", { farmId: 1, nodeId: 5 }],
    ["tfgrid.v1.capacity.4294967295.7", { farmId: 4294967295, nodeId: 7 }],
    ["tfgrid.v1.capacity.sync.1", "ignore"],
    ["tfgrid.v1.capacity.x.5", "wrong_subject"],
    ["tfgrid.v1.capacity.1.5.6", "wrong_subject"],
    ["tfgrid.v1.capacity.1", "wrong_subject"],
    ["other.v1.capacity.1.5", "wrong_subject"],
  ];
  test.each(cases)("%s -> %p", (subject, want) => {
    const c = claimOf(subject, "tfgrid.v1");
    expect(c === "ignore" ? c : "reason" in c ? c.reason : c).toEqual(want);
  });
});

describe("judge: the rules, in order", () => {
  interface Case {
    name: string;
    bytes: () => Uint8Array;
    claim?: Claim;
    /** registry entry to use (default: the one for the announcement's node id) */
    record?: () => NodeRecord | undefined;
    kept?: () => Peer;
    highWater?: number;
    want: DropReason | "accepted";
  }
  const keptPeer = (seq: number, signer = () => keyA): (() => Peer) => () => {
    const r = received(sealed(signer(), { sequence: seq }));
    return { announcement: r.announcement, envelope: r.envelope, receivedAt: NOW - 100 };
  };
  const tamper = (b: Uint8Array, from: number): Uint8Array => {
    const c = Uint8Array.from(b);
    c[from] ^= 0x01;
    return c;
  };
  const cases: Case[] = [
    { name: "a fresh announcement from the registered key", bytes: () => sealed(keyA), claim: { farmId: 1, nodeId: 1 }, want: "accepted" },
    { name: "an sr25519 node", bytes: () => sealed(keySr, { nodeId: 3, farmId: 2 }), claim: { farmId: 2, nodeId: 3 }, want: "accepted" },
    { name: "no subject claim (a sync answer)", bytes: () => sealed(keyA), want: "accepted" },
    { name: "published on another node's subject", bytes: () => sealed(keyA), claim: { farmId: 1, nodeId: 2 }, want: "wrong_subject" },
    { name: "published on another farm's subject", bytes: () => sealed(keyA), claim: { farmId: 9, nodeId: 1 }, want: "wrong_subject" },
    { name: "a node the registry does not know", bytes: () => sealed(keyA, { nodeId: 42 }), want: "unknown_node" },
    { name: "forged: node 1 claimed, signed by another key", bytes: () => sealed(keyB, { nodeId: 1 }), claim: { farmId: 1, nodeId: 1 }, want: "bad_signature" },
    { name: "another node's id: node 2's valid key signs as node 1", bytes: () => sealed(keyB, { nodeId: 1 }), want: "bad_signature" },
    {
      name: "right signer field, signature from another key",
      bytes: () => encode("Signed", { payload: encodeAnnouncement(ann()), signer: keyA.publicKey, scheme: 1, signature: sealAnnouncement(keyB, ann()).envelope.signature }),
      want: "bad_signature",
    },
    {
      name: "payload changed after signing",
      bytes: () => {
        const s = sealAnnouncement(keyA, ann());
        const payload = encodeAnnouncement(ann({ free: units(2) }));
        return encode("Signed", { payload, signer: keyA.publicKey, scheme: 1, signature: s.envelope.signature });
      },
      want: "bad_signature",
    },
    { name: "a flipped bit in the signature", bytes: () => tamper(sealed(keyA), sealed(keyA).length - 3), want: "bad_signature" },
    { name: "scheme differs from the registry's", bytes: () => sealed(keyA), record: () => ({ ...registry.get(1)!, scheme: "sr25519" }), want: "bad_signature" },
    { name: "the registry puts the node in another farm", bytes: () => sealed(keyA), record: () => ({ ...registry.get(1)!, farmId: 2 }), want: "wrong_farm" },
    { name: "timestamp older than 3 heartbeats plus skew", bytes: () => sealed(keyA, { timestampMs: NOW - 3 * 1000 - 30_000 - 1 }), want: "stale" },
    { name: "timestamp just inside the window", bytes: () => sealed(keyA, { timestampMs: NOW - 3 * 1000 - 30_000 }), want: "accepted" },
    { name: "timestamp beyond the skew in the future", bytes: () => sealed(keyA, { timestampMs: NOW + 30_001 }), want: "stale" },
    { name: "a longer heartbeat widens the window", bytes: () => sealed(keyA, { timestampMs: NOW - 60_000, heartbeatMs: 30_000 }), want: "accepted" },
    { name: "sequence below the kept one", bytes: () => sealed(keyA, { sequence: 9 }), kept: keptPeer(10), want: "replay" },
    { name: "same sequence, other content", bytes: () => sealed(keyA, { sequence: 10, deployments: 5 }), kept: keptPeer(10), want: "replay" },
    { name: "the kept announcement again", bytes: () => sealed(keyA, { sequence: 10 }), kept: keptPeer(10), want: "duplicate" },
    { name: "below the high-water mark of an expired peer", bytes: () => sealed(keyA, { sequence: 10 }), highWater: 12, want: "replay" },
    { name: "above the kept one", bytes: () => sealed(keyA, { sequence: 11 }), kept: keptPeer(10), want: "accepted" },
  ];
  test.each(cases)("$name -> $want", (c) => {
    const r = received(c.bytes());
    const record = c.record ? c.record() : registry.get(r.announcement.nodeId);
    const v = judge({ received: r, claim: c.claim, record }, c.kept?.(), c.highWater, NOW, RULES);
    expect(v.ok ? "accepted" : v.refusal.reason).toBe(c.want);
    if (!v.ok) expect(v.refusal.detail).not.toMatch(/[\x00-\x08]/); // a readable detail, never raw bytes
  });

  test("without a registry (checkOrigin null) only the signature itself is checked", () => {
    // any key may claim any node id then: this is why find and peers say so when no registry is given
    expect(checkOrigin(received(sealed(keyB, { nodeId: 1 })), null)).toBeNull();
    const forged = encode("Signed", { payload: encodeAnnouncement(ann()), signer: keyA.publicKey, scheme: 1, signature: sealAnnouncement(keyB, ann()).envelope.signature });
    expect(checkOrigin(received(forged), null)).toMatchObject({ reason: "bad_signature" });
  });
});

describe("PeerTable: sequence ordering over a stream of offers", () => {
  const streams: Array<[string, number[], Array<DropReason | "accepted">]> = [
    ["in order", [1, 2, 3], ["accepted", "accepted", "accepted"]],
    ["out of order", [5, 3, 7, 6, 8], ["accepted", "replay", "accepted", "replay", "accepted"]],
    ["repeats", [4, 4, 4, 5], ["accepted", "duplicate", "duplicate", "accepted"]],
    ["gaps are fine", [1, 1000, 1_000_000_000_000], ["accepted", "accepted", "accepted"]],
  ];
  test.each(streams)("%s: %p", (_name, seqs, want) => {
    const t = new PeerTable(RULES);
    const cache = new Map<number, Uint8Array>();
    const got = seqs.map((s) => {
      if (!cache.has(s)) cache.set(s, sealed(keyA, { sequence: s }));
      const v = t.offer({ received: received(cache.get(s)!), record: registry.get(1) }, NOW);
      return v.ok ? "accepted" : v.refusal.reason;
    });
    expect(got).toEqual(want);
    expect(t.get(1)?.announcement.sequence).toBe(Math.max(...seqs));
  });

  test("joined is true for a new peer only", () => {
    const t = new PeerTable(RULES);
    const first = t.offer({ received: received(sealed(keyA, { sequence: 1 })), record: registry.get(1) }, NOW);
    const second = t.offer({ received: received(sealed(keyA, { sequence: 2 })), record: registry.get(1) }, NOW);
    expect(first).toMatchObject({ ok: true, value: { joined: true } });
    expect(second).toMatchObject({ ok: true, value: { joined: false } });
  });
});

describe("expiry after 3 of the peer's OWN heartbeat intervals (injected clock)", () => {
  const cases: Array<[string, number, number, boolean]> = [
    // [name, heartbeatMs, ms since received, expired?]
    ["1 s heartbeat, 2.9 s silent", 1000, 2900, false],
    ["1 s heartbeat, exactly 3 s silent", 1000, 3000, false],
    ["1 s heartbeat, 3.001 s silent", 1000, 3001, true],
    ["30 s heartbeat, 60 s silent", 30_000, 60_000, false],
    ["30 s heartbeat, 91 s silent", 30_000, 91_000, true],
    ["100 ms heartbeat, 301 ms silent", 100, 301, true],
  ];
  test.each(cases.map(([n, hb, silent, want]) => [`${n} -> ${want ? "expired" : "kept"}`, hb, silent, want] as const))("%s", (_name, hb, silent, want) => {
    const r = received(sealed(keyA, { heartbeatMs: hb }));
    const peer: Peer = { announcement: r.announcement, envelope: r.envelope, receivedAt: NOW };
    expect(isExpired(peer, NOW + silent, 3)).toBe(want);
  });

  test("each peer expires on its own heartbeat; a newer announcement brings it back, an older one cannot", () => {
    const t = new PeerTable(RULES);
    t.offer({ received: received(sealed(keyA, { sequence: 5, heartbeatMs: 1000 })), record: registry.get(1) }, NOW);
    t.offer({ received: received(sealed(keyB, { nodeId: 2, sequence: 5, heartbeatMs: 10_000 })), record: registry.get(2) }, NOW);
    expect(t.expire(NOW + 3000)).toEqual([]);
    expect(t.expire(NOW + 3001).map((p) => p.announcement.nodeId)).toEqual([1]);
    expect(t.list().map((p) => p.announcement.nodeId)).toEqual([2]);
    const later = NOW + 5000;
    // the old announcement replayed after expiry: still a replay (the high-water mark stays)
    expect(t.offer({ received: received(sealed(keyA, { sequence: 5, heartbeatMs: 1000, timestampMs: later })), record: registry.get(1) }, later)).toMatchObject({ ok: false, refusal: { reason: "replay" } });
    expect(t.offer({ received: received(sealed(keyA, { sequence: 6, heartbeatMs: 1000, timestampMs: later })), record: registry.get(1) }, later)).toMatchObject({ ok: true, value: { joined: true } });
    expect(t.expire(NOW + 30_001).map((p) => p.announcement.nodeId).sort()).toEqual([1, 2]);
    expect(t.size).toBe(0);
  });

  test("a message refreshes the clock: a peer that keeps announcing never expires", () => {
    const t = new PeerTable(RULES);
    for (let i = 0; i < 10; i++) {
      const at = NOW + i * 2500; // heartbeats every 2.5 s, expiry after 3 s
      expect(t.offer({ received: received(sealed(keyA, { sequence: i + 1, timestampMs: at })), record: registry.get(1) }, at).ok).toBe(true);
      expect(t.expire(at + 2999)).toEqual([]);
    }
  });
});

describe("PeerTable: bounded view", () => {
  const offer = (t: PeerTable, signer: Signer, nodeId: number, farmId: number, sequence: number, at = NOW) =>
    t.offer({ received: received(sealed(signer, { nodeId, farmId, twinId: nodeId, sequence, timestampMs: at })), record: registry.get(nodeId) }, at);

  test("a farm holds at most maxPeersPerFarm peers; room frees when one expires; other farms are not affected", () => {
    const t = new PeerTable({ ...RULES, maxPeersPerFarm: 1 });
    expect(offer(t, keyA, 1, 1, 1)).toMatchObject({ ok: true, value: { joined: true } });
    expect(offer(t, keyB, 2, 1, 1)).toMatchObject({ ok: false, refusal: { reason: "view_full", nodeId: 2 } });
    expect(offer(t, keySr, 3, 2, 1)).toMatchObject({ ok: true });
    // a kept peer still updates
    expect(offer(t, keyA, 1, 1, 2)).toMatchObject({ ok: true, value: { joined: false } });
    expect(t.farmSize(1)).toBe(1);
    const later = NOW + 10_000;
    expect(t.expire(later).map((p) => p.announcement.nodeId).sort()).toEqual([1, 3]);
    expect(t.farmSize(1)).toBe(0);
    expect(offer(t, keyB, 2, 1, 1, later)).toMatchObject({ ok: true, value: { joined: true } });
  });

  test("the view holds at most maxPeers in all", () => {
    const t = new PeerTable({ ...RULES, maxPeers: 2 });
    expect(offer(t, keyA, 1, 1, 1).ok).toBe(true);
    expect(offer(t, keyB, 2, 1, 1).ok).toBe(true);
    expect(offer(t, keySr, 3, 2, 1)).toMatchObject({ ok: false, refusal: { reason: "view_full" } });
    expect(t.size).toBe(2);
  });
});
