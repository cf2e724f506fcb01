import * as fs from "node:fs";
import * as path from "node:path";
import { Ledger } from "./admission/ledger";
import { NodeApi } from "./api/server";
import { busHealth, connectBus, findNatsServer, natsAnswers, startEmbeddedNats, type EmbeddedNats, type NatsConnection } from "./bus/nats";
import { Subjects } from "./bus/subjects";
import { removeNatsUrlFile, writeNatsUrlFile } from "./bus/url-file";
import { capacityOf } from "./capacity/model";
import type { AgentConfig } from "./config/options";
import { HardwareMonitor, SystemHardwareProbe, noSsdAdvice, parseHardwareOptions, type HardwareReport } from "./hardware";
import { createKeyFile, loadKeyFile, parsePublicKey, toHex, type Signer } from "./identity/keys";
import type { Logger } from "./log/logger";
import { createMetrics, type Metrics } from "./metrics/metrics";
import { MetricsServer } from "./metrics/http";
import { chainHealthOf, healthOf } from "./metrics/health";
import { Gossip, gossipOptionsFrom } from "./gossip";
import { FileRegistry, upsertRegistryFile } from "./registry/file";
import { ChainClient } from "./chain/client";
import { ChainLink, CHAIN_LINK_RETRY } from "./chain/link";
import { ChainRegistry, CompositeRegistry } from "./chain/registry";
import { UsageService, usageOptionsFrom, type ProofSink } from "./usage/service";
import type { Registry } from "./registry/types";
import { Store } from "./store/store";
import { UNIT_NAMES } from "./capacity/units";

/** A long-lived part of the agent that starts after the core and closes before it. */
export interface Component {
  start(): Promise<void> | void;
  close(): Promise<void> | void;
}

export class AgentStartError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentStartError";
    this.code = code;
  }
}

/**
 * The agent: wires identity, store, hardware, admission and the node API to NATS. Pure logic
 * lives in the modules; this class only builds them, in order, and closes them in reverse.
 */
export class Agent {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly subjects: Subjects;
  signer!: Signer;
  registry!: Registry;
  store!: Store;
  ledger!: Ledger;
  hardware!: HardwareMonitor;
  nc!: NatsConnection;
  api!: NodeApi;
  /** the chain client (null when chain.enabled is false) */
  chain: ChainClient | null = null;
  usage!: UsageService;
  natsUrl = "";
  /** <dataDir>/nats.url, written while an embedded nats-server runs (null otherwise) */
  natsUrlFile: string | null = null;
  private embedded: EmbeddedNats | null = null;
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
    if (c.devIdentity) {
      upsertRegistryFile(c.registryFile, { kind: "node", id: c.nodeId, farmId: c.farmId, twinId: c.twinId, publicKey: toHex(this.signer.publicKey), scheme: this.signer.scheme });
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
    const self = await this.registry.node(c.nodeId);
    if (!self) {
      if (!c.chain.enabled) this.log.warn({ event: "node_not_registered", nodeId: c.nodeId, registry: c.registryFile }, "this node is not in the registry; peers will not trust its announcements");
    } else if (toHex(self.publicKey) !== toHex(this.signer.publicKey)) {
      throw new AgentStartError("key_mismatch", `the registry binds node ${c.nodeId} to another key than ${c.keyFile}`);
    }
  }

  private async bus(): Promise<void> {
    const c = this.config;
    let servers = c.nats.servers;
    if (c.nats.embedded && !(await natsAnswers(servers[0], 1000))) {
      const bin = findNatsServer();
      if (!bin) {
        throw new AgentStartError(
          "nats_unavailable",
          `nothing answers at ${servers[0]} and no nats-server binary was found. Start one (apt-get install nats-server, then: nats-server -js) or pass --nats URL`,
        );
      }
      this.log.info({ event: "nats_not_found", url: servers[0] }, "no NATS server answers; starting an embedded one");
      this.embedded = await startEmbeddedNats(bin, path.join(c.dataDir, "nats"), this.log);
      servers = [this.embedded.url];
      // client commands in this directory find the server through this file (or the export line)
      this.natsUrlFile = writeNatsUrlFile(c.dataDir, this.embedded.url);
      this.log.info({ event: "nats_url_written", file: this.natsUrlFile, url: this.embedded.url, export: `export CAPACITY_AGENT_NATS=${this.embedded.url}` }, "client commands find the embedded NATS server through this file");
    }
    try {
      this.nc = await connectBus({ servers, name: `capacity-agent node ${c.nodeId}` }, this.log);
    } catch (err) {
      throw new AgentStartError("nats_unavailable", `cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message}`, { cause: err });
    }
    this.natsUrl = this.nc.getServer();
    if (c.chain.enabled) {
      this.chain = new ChainClient(this.nc, this.subjects, { chainKey: c.chain.publicKey ? parsePublicKey(c.chain.publicKey, "chain.publicKey") : undefined });
      // the registry file (when there is one) first, then the chain (cached)
      this.registry = new CompositeRegistry([this.registry, new ChainRegistry({}, { client: this.chain, logger: this.log, now: this.now })]);
    }
  }

  private updateGauges(): void {
    const used = this.ledger.used();
    const free = this.ledger.free();
    for (const u of UNIT_NAMES) {
      this.metrics.used.set({ unit: u }, used[u]);
      this.metrics.free.set({ unit: u }, free[u]);
    }
  }

  async start(): Promise<void> {
    const c = this.config;
    await this.identity();
    this.store = Store.open(c.dataDir);
    this.probe = new SystemHardwareProbe(parseHardwareOptions(c.hardware), { logger: this.log });
    this.hardware = new HardwareMonitor(parseHardwareOptions(c.hardware), { probe: this.probe, logger: this.log });
    const report = await this.hardware.start();
    this.ledger = new Ledger({ power: c.power.state, rented: c.power.rented, policy: c.capacity }, { store: this.store, logger: this.log, now: this.now, metrics: this.metrics }, report.total);
    this.hardware.onChange((r: HardwareReport) => this.ledger.setTotal(r.total));
    this.ledger.onChange(() => this.updateGauges());
    this.updateGauges();
    const cap = capacityOf(report.total, c.capacity);
    this.log.info(
      { event: "capacity_known", total: cap.total, reserved: cap.reserved, reservable: cap.reservable, used: this.ledger.used(), deployments: this.ledger.deployments().length },
      "capacity known",
    );
    const ssd = noSsdAdvice(report);
    if (ssd) this.log.warn({ event: "no_ssd_capacity", ...ssd }, "no SSD storage: VMs will not fit; if a disk is an SSD the kernel calls rotational (a VM's virtual disk), set a disk override");
    await this.bus();
    this.api = new NodeApi(
      { nodeId: c.nodeId, farmId: c.farmId, twinId: c.twinId, maxRequestBytes: c.api.maxRequestBytes, deleteSkewMs: c.api.deleteSkewMs },
      { nc: this.nc, subjects: this.subjects, ledger: this.ledger, store: this.store, registry: this.registry, signer: this.signer, logger: this.log, metrics: this.metrics, now: this.now, usage: () => this.usage?.status() },
    );
    this.api.start();
    // Components built on the core (gossip, usage metering, chain registration) are created
    // here, after the core is up, one line each; they start in order and close in reverse.
    if (c.metrics.port !== null) {
      this.add(new MetricsServer({ host: c.metrics.host, port: c.metrics.port }, { registry: this.metrics.registry, logger: this.log, health: () => healthOf(busHealth(this.nc), c.chain.enabled ? chainHealthOf(this.usage?.status()) : null) }));
    }
    // --- components: begin ---
    let sink: ProofSink | null = null;
    if (this.chain) {
      const chain = this.chain;
      const link = new ChainLink({ nodeId: c.nodeId, farmId: c.farmId, twinId: c.twinId, ...CHAIN_LINK_RETRY }, { client: chain, signer: this.signer, logger: this.log, total: report.total });
      this.hardware.onChange((r: HardwareReport) => link.setTotal(r.total));
      this.add(link);
      sink = {
        head: (nodeId) => chain.head(nodeId),
        submitProof: async (envelope) => {
          const r = await chain.submitProof(envelope);
          // the chain lost this node (a new chain store): register again, the proof is retried
          if (!r.ok && r.code === "unknown_node") link.refresh();
          return r;
        },
      };
    }
    this.usage = new UsageService(usageOptionsFrom(c), { nc: this.nc, subjects: this.subjects, store: this.store, signer: this.signer, logger: this.log, metrics: this.metrics, now: this.now, sink });
    this.add(this.usage);
    this.add(new Gossip(gossipOptionsFrom(c), { nc: this.nc, subjects: this.subjects, ledger: this.ledger, store: this.store, registry: this.registry, signer: this.signer, logger: this.log, metrics: this.metrics, now: this.now }));
    // --- components: end ---
    for (const comp of this.components) await comp.start();
    await this.nc.flush();
    this.log.info({ event: "agent_started", nodeId: c.nodeId, farmId: c.farmId, address: this.signer.address, nats: this.natsUrl, data: c.dataDir }, "agent started");
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
    if (this.nc) await quiet("nats", () => this.nc.drain());
    if (this.hardware) await quiet("hardware", () => this.hardware.close());
    if (this.probe) await quiet("probe", () => this.probe?.close());
    if (this.store) await quiet("store", () => this.store.close());
    if (this.embedded) await quiet("embedded nats", () => this.embedded?.stop());
    if (this.natsUrlFile && this.embedded) removeNatsUrlFile(this.natsUrlFile, this.embedded.url);
    this.log.info({ event: "agent_stopped" }, "agent stopped");
  }
}
