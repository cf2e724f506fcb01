import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ChainMetrics } from "../../agent/authority/metrics";
import { parseChainOptions } from "../../agent/authority/options";
import { ChainServer } from "../../agent/authority/server";
import { ChainStore } from "../../agent/authority/store";
import { natsBus } from "../../agent/bus/nats";
import { Subjects } from "../../agent/bus/subjects";
import { signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";

export interface InProcessChainOptions {
  /** the chain's options as `capacity-agent chain` parses them (default: the defaults) */
  options?: Parameters<typeof parseChainOptions>[0];
  metrics?: ChainMetrics | null;
  /** the chain's key (default: a new ed25519 key) */
  key?: Signer;
  subjects?: Subjects;
  dirPrefix?: string;
}

/**
 * The chain stand-in inside the test process: a ChainServer on a real ChainStore in a new
 * directory, serving over its own connection to a real nats-server. close() then open() again is a
 * restart on the same store; stop() ends it and removes the directory.
 */
export class InProcessChain {
  store!: ChainStore;
  server!: ChainServer;

  private constructor(
    readonly dir: string,
    readonly key: Signer,
    private readonly nc: NatsConnection,
    private readonly opts: InProcessChainOptions,
  ) {}

  static async start(natsUrl: string, opts: InProcessChainOptions = {}): Promise<InProcessChain> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.dirPrefix ?? "chain-"));
    const chain = new InProcessChain(dir, opts.key ?? signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32))), await connect({ servers: natsUrl }), opts);
    await chain.open();
    return chain;
  }

  /** Open the store and serve. */
  async open(): Promise<void> {
    this.store = ChainStore.open(this.dir);
    this.server = new ChainServer(parseChainOptions(this.opts.options), {
      bus: natsBus(this.nc),
      subjects: this.opts.subjects ?? new Subjects(),
      signer: this.key,
      store: this.store,
      logger: silentLogger(),
      metrics: this.opts.metrics ?? null,
      now: Date.now,
    });
    await this.server.start();
  }

  /** Stop serving and close the store (the directory stays, for open()). */
  async close(): Promise<void> {
    await this.server.close();
    this.store.close();
  }

  async stop(): Promise<void> {
    await this.close();
    await this.nc.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
