/** Client side of power management: the farm's power status (from signed announcements) and signed WAKE/STANDBY requests. */
import type { Bus } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { gather } from "../gossip/gather";
import { GOSSIP_DEFAULTS } from "../gossip/options";
import { checkOrigin, readAnnouncement } from "../gossip/view";
import { encodeSyncRequest, type Announcement } from "../gossip/wire";
import { envelopeReady, sameKey } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import type { Registry } from "../registry/types";
import { PowerError } from "./errors";
import { openPowerReply, sealPowerMessage, type PowerReply } from "./wire";

/** One node's power as `power status --json` prints it. */
export interface PowerStatusRow {
  nodeId: number;
  /** up, standby, waking or down */
  state: "up" | "standby" | "waking" | "down";
  /** when it last changed state (its clock), ISO 8601; null when the node does not say */
  since: string | null;
  /** why: start, idle, usage_high, periodic, random, requested, woken, deploy ... ("" when the node does not say) */
  reason: string;
}

export function powerRowOf(a: Announcement): PowerStatusRow {
  return { nodeId: a.nodeId, state: a.power, since: a.powerSinceMs ? new Date(a.powerSinceMs).toISOString() : null, reason: a.powerReason ?? "" };
}

/**
 * The farm's power rows from its nodes' announcements (pure): each node as it announces itself,
 * except a node that is not up while a node announces waking it (a wake sent after its last
 * change: the waker's `waking` list, or its own while a dev node boots) is `waking`, with the
 * wake's time and reason. Nodes in `expected` that nobody announced are `down`.
 */
export function powerRows(announcements: Announcement[], expected: number[] = []): PowerStatusRow[] {
  const rows = new Map<number, PowerStatusRow>(announcements.map((a) => [a.nodeId, powerRowOf(a)]));
  const sinceOf = new Map(announcements.map((a) => [a.nodeId, a.powerSinceMs ?? 0]));
  const wakes = new Map<number, { sinceMs: number; reason: string }>();
  for (const a of announcements) {
    for (const w of a.waking ?? []) {
      const kept = wakes.get(w.nodeId);
      if (!kept || kept.sinceMs > w.sinceMs) wakes.set(w.nodeId, w);
    }
  }
  for (const [nodeId, w] of wakes) {
    const row = rows.get(nodeId);
    if (row?.state === "up") continue;
    // a wake older than the node's last change of state is over (it woke and went back to sleep since)
    if (row && (sinceOf.get(nodeId) ?? 0) > w.sinceMs) continue;
    rows.set(nodeId, { nodeId, state: "waking", since: new Date(w.sinceMs).toISOString(), reason: w.reason });
  }
  for (const id of expected) if (!rows.has(id)) rows.set(id, { nodeId: id, state: "down", since: null, reason: "" });
  return [...rows.values()].sort((a, b) => a.nodeId - b.nodeId);
}

/**
 * Ask farm F's nodes for their current signed announcements (`capacity.sync.<F>`), verify each
 * (against the registry when given) and return them by node id. A node that is powered off
 * (zos standby) does not answer: pass `expected` ids to list those as `down`.
 */
export async function farmAnnouncements(bus: Bus, subjects: Subjects, farmId: number, opts: { registry: Registry | null; timeoutMs?: number }): Promise<{ announcements: Announcement[]; invalid: number }> {
  const raw: Uint8Array[] = [];
  await gather(bus, subjects.capacitySync(farmId), encodeSyncRequest(farmId, 0), { deadlineMs: opts.timeoutMs ?? 2000, quietMs: 300 }, (data, stop) => {
    raw.push(data);
    if (raw.length >= GOSSIP_DEFAULTS.maxPeersPerFarm) stop();
  });
  const byId = new Map<number, Announcement>();
  let invalid = 0;
  for (const bytes of raw) {
    await envelopeReady(bytes, { maxBytes: GOSSIP_DEFAULTS.maxAnnouncementBytes });
    const read = readAnnouncement(bytes, GOSSIP_DEFAULTS.maxAnnouncementBytes);
    if (!read.ok || read.value.announcement.farmId !== farmId) {
      invalid++;
      continue;
    }
    const r = read.value;
    const binding = opts.registry ? await opts.registry.node(r.announcement.nodeId) : null;
    if (checkOrigin(r, binding)) {
      invalid++;
      continue;
    }
    const kept = byId.get(r.announcement.nodeId);
    if (!kept || kept.sequence < r.announcement.sequence) byId.set(r.announcement.nodeId, r.announcement);
  }
  return { announcements: [...byId.values()].sort((a, b) => a.nodeId - b.nodeId), invalid };
}

/** Send a WAKE or STANDBY request signed by the farm's twin to node N; the reply must be signed by N (its registry key when given). */
export async function powerRequest(
  bus: Bus,
  subjects: Subjects,
  req: { nodeId: number; farmId: number; kind: "wake" | "standby"; twinId: number; signer: Signer },
  opts: { registry: Registry | null; timeoutMs?: number },
): Promise<PowerReply> {
  const bytes = sealPowerMessage(req.signer, { farmId: req.farmId, fromNodeId: 0, fromTwinId: req.twinId, kind: req.kind, targetNodeId: req.nodeId, timestampMs: Date.now() });
  let data: Uint8Array;
  try {
    data = (await bus.request(subjects.nodePower(req.nodeId), bytes, { timeout: opts.timeoutMs ?? 5000 })).data;
  } catch (err) {
    throw new PowerError("driver_failed", `node ${req.nodeId} did not answer the power request (${(err as Error).message}); is its agent running with power.manage on? A powered-off node is woken by its peers (wake-on-lan)`, { cause: err });
  }
  await envelopeReady(data, { maxBytes: 1024 });
  const r = openPowerReply(data);
  if (!r.ok) throw new PowerError("driver_failed", `node ${req.nodeId}'s power reply: ${r.message}`);
  if (r.reply.nodeId !== req.nodeId) throw new PowerError("driver_failed", `asked node ${req.nodeId}, node ${r.reply.nodeId} answered`);
  if (opts.registry) {
    const rec = await opts.registry.node(req.nodeId);
    if (!rec || !sameKey(rec.publicKey, r.signer)) throw new PowerError("driver_failed", `the power reply is not signed by the key the registry binds to node ${req.nodeId}`);
  }
  return r.reply;
}

/**
 * Wake a standby node that fits (deploy --auto, find --wake) and wait until it announces `up`:
 * a WAKE request to the node itself (a dev node hears it), else relayed by an up node of its farm
 * (which sends wake-on-lan to a powered-off node). Resolves true when the node is up in time.
 */
export async function wakeAndWait(
  bus: Bus,
  subjects: Subjects,
  target: { nodeId: number; farmId: number },
  who: { twinId: number; signer: Signer },
  opts: { registry: Registry | null; timeoutMs: number; log?: (line: string) => void },
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  const req = { nodeId: target.nodeId, farmId: target.farmId, kind: "wake" as const, twinId: who.twinId, signer: who.signer };
  try {
    const r = await powerRequest(bus, subjects, req, { registry: opts.registry, timeoutMs: 2000 });
    opts.log?.(`node ${target.nodeId}: ${r.message}`);
  } catch {
    // the node does not listen (powered off): ask an up node of its farm to wake it
    const { announcements } = await farmAnnouncements(bus, subjects, target.farmId, { registry: opts.registry, timeoutMs: 1000 });
    const relay = announcements.find((a) => a.power === "up" && a.nodeId !== target.nodeId);
    if (!relay) return false;
    const bytes = sealPowerMessage(who.signer, { farmId: target.farmId, fromNodeId: 0, fromTwinId: who.twinId, kind: "wake", targetNodeId: target.nodeId, timestampMs: Date.now() });
    await bus.request(subjects.nodePower(relay.nodeId), bytes, { timeout: 5000 }).catch(() => null);
    opts.log?.(`asked node ${relay.nodeId} to wake node ${target.nodeId}`);
  }
  while (Date.now() < deadline) {
    const { announcements } = await farmAnnouncements(bus, subjects, target.farmId, { registry: opts.registry, timeoutMs: 500 });
    if (announcements.some((a) => a.nodeId === target.nodeId && a.power === "up")) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}
