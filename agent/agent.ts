import * as fs from "node:fs";
import * as path from "node:path";
import { Ledger } from "./admission/ledger";
import { NodeApi } from "./api/server";
import type { Bus } from "./bus/bus";
import { busHealth, connectBus, findNatsServer, isAuthFailure, natsAnswers, natsBus, startEmbeddedNats, type EmbeddedNats, type NatsConnection } from "./bus/nats";
import { Subjects } from "./bus/subjects";
import { removeNatsUrlFile, writeNatsUrlFile } from "./bus/url-file";
import { capacityOf } from "./capacity/model";
import type { AgentConfig } from "./config/options";
import { HardwareMonitor, SystemHardwareProbe, noSsdAdvice, parseHardwareOptions, type HardwareReport } from "./hardware";
import { createKeyFile, loadKeyFile, parsePublicKey, toHex, type Signer } from "./identity/keys";
import type { Logger } from "./log/logger";
import { redact, secretsOf } from "./log/redact";
import { createMetrics, type Metrics } from "./metrics/metrics";
import { PowerMetrics } from "./power/metrics";
import { MetricsServer } from "./metrics/http";
import { chainHealthOf, healthOf } from "./metrics/health";
import { Gossip } from "./gossip/gossip";
import { gossipOptionsFrom } from "./gossip/options";
import { powerServiceFrom, WakingBoard } from "./power";
import { FileRegistry, upsertRegistryFile } from "./registry/file";
import type { ChainBackend, ChainProofHead } from "./chain/backend";
import { ChainClient } from "./chain/client";
import { ChainError } from "./chain/errors";
import { readChainIds, writeChainIds, type SavedChainIds } from "./chain/ids";
import { ChainLink, CHAIN_LINK_RETRY, type ChainIds } from "./chain/link";
import { ChainRegistry, CompositeRegistry } from "./chain/registry";
import { StandinBackend } from "./chain/standin";
import { UsageService, usageOptionsFrom, type ProofSink } from "./usage/service";
import type { Registry } from "./registry/types";
import { DirLock } from "./store/lock";
import { Store } from "./store/store";
import { ensurePrivateDir, FILE_MODE, tighten, type OnTightened } from "./store/files";
import type { Units } from "./capacity/units";
import { AgentError } from "./errors";

/** Whether the chain says the twin is in debt now, and its grace end; a twin the chain does not know is not in debt. */
async function debtOf(client: ChainClient, twinId: number): Promise<{ inDebt: boolean; graceEndMs: number }> {
  const r = await client.bills(twinId, { limit: 1 });
  return r ? { inDebt: r.balance.inDebt, graceEndMs: r.balance.graceEndMs ?? 0 } : { inDebt: false, graceEndMs: 0 };
}

/** The tfchain backend's proof remark in flight (docs/tfchain.md "Exactly once"), in the data dir. */
export const TFCHAIN_INFLIGHT_FILE = "tfchain-inflight.json";

/** A long-lived part of the agent that starts after the core and closes before it. */
export interface Component {
  start(): Promise<void> | void;
  close(): Promise<void> | void;
}

export class AgentStartError extends AgentError<string> {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "AgentStartError";
  }
}

/**
 * The agent: wires identity, store, hardware, admission and the node API to NATS. Pure logic
 * lives in the modules; this class only builds them, in order, and closes them in reverse.
 */
export class Agent {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** power management's series (power/metrics.ts), present from the start like every gauge */
  readonly powerMetrics: PowerMetrics;
  readonly subjects: Subjects;
  signer!: Signer;
  registry!: Registry;
  store!: Store;
  ledger!: Ledger;
  hardware!: HardwareMonitor;
  nc!: NatsConnection;
  /** the modules' view of `nc` */
  bus!: Bus;
  api!: NodeApi;
  /** the chain client (null when chain.enabled is false) */
  chain: ChainClient | null = null;
  /** the chain, behind ChainBackend (null when chain.enabled is false) */
  backend: ChainBackend | null = null;
  /** the node and twin ids this agent serves under: the chain's when it assigned them, else the configured ones */
  nodeId = 0;
  twinId = 0;
  private link: ChainLink | null = null;
  usage!: UsageService;
  natsUrl = "";
  /** <dataDir>/nats.url, written while an embedded nats-server runs (null otherwise) */
  natsUrlFile: string | null = null;
  private embedded: EmbeddedNats | null = null;
  private lock: DirLock | null = null;
  private probe: SystemHardwareProbe | null = null;
  private readonly components: Component[] = [];
  private closed = false;

  constructor(
    readonly config: AgentConfig,
    logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.log = logger.child({ module: "agent" });
    this.metrics = createMetrics();
    this.powerMetrics = new PowerMetrics(this.metrics.registry);
    // read from live state at every scrape
    this.metrics.registry.onCollect(() => {
      this.metrics.natsConnected.set({}, this.nc && busHealth(this.nc).connected ? 1 : 0);
      this.metrics.chainRegistered.set({}, this.link?.isRegistered ? 1 : 0);
    });
    this.subjects = new Subjects(config.subjectPrefix);
  }

  /** Dev identity: a node key and a registry naming this node, created in the data dir on first start. */
  private async identity(): Promise<void> {
    const c = this.config;
    if (c.devIdentity && !fs.existsSync(c.keyFile)) {
      const kf = await createKeyFile(c.keyFile, "ed25519");
      this.log.info({ event: "dev_key_created", file: c.keyFile, address: kf.address }, "created a development node key");
    }
    this.signer = await loadKeyFile(c.keyFile);
    // the registry the agent keeps in its data dir is private like its other files
    if (path.resolve(path.dirname(c.registryFile)) === path.resolve(c.dataDir)) tighten(c.registryFile, FILE_MODE, this.tightened);
    if (c.devIdentity && !c.chain.enabled) {
      upsertRegistryFile(c.registryFile, { kind: "node", id: c.nodeId, farmId: c.farmId, twinId: c.twinId, publicKey: toHex(this.signer.publicKey), scheme: this.signer.scheme }, { force: true });
    }
    if (c.chain.enabled && !fs.existsSync(c.registryFile)) {
      // keys come from the chain alone (the registry file is an option)
      this.registry = new CompositeRegistry([]);
      this.log.info({ event: "registry_file_absent", file: c.registryFile }, "no registry file; twin and node keys come from the chain");
      return;
    }
    this.registry = new FileRegistry(c.registryFile, {
      onError: (err) => this.log.warn({ event: "registry_invalid", file: c.registryFile, err: err.message }, "registry file is invalid; keeping the last good one"),
    });
  }

  /** The registry (file, then chain) must not bind this node's id to another key. */
  private async checkSelf(): Promise<void> {
    const c = this.config;
    const self = await this.registry.node(this.nodeId);
    if (!self) {
      if (!c.chain.enabled) this.log.warn({ event: "node_not_registered", nodeId: this.nodeId, registry: c.registryFile }, "this node is not in the registry; peers will not trust its announcements");
    } else if (toHex(self.publicKey) !== toHex(this.signer.publicKey)) {
      throw new AgentStartError("key_mismatch", `the registry binds node ${this.nodeId} to another key than ${c.keyFile}`);
    }
  }

  /**
   * The node and twin ids, from the chain when it is enabled (DESIGN.md "Identity, registry,
   * chain": the chain assigns ids). At start the agent registers its twin and node (node key
   * signs) and serves under the ids the chain returns, saved in dataDir/chain-ids.json:
   * - the chain answers: its ids (an explicit --node-id / --twin-id that differs: the agent does
   *   not start, node_id_mismatch / twin_id_mismatch);
   * - the chain does not answer and ids were saved by an earlier start: the saved ids, at once;
   * - the chain does not answer at the first start: retries for chain.registerWaitMs (at once
   *   when NATS says no chain serves the bus), then the configured ids with a warning
   *   (node_id_unconfirmed); ChainLink keeps registering in the background;
   * - the chain refuses (e.g. the farm does not admit this twin): saved or configured ids, the
   *   refusal logged, retried in the background.
   */
  private async learnIds(total: Units): Promise<void> {
    const c = this.config;
    this.nodeId = c.nodeId;
    this.twinId = c.twinId;
    const backend = this.backend;
    if (!backend) return;
    let saved: SavedChainIds | undefined;
    try {
      saved = readChainIds(c.dataDir);
    } catch (err) {
      throw new AgentStartError("bad_chain_ids", (err as Error).message, { cause: err });
    }
    if (saved) {
      this.checkExplicit(saved, "saved in the data dir");
      this.nodeId = saved.nodeId;
      this.twinId = saved.twinId;
    }
    const link = new ChainLink({ farmId: c.farmId, ...CHAIN_LINK_RETRY }, { backend, signer: this.signer, logger: this.log, total, onRegistered: (ids) => this.onChainIds(ids) });
    this.link = link;
    const deadline = Date.now() + (saved ? 0 : c.chain.registerWaitMs);
    let delayMs = 250;
    for (;;) {
      let r;
      try {
        r = await link.registerOnce();
      } catch (err) {
        const noChain = err instanceof ChainError && err.noResponders;
        if (!saved && !noChain && Date.now() + delayMs <= deadline) {
          this.log.info({ event: "chain_wait", retryMs: delayMs, err: (err as Error).message }, "waiting for the chain to assign this node's id");
          await new Promise((res) => setTimeout(res, delayMs));
          delayMs = Math.min(delayMs * 2, 2000);
          continue;
        }
        if (saved) {
          this.log.info({ event: "chain_ids_saved", nodeId: this.nodeId, twinId: this.twinId, err: (err as Error).message }, "the chain does not answer; serving under the ids it assigned before");
        } else {
          this.log.warn({ event: "node_id_unconfirmed", nodeId: this.nodeId, twinId: this.twinId, err: (err as Error).message }, "the chain does not answer; serving under the configured node id until it assigns one");
        }
        return;
      }
      if (!r.ok) {
        this.log.error({ event: "chain_registration_refused", what: r.what, code: r.code, reason: r.message, nodeId: this.nodeId }, "the chain refused this node's registration; serving under the saved or configured id, retrying in the background");
        return;
      }
      this.checkExplicit(r, "assigned by the chain");
      if (saved && saved.nodeId !== r.nodeId) {
        this.log.warn({ event: "node_id_changed", from: saved.nodeId, to: r.nodeId }, "the chain assigned another node id than the saved one (a new chain?); using the chain's");
      }
      this.nodeId = r.nodeId;
      this.twinId = r.twinId;
      writeChainIds(c.dataDir, { nodeId: r.nodeId, twinId: r.twinId, farmId: c.farmId });
      link.markRegistered();
      this.log.info({ event: "node_registered", nodeId: r.nodeId, twinId: r.twinId, farmId: c.farmId, kind: r.kind }, "node registered with the chain");
      return;
    }
  }

  /** An explicit --node-id / --twin-id must be what the chain assigned. */
  private checkExplicit(ids: { nodeId: number; twinId: number }, source: string): void {
    const c = this.config;
    if (c.idsExplicit.nodeId && ids.nodeId !== c.nodeId) {
      throw new AgentStartError("node_id_mismatch", `--node-id ${c.nodeId} is not this node's id on the chain: node ${ids.nodeId} (${source}) is bound to the key in ${c.keyFile}; drop --node-id (the chain assigns it) or give ${ids.nodeId}`);
    }
    if (c.idsExplicit.twinId && ids.twinId !== c.twinId) {
      throw new AgentStartError("twin_id_mismatch", `--twin-id ${c.twinId} is not this node's twin on the chain: twin ${ids.twinId} (${source}) is bound to the key in ${c.keyFile}; drop --twin-id (the chain assigns it) or give ${ids.twinId}`);
    }
  }

  /** A background registration succeeded (after a start without the chain, or a re-registration). */
  private onChainIds(ids: ChainIds): void {
    const c = this.config;
    if (ids.nodeId === this.nodeId && ids.twinId === this.twinId) {
      writeChainIds(c.dataDir, { nodeId: ids.nodeId, twinId: ids.twinId, farmId: c.farmId });
      return;
    }
    // serving under another id than the chain's: announcements and proofs carry the wrong id.
    // The chain's id is saved (unless --node-id pins another) and used from the next start.
    if (!c.idsExplicit.nodeId && !c.idsExplicit.twinId) writeChainIds(c.dataDir, { nodeId: ids.nodeId, twinId: ids.twinId, farmId: c.farmId });
    this.log.error(
      { event: "node_id_mismatch", nodeId: this.nodeId, twinId: this.twinId, chainNodeId: ids.nodeId, chainTwinId: ids.twinId },
      "the chain assigned this node another id than the one it serves under; restart the agent to serve under the chain's id",
    );
  }

  private async connectNats(): Promise<void> {
    const c = this.config;
    let servers = c.nats.servers;
    if (c.nats.embedded && !(await natsAnswers(servers[0], 1000))) {
      const bin = findNatsServer();
      if (!bin) {
        throw new AgentStartError(
          "nats_unavailable",
          `nothing answers at ${redact(servers[0])} and no nats-server binary was found. Start one (apt-get install nats-server, then: nats-server -js) or pass --nats URL`,
        );
      }
      this.log.info({ event: "nats_not_found", url: redact(servers[0]) }, "no NATS server answers; starting an embedded one");
      this.embedded = await startEmbeddedNats(bin, path.join(c.dataDir, "nats"), this.log);
      servers = [this.embedded.url];
      // client commands in this directory find the server through this file (or the export line)
      this.natsUrlFile = writeNatsUrlFile(c.dataDir, this.embedded.url);
      this.log.info({ event: "nats_url_written", file: this.natsUrlFile, url: this.embedded.url, export: `export CAPACITY_AGENT_NATS=${this.embedded.url}` }, "client commands find the embedded NATS server through this file");
    }
    try {
      this.nc = await connectBus({ servers, name: `capacity-agent node ${c.nodeId}`, credentials: c.nats.credentials }, this.log);
    } catch (err) {
      if ((err as { code?: unknown }).code === "nats_credentials_invalid") throw new AgentStartError("nats_credentials_invalid", (err as Error).message, { cause: err });
      if (isAuthFailure(err)) {
        throw new AgentStartError("nats_unauthorized", redact(`NATS at ${servers.join(", ")} refused this agent's credentials: ${(err as Error).message} (check nats.nkeySeedFile / credsFile / user and password, and that the server knows this user; docs/bus-security.md)`, secretsOf(servers)), { cause: err });
      }
      throw new AgentStartError("nats_unavailable", redact(`cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message}`, secretsOf(servers)), { cause: err });
    }
    this.bus = natsBus(this.nc);
    this.natsUrl = redact(this.nc.getServer());
    if (c.chain.enabled) {
      this.chain = new ChainClient(this.bus, this.subjects, { chainKey: c.chain.publicKey ? parsePublicKey(c.chain.publicKey, "chain.publicKey") : undefined });
      this.backend = c.chain.url ? await this.tfchain(c.chain.url, this.chain) : new StandinBackend(this.chain);
      // the registry file (when there is one) first, then the chain (cached); tfchain stores
      // accounts, not schemes: its twins sign under either scheme
      const twinSchemes = c.chain.url ? "any" : "recorded";
      this.registry = new CompositeRegistry([this.registry, new ChainRegistry({ lookupsPerSecond: c.chain.lookupsPerSecond, twinSchemes }, { client: this.backend, logger: this.log, now: this.now, metrics: this.metrics })]);
    }
  }

  /**
   * The tfchain backend (chain.url). tfchain keeps no proof state: when a verifier
   * (`capacity-agent verifier`) answers the stand-in's chain.query subject on this NATS, proof
   * heads are read from it (an agent that lost its store goes on from the chain's last proof);
   * with no verifier on the bus, heads are unknown (undefined).
   */
  private async tfchain(url: string, client: ChainClient): Promise<ChainBackend> {
    const heads = async (nodeId: number): Promise<ChainProofHead | undefined> => {
      try {
        return await client.head(nodeId);
      } catch (err) {
        if (err instanceof ChainError && err.noResponders) return undefined;
        throw err;
      }
    };
    // loaded only here: @polkadot/api is heavy and agents on the stand-in never need it
    const { TfchainBackend } = require("./tfchain/backend") as typeof import("./tfchain/backend");
    try {
      // the proof remark in flight is kept in the data dir: after a crash it is resent as the same extrinsic (lands once)
      return await TfchainBackend.connect({ url, connectTimeoutMs: this.config.chain.connectTimeoutMs, inflightFile: path.join(this.config.dataDir, TFCHAIN_INFLIGHT_FILE) }, { logger: this.log, heads });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "chain_unavailable") {
        throw new AgentStartError("chain_unavailable", `${(err as Error).message} (chain.url / --chain-url; to run on the chain stand-in instead, drop it)`, { cause: err });
      }
      if (typeof code === "string") throw new AgentStartError(code, (err as Error).message, { cause: err });
      throw err;
    }
  }

  /**
   * A twin's grace ended while it is still in debt: delete its deployments on this node, as tfchain
   * deletes the contracts of a twin whose grace ended (docs/billing.md "Grace"). Each delete is
   * durable and frees its capacity (gossip announces it); a delete that cannot be written (full
   * disk) throws, so the twin is not marked done and the next tick tries again.
   */
  private async expireGrace(twinId: number): Promise<void> {
    for (const d of this.ledger.deployments().filter((r) => r.twinId === twinId)) {
      const t0 = performance.now();
      const r = await this.ledger.deleteDurably({ id: d.id, twinId });
      if (!r.ok) throw new AgentError(r.refusal.code, `deployment ${d.id} of twin ${twinId} could not be deleted: ${r.refusal.message}`);
      if (r.value.kind !== "delete") continue;
      this.api.decisions.record({ op: "delete", result: "delete", deploymentId: d.id, version: d.version, twinId, timeMs: this.now(), latencyUs: Math.round((performance.now() - t0) * 1000), reason: "grace_expired" });
      this.log.warn({ event: "grace_expired", twinId, deploymentId: d.id, version: d.version }, "the twin's grace ended while in debt: its deployment was deleted");
    }
  }

  private updateGauges(): void {
    const cap = this.ledger.capacity();
    const m = this.metrics.capacity;
    m.set("total", cap.total);
    m.set("reserved", cap.reserved);
    m.set("reservable", cap.reservable);
    m.set("used", this.ledger.used());
    m.set("free", this.ledger.free());
  }

  /** A looser mode found on one of the agent's files was tightened: say so once. */
  private readonly tightened: OnTightened = (file, from, to) =>
    this.log.warn({ event: "permissions_tightened", file, from: from.toString(8), to: to.toString(8) }, "tightened the permissions of an agent file");

  private onStoreFull(full: boolean, info: { file: string; err?: string }): void {
    if (full) {
      this.log.warn(
        { event: "store_full", code: "store_full", file: info.file, err: info.err },
        "the disk holding the store is full: new deployments, updates and deletes are refused with store_full, reads and gossip go on; free space on the data disk, the agent resumes by itself",
      );
    } else {
      this.log.info({ event: "store_recovered", file: info.file }, "the store can be written again; new work is accepted");
    }
  }

  async start(): Promise<void> {
    const c = this.config;
    // the data dir first: a read-only mount is named as such, and the dir is private (0700)
    ensurePrivateDir(c.dataDir, this.tightened);
    // one agent per data directory: a second one would answer every request too and write every
    // accepted change twice into reservation_events (what metering bills from)
    this.lock = DirLock.acquire(c.dataDir, "agent", `capacity-agent run (node ${c.nodeId})`, this.now);
    await this.identity();
    this.store = Store.open(c.dataDir, { onTightened: this.tightened, onFullChange: (full, info) => this.onStoreFull(full, info) });
    // a start on a full disk: the store is read but not written until there is room (logged as store_full)
    this.store.probe(this.now());
    this.probe = new SystemHardwareProbe(parseHardwareOptions(c.hardware), { logger: this.log });
    this.hardware = new HardwareMonitor(parseHardwareOptions(c.hardware), { probe: this.probe, logger: this.log });
    const report = await this.hardware.start();
    this.ledger = new Ledger({ power: c.power.state, rented: c.power.rented, policy: c.capacity }, { store: this.store, logger: this.log, now: this.now, metrics: this.metrics }, report.total);
    this.hardware.onChange((r: HardwareReport) => this.ledger.setTotal(r.total));
    this.ledger.onChange(() => this.updateGauges());
    this.powerMetrics.own = () => this.ledger.powerState();
    this.updateGauges();
    const cap = capacityOf(report.total, c.capacity);
    this.log.info(
      { event: "capacity_known", total: cap.total, reserved: cap.reserved, reservable: cap.reservable, used: this.ledger.used(), deployments: this.ledger.deployments().length },
      "capacity known",
    );
    const ssd = noSsdAdvice(report);
    if (ssd) this.log.warn({ event: "no_ssd_capacity", ...ssd }, "no SSD storage: VMs will not fit; if a disk is an SSD the kernel calls rotational (a VM's virtual disk), set a disk override");
    await this.connectNats();
    await this.learnIds(report.total);
    if (c.devIdentity && c.chain.enabled) {
      upsertRegistryFile(c.registryFile, { kind: "node", id: this.nodeId, farmId: c.farmId, twinId: this.twinId, publicKey: toHex(this.signer.publicKey), scheme: this.signer.scheme }, { replaceKey: true });
    }
    await this.checkSelf();
    // what the components see: the ids this node serves under
    const ec: AgentConfig = { ...c, nodeId: this.nodeId, twinId: this.twinId };
    this.api = new NodeApi(
      { nodeId: this.nodeId, farmId: c.farmId, twinId: this.twinId, maxRequestBytes: c.api.maxRequestBytes, deleteSkewMs: c.api.deleteSkewMs, limits: c.api.limits },
      { bus: this.bus, subjects: this.subjects, ledger: this.ledger, store: this.store, registry: this.registry, signer: this.signer, logger: this.log, metrics: this.metrics, now: this.now, usage: () => this.usage?.status() },
    );
    this.api.start();
    // Components built on the core (gossip, usage metering, chain registration) are created
    // here, after the core is up, one line each; they start in order and close in reverse.
    if (c.metrics.port !== null) {
      this.add(new MetricsServer({ host: c.metrics.host, port: c.metrics.port }, { registry: this.metrics.registry, logger: this.log, health: () => healthOf(busHealth(this.nc), c.chain.enabled ? chainHealthOf(this.usage?.status()) : null) }));
    }
    let sink: ProofSink | null = null;
    if (this.backend && this.link && this.chain) {
      const backend = this.backend;
      const link = this.link;
      this.hardware.onChange((r: HardwareReport) => link.setTotal(r.total));
      this.add(link);
      // who says which twins are in debt: the stand-in in its answer to each proof; on tfchain the
      // verifier, asked for its verdict, trusted only under the configured key (docs/billing.md "The verdict path")
      const judge = c.chain.url ? (c.chain.verifierKey ? new ChainClient(this.bus, this.subjects, { chainKey: parsePublicKey(c.chain.verifierKey, "chain.verifierKey") }) : null) : this.chain;
      if (c.chain.url && !judge) {
        this.log.warn({ event: "verifier_untrusted" }, "no verifier key configured (chain.verifierKey, --verifier-key): no verdict on this node's proofs is trusted, so on tfchain no twin is refused as in debt and no grace is enforced");
      } else if (c.chain.url) {
        this.log.info({ event: "verifier_trusted", verifierKey: c.chain.verifierKey }, "verdicts on this node's proofs are trusted from the verifier with this key");
      }
      sink = {
        head: (nodeId) => backend.head(nodeId),
        submitProof: async (envelope, twins) => {
          // the reply's twins in debt reach admission through UsageService.onTwinsInDebt
          const r = await backend.submitProof(this.signer, envelope, twins);
          // the chain lost this node (a new chain store): register again, the proof is retried
          if (!r.ok && r.code === "unknown_node") link.refresh();
          return r;
        },
        ...(c.chain.url && judge ? { verdict: (nodeId: number, sequence: number) => judge.verdict(nodeId, sequence) } : {}),
        ...(judge ? { debtOf: (twinId: number) => debtOf(judge, twinId) } : {}),
      };
    }
    this.usage = new UsageService(usageOptionsFrom(ec), {
      bus: this.bus, subjects: this.subjects, store: this.store, signer: this.signer, logger: this.log, metrics: this.metrics, now: this.now, sink,
      onTwinsInDebt: (ids) => this.ledger.setTwinsInDebt(ids),
      onGraceExpired: (twinId) => this.expireGrace(twinId),
    });
    this.add(this.usage);
    // wakes in progress: sent by the power service, announced by gossip (docs/power.md)
    const waking = c.power.manage ? new WakingBoard(this.now) : undefined;
    const gossip = new Gossip({ ...gossipOptionsFrom(ec), mac: c.power.mac || undefined, publicConfig: c.power.publicConfig }, { bus: this.bus, subjects: this.subjects, ledger: this.ledger, store: this.store, registry: this.registry, signer: this.signer, logger: this.log, metrics: this.metrics, now: this.now, waking: waking && { list: () => waking.list(), onChange: (fn) => waking.onChange(fn) } });
    this.add(gossip);
    if (c.power.manage) {
      const backend = this.backend;
      const signer = this.signer;
      const nodeId = this.nodeId;
      this.add(powerServiceFrom(ec, {
        bus: this.bus, subjects: this.subjects, signer, registry: this.registry, source: this.ledger, logger: this.log, now: this.now, waking, metrics: this.powerMetrics,
        peers: () => gossip.view.peers().map((p) => p.announcement),
        farmerKey: c.power.farmerKey ? parsePublicKey(c.power.farmerKey, "power.farmerKey") : undefined,
        farmTwin: async () => c.power.farmerTwinId ?? (backend ? (await backend.farm(c.farmId).catch(() => undefined))?.twinId : undefined),
        reportPower: backend?.reportPower
          ? async (state) => {
              const r = await backend.reportPower!(signer, nodeId, state);
              if (!r.ok) throw Object.assign(new Error(`${r.code}: ${r.message}`), { code: r.code });
            }
          : undefined,
      }));
    }
    for (const comp of this.components) await comp.start();
    await this.nc.flush();
    this.log.info({ event: "agent_started", nodeId: this.nodeId, twinId: this.twinId, farmId: c.farmId, address: this.signer.address, nats: this.natsUrl, data: c.dataDir }, "agent started");
  }

  /** Register a component; it starts after the core and closes before it. */
  add(component: Component): void {
    this.components.push(component);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const quiet = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.debug({ event: "shutdown_error", what, err: String(err) }, "error during shutdown");
      }
    };
    for (const comp of [...this.components].reverse()) await quiet("component", () => comp.close());
    if (this.api) await quiet("api", () => this.api.close());
    if (this.backend) await quiet("chain backend", () => this.backend?.close());
    if (this.nc) await quiet("nats", () => this.nc.drain());
    if (this.hardware) await quiet("hardware", () => this.hardware.close());
    if (this.probe) await quiet("probe", () => this.probe?.close());
    if (this.store) await quiet("store", () => this.store.close());
    if (this.embedded) await quiet("embedded nats", () => this.embedded?.stop());
    if (this.natsUrlFile && this.embedded) removeNatsUrlFile(this.natsUrlFile, this.embedded.url);
    if (this.lock) await quiet("lock", () => this.lock?.release());
    this.log.info({ event: "agent_stopped" }, "agent stopped");
  }
}
