/**
 * Power management, the agent component (docs/power.md): the thin I/O shell around the pure
 * policy (policy.ts) and agreement (agreement.ts). Every `checkMs` (and when its own standby
 * intent is due) it builds the farm's view from the verified announcements the gossip view holds
 * plus this node's ledger, runs the agreement, and carries out its actions: publish an intent or
 * an objection on `power.<farm>`, put this node to standby (ledger, then driver), wake a peer
 * (signed WAKE request on `node.<N>.power`, and the driver: wake-on-lan or a command). It answers
 * WAKE and STANDBY requests signed by the farm's twin (WAKE also from a node of the farm).
 */
import type { Bus, BusSubscription } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import type { Units } from "../capacity/units";
import { envelopeReady, sameKey } from "../identity/envelope";
import type { Signer } from "../identity/keys";
import type { Logger } from "../log/logger";
import type { Registry } from "../registry/types";
import type { Announcement } from "../gossip/wire";
import { PowerAgreement, type AgreementAction } from "./agreement";
import type { PowerDriver } from "./drivers";
import type { PowerPolicyOptions } from "./options";
import { standbyBlocker, type FarmNode } from "./policy";
import { openPowerMessage, sealPowerMessage, sealPowerReply, type PowerMessage, type PowerReply } from "./wire";
import type { PowerMetrics } from "./metrics";
import { WakingBoard } from "./waking";

/** What the service reads and changes on this node; the Ledger is one. */
export interface PowerSource {
  capacity(): { reservable: Units };
  used(): Units;
  deployments(): readonly unknown[];
  powerState(): "up" | "standby";
  setPower(state: "up" | "standby", reason?: string): void;
  powerInfo(): { sinceMs: number; lastClaimMs: number; reason: string };
}

export interface PowerServiceOptions {
  nodeId: number;
  farmId: number;
  policy: PowerPolicyOptions;
  publicConfig: boolean;
  /** requests whose timestamp is further than this from the local clock are refused as stale (default 5 min) */
  maxSkewMs?: number;
  /** dev driver: how long a woken node takes to "boot", announced as waking meanwhile (default 0: up at once) */
  devBootMs?: number;
}

export interface PowerServiceModules {
  bus: Bus;
  subjects: Subjects;
  signer: Signer;
  registry: Registry;
  source: PowerSource;
  /** the verified announcements of the farm's other nodes (the gossip view) */
  peers(): Announcement[];
  driver: PowerDriver;
  /** the twin allowed to send WAKE and STANDBY (the farm's owner); undefined = none */
  farmTwin(): Promise<number | undefined>;
  /** or the farmer twin's public key (config power.farmerKey): a twin registered with it may send them */
  farmerKey?: Uint8Array;
  /** report a power change to the chain, where it keeps one; failures are logged, not fatal */
  reportPower?(state: "up" | "standby"): Promise<void>;
  logger: Logger;
  now: () => number;
  /** wakes in progress, announced by gossip (the agent shares one board with it); default: a board of its own */
  waking?: WakingBoard;
  /** power metrics (power/metrics.ts); null or absent: none */
  metrics?: PowerMetrics | null;
}

export class PowerService {
  readonly agreement: PowerAgreement;
  private readonly log: Logger;
  private subs: BusSubscription[] = [];
  private timer: NodeJS.Timeout | null = null;
  private dueTimer: NodeJS.Timeout | null = null;
  /** peers last seen in standby: kept when they leave the gossip view (a powered-off node is silent) */
  private readonly sleepers = new Map<number, FarmNode>();
  private closed = false;
  /** wakes this node sent or is going through (announced: every observer sees `waking`) */
  readonly waking: WakingBoard;
  private bootTimer: NodeJS.Timeout | null = null;
  /** the chain said it keeps no power state (unsupported_runtime): not asked again */
  private reportUnsupported = false;

  constructor(
    readonly options: PowerServiceOptions,
    private readonly m: PowerServiceModules,
  ) {
    this.log = m.logger.child({ module: "power" });
    this.agreement = new PowerAgreement(options.nodeId, options.policy);
    this.waking = m.waking ?? new WakingBoard(m.now);
  }

  /** This node's state as observers see it: waking while a dev node boots after a wake. */
  ownState(): "up" | "standby" | "waking" {
    return this.waking.has(this.options.nodeId) ? "waking" : this.m.source.powerState();
  }

  /** Change this node's state, counted in capacity_agent_power_transitions_total. */
  private setPower(to: "up" | "standby", reason: string): void {
    const from = this.ownState();
    this.m.source.setPower(to, reason);
    if (from !== to) this.m.metrics?.transitions.inc({ from, to });
  }

  start(): void {
    const { bus, subjects } = this.m;
    this.subs.push(
      bus.subscribe(subjects.power(this.options.farmId), { callback: (err, msg) => void (err ? null : this.onFarmMessage(msg.data).catch((e) => this.log.warn({ event: "power_internal_error", err: String(e) }, "could not handle a power message"))) }),
      bus.subscribe(subjects.nodePower(this.options.nodeId), {
        callback: (err, msg) => {
          if (err || !msg.reply) return;
          void this.onRequest(msg.data)
            .then((r) => msg.respond(sealPowerReply(this.m.signer, r)))
            .catch((e) => this.log.warn({ event: "power_internal_error", err: String(e) }, "could not answer a power request"));
        },
      }),
    );
    this.timer = setInterval(() => this.tick(), this.options.policy.checkMs);
    this.timer.unref();
    const pm = this.m.metrics;
    if (pm) {
      pm.own = () => this.ownState();
      pm.farm = () => {
        const by = { up: 0, standby: 0, waking: 0 };
        for (const n of this.view()) if (n.state in by) by[n.state as keyof typeof by]++;
        return by;
      };
    }
    this.log.info({ event: "power_started", driver: this.m.driver.kind, checkMs: this.options.policy.checkMs }, "power management started");
  }

  /** The farm as this node sees it: itself from the ledger, peers from gossip, silent sleepers remembered. */
  view(): FarmNode[] {
    const s = this.m.source;
    const info = s.powerInfo();
    const self: FarmNode = {
      nodeId: this.options.nodeId, state: s.powerState(), sinceMs: info.sinceMs, total: s.capacity().reservable, used: s.used(),
      deployments: s.deployments().length, publicConfig: this.options.publicConfig, lastClaimMs: info.lastClaimMs,
    };
    const out = new Map<number, FarmNode>([[self.nodeId, self]]);
    const announcedWaking = new Set<number>();
    for (const a of this.m.peers()) {
      if (a.farmId !== this.options.farmId || a.nodeId === self.nodeId) continue;
      const n: FarmNode = { nodeId: a.nodeId, state: a.power, sinceMs: a.powerSinceMs ?? 0, total: a.reservable, used: a.used, deployments: a.deployments, publicConfig: a.publicConfig ?? false, lastClaimMs: a.lastClaimMs ?? 0 };
      out.set(n.nodeId, n);
      if (n.state === "standby") this.sleepers.set(n.nodeId, n);
      else this.sleepers.delete(n.nodeId);
      // a woken node announced up: its wake is over
      if (n.state === "up") this.waking.clear(n.nodeId);
      for (const w of a.waking ?? []) announcedWaking.add(w.nodeId);
    }
    for (const [id, n] of this.sleepers) if (!out.has(id)) out.set(id, n);
    // a node a peer (or this node) is waking counts as waking: no second wake, no standby meanwhile
    for (const id of [...announcedWaking, ...this.waking.list().map((w) => w.nodeId)]) {
      const n = out.get(id);
      if (n && n.state === "standby" && id !== self.nodeId) out.set(id, { ...n, state: "waking" });
    }
    return [...out.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** One check (the timer's, or when the own intent is due). */
  tick(): void {
    if (this.closed) return;
    const now = this.m.now();
    this.act(this.agreement.check(this.view(), now));
    const due = this.agreement.dueMs();
    if (due !== null && !this.dueTimer) {
      this.dueTimer = setTimeout(() => {
        this.dueTimer = null;
        this.tick();
      }, Math.max(0, due - now));
      this.dueTimer.unref();
    }
  }

  private act(actions: AgreementAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case "intent":
          this.log.info({ event: "power_intent", windowMs: this.options.policy.windowMs }, "announced the intent to go to standby");
          this.m.metrics?.intents.inc({ from: "self" });
          this.publish("intent", this.options.nodeId);
          break;
        case "object":
          this.log.info({ event: "power_objection", target: a.nodeId }, "objected to a peer's standby intent");
          this.m.metrics?.objections.inc({ direction: "sent" });
          this.publish("objection", a.nodeId);
          break;
        case "abort":
          this.log.info({ event: "power_intent_aborted", why: a.why }, "standby intent given up");
          break;
        case "standby":
          void this.goStandby("idle");
          break;
        case "wake":
          void this.wakePeer(a.nodeId, a.reason);
          break;
      }
    }
  }

  private publish(kind: "intent" | "objection", target: number): void {
    const m: PowerMessage = { farmId: this.options.farmId, fromNodeId: this.options.nodeId, fromTwinId: 0, kind, targetNodeId: target, timestampMs: this.m.now() };
    this.m.bus.publish(this.m.subjects.power(this.options.farmId), sealPowerMessage(this.m.signer, m));
  }

  private async goStandby(reason: string): Promise<void> {
    this.setPower("standby", reason);
    this.log.info({ event: "power_standby", reason }, "node goes to standby");
    await this.report("standby");
    try {
      await this.m.driver.standby();
    } catch (err) {
      this.log.error({ event: "power_driver_failed", op: "standby", err: String(err) }, "the power driver could not put the node to standby; it stays up");
      this.setPower("up", "driver_failed");
      await this.report("up");
    }
  }

  private async report(state: "up" | "standby"): Promise<void> {
    if (!this.m.reportPower || this.reportUnsupported) return;
    try {
      await this.m.reportPower(state);
      this.log.info({ event: "power_reported", state }, "power state reported to the chain");
    } catch (err) {
      if ((err as { code?: unknown }).code === "unsupported_runtime") {
        // a runtime without power calls (tfchain spec 49): said once, not tried again
        this.reportUnsupported = true;
        this.log.warn({ event: "power_report_unsupported", state, err: (err as Error).message }, "the chain keeps no power state; power changes stay local (gossip) and are not reported again");
        return;
      }
      this.log.warn({ event: "power_report_failed", state, err: String(err) }, "could not report the power state to the chain");
    }
  }

  /** Wake a peer: a signed WAKE request (a dev node, or one still listening) and the driver (wake-on-lan, command). */
  async wakePeer(nodeId: number, reason: string): Promise<void> {
    this.log.info({ event: "power_wake", target: nodeId, reason }, "waking a node");
    // announced: peers, power status and the dashboard show the target waking until it is up
    this.waking.note(nodeId, reason);
    this.m.metrics?.wakesSent.inc({ driver: this.m.driver.kind });
    const m: PowerMessage = { farmId: this.options.farmId, fromNodeId: this.options.nodeId, fromTwinId: 0, kind: "wake", targetNodeId: nodeId, timestampMs: this.m.now() };
    this.m.bus.request(this.m.subjects.nodePower(nodeId), sealPowerMessage(this.m.signer, m), { timeout: 2000 }).catch(() => null);
    if (this.m.driver.kind === "dev") return;
    const mac = this.m.peers().find((a) => a.nodeId === nodeId)?.mac ?? "";
    try {
      await this.m.driver.wake({ nodeId, mac });
    } catch (err) {
      this.log.warn({ event: "power_driver_failed", op: "wake", target: nodeId, err: String(err) }, "could not wake a node");
    }
  }

  /** Who signed a power message: a node of this farm, or the farm's twin. Returns a refusal code or null. */
  private async authorize(msg: PowerMessage, signer: Uint8Array): Promise<"unauthorized" | "wrong_farm" | null> {
    if (msg.farmId !== this.options.farmId) return "wrong_farm";
    if (msg.fromNodeId) {
      const rec = await this.m.registry.node(msg.fromNodeId);
      if (!rec || !sameKey(rec.publicKey, signer) || rec.farmId !== this.options.farmId) return "unauthorized";
      return null;
    }
    const rec = await this.m.registry.twin(msg.fromTwinId);
    if (!rec || !sameKey(rec.publicKey, signer)) return "unauthorized";
    // waking is harmless and idempotent: any registered twin may ask (deploy --auto, find --wake)
    if (msg.kind === "wake") return null;
    if (this.m.farmerKey && sameKey(this.m.farmerKey, signer)) return null;
    const farmer = await this.m.farmTwin();
    return farmer !== undefined && msg.fromTwinId === farmer ? null : "unauthorized";
  }

  private async onFarmMessage(data: Uint8Array): Promise<void> {
    await envelopeReady(data, { maxBytes: 1024 });
    const o = openPowerMessage(data);
    if (!o.ok) {
      this.log.debug({ event: "power_message_invalid", code: o.code }, "ignored an invalid power message");
      return;
    }
    const msg = o.message;
    if (msg.fromNodeId === this.options.nodeId || !msg.fromNodeId) return;
    const refused = await this.authorize(msg, o.envelope.signer);
    if (refused || Math.abs(msg.timestampMs - this.m.now()) > (this.options.maxSkewMs ?? 300_000)) {
      this.log.debug({ event: "power_message_refused", code: refused ?? "stale", from: msg.fromNodeId }, "ignored a power message");
      return;
    }
    if (this.m.source.powerState() !== "up") return;
    const now = this.m.now();
    if (msg.kind === "intent" && msg.targetNodeId === msg.fromNodeId) {
      this.m.metrics?.intents.inc({ from: "peer" });
      this.act(this.agreement.onIntent(msg.fromNodeId, this.view(), now));
    } else if (msg.kind === "objection") {
      if (msg.targetNodeId === this.options.nodeId) this.m.metrics?.objections.inc({ direction: "received" });
      this.agreement.onObjection(msg.targetNodeId);
    }
  }

  /** A WAKE or STANDBY request to this node. */
  async onRequest(data: Uint8Array): Promise<PowerReply> {
    const reply = (ok: boolean, code: string, message: string): PowerReply => ({ nodeId: this.options.nodeId, ok, code, message, power: this.m.source.powerState() });
    if (this.closed) return reply(false, "node_closing", "the node is shutting down");
    if (data.length > 1024) return reply(false, "too_large", "a power request is at most 1024 bytes");
    await envelopeReady(data, { maxBytes: 1024 });
    const o = openPowerMessage(data);
    if (!o.ok) return reply(false, o.code, `${o.message}; send a Signed{PowerMessage} (docs/PROTOCOL.md)`);
    const msg = o.message;
    if (msg.kind !== "wake" && msg.kind !== "standby") return reply(false, "malformed", "only WAKE and STANDBY are requests; intents and objections go on power.<farm>");
    if (Math.abs(msg.timestampMs - this.m.now()) > (this.options.maxSkewMs ?? 300_000)) return reply(false, "stale", "the request's timestamp is more than 5 minutes from the node's clock; check the sender's clock and send again");
    const refused = await this.authorize(msg, o.envelope.signer);
    if (refused) return reply(false, refused, "power requests must be signed by the farm's twin (or, to wake, by a node of the farm) with the key the registry binds to it");
    if (msg.targetNodeId !== this.options.nodeId) {
      // relay: wake a peer of this farm that is powered off (it cannot hear the request itself)
      const peer = this.view().find((n) => n.nodeId === msg.targetNodeId);
      if (msg.kind !== "wake" || !peer) return reply(false, "wrong_node", `this is node ${this.options.nodeId}; it relays only wake requests for nodes of its farm (node ${msg.targetNodeId} is not one it knows)`);
      if (this.m.source.powerState() !== "up") return reply(false, "node_standby", "this node is in standby itself; ask an up node of the farm");
      if (peer.state === "up") return reply(true, "already_up", `node ${peer.nodeId} is up`);
      this.agreement.noteWake(peer.nodeId, this.m.now());
      await this.wakePeer(peer.nodeId, "requested");
      return reply(true, "wake_sent", `wake sent to node ${peer.nodeId}`);
    }
    if (msg.kind === "standby" && msg.fromNodeId) return reply(false, "unauthorized", "a node may not put another node to standby; only the farm's twin may");
    if (msg.kind === "wake") {
      if (this.m.source.powerState() === "up") return reply(true, "already_up", "the node is up");
      const reason = msg.fromTwinId ? "requested" : "woken";
      const by = msg.fromTwinId ? `twin ${msg.fromTwinId}` : `node ${msg.fromNodeId}`;
      const bootMs = this.m.driver.kind === "dev" ? (this.options.devBootMs ?? 0) : 0;
      if (bootMs > 0) {
        // a dev node "boots": announced as waking (by itself) until it is up
        if (this.waking.has(this.options.nodeId)) return reply(true, "waking", "the node is waking");
        this.m.metrics?.transitions.inc({ from: "standby", to: "waking" });
        this.waking.note(this.options.nodeId, reason);
        this.log.info({ event: "power_waking", by, bootMs }, "woken by request; booting");
        this.bootTimer = setTimeout(() => {
          this.bootTimer = null;
          if (this.closed) return;
          this.setPower("up", reason);
          this.waking.clear(this.options.nodeId);
          this.log.info({ event: "power_woken", by }, "up after booting");
          void this.report("up");
        }, bootMs);
        this.bootTimer.unref();
        return reply(true, "waking", `the node is waking (up in ${Math.round(bootMs / 1000)} s)`);
      }
      this.setPower("up", reason);
      this.log.info({ event: "power_woken", by }, "woken by request");
      await this.report("up");
      return reply(true, "woken", "the node is up");
    }
    if (this.m.source.powerState() === "standby") return reply(true, "already_standby", "the node is in standby");
    const self = this.view().find((n) => n.nodeId === this.options.nodeId)!;
    const blocker = standbyBlocker(self, this.m.now(), { ...this.options.policy, minStateMs: 0, claimQuietMs: 0 });
    if (blocker === "has_workloads") return reply(false, "has_workloads", "the node holds deployments; it goes to standby only when empty (as on tfchain)");
    if (blocker === "public_config") return reply(false, "public_config", "the node has a public config and stays up");
    if (!this.view().some((n) => n.nodeId !== this.options.nodeId && n.state === "up")) return reply(false, "last_node", "the node is the farm's last up node; wake another one first");
    await this.goStandby("requested");
    return reply(true, "standby", "the node is in standby");
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.dueTimer) clearTimeout(this.dueTimer);
    if (this.bootTimer) clearTimeout(this.bootTimer);
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
