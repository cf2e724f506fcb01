/**
 * `scripts/chain-footprint --real`: the footprint of usage reporting MEASURED on the real tfchain
 * runtime (spec 49 under chopsticks, started by scripts/tfchain-dev on a free port), per node-day,
 * for D deployments per node:
 *   (a) today's way: D x createNodeContract (once, shown apart), and per day 1 x
 *       reportContractResources (D entries), 24 x addNruReports (D entries), 36 x reportUptime,
 *       and the billing the runtime does by itself in its blocks (measured over --billing-blocks
 *       blocks, scaled to a day of 14,400 six-second blocks);
 *   (b) ours: one system.remark per node and period carrying the signed proof envelope (24 a day),
 *       plus the registration (twin + node, once).
 * Bytes are read back from the runtime: block bytes = the signed extrinsics' encoded length in the
 * block bodies; events = the encoded EventRecords of those extrinsics (and of block
 * initialization/finalization, where billing happens); state = storage entries of TfgridModule and
 * SmartContractModule written (key + value per new or changed entry, per block, i.e. per extrinsic
 * or billing block; overwrites counted) and grown (net bytes), read from each block's own storage
 * diff (dev_storageDiff of scripts/tfchain-dev). Fee bookkeeping (System.Account, Balances) is left
 * out on both sides.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as path from "node:path";
import { xxhashAsHex } from "@polkadot/util-crypto";
import { freePort } from "../../agent/bus/nats";
import { GiB, zeroUnits, type Units } from "../../agent/capacity/units";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { encodeProofHeader, type ProofHeader } from "../../agent/proofs/proof";
import { TfchainBackend } from "../../agent/tfchain/backend";
import type { CallIntent } from "../../agent/tfchain/calls";
import { fundAccounts, PLANCK_PER_TFT } from "../../agent/tfchain/dev";
import { BLOCKS_PER_DAY, DEFAULT_NRU_REPORTS_PER_DAY, DEFAULT_RESOURCE_REPORTS_PER_DAY, DEFAULT_UPTIME_REPORTS_PER_DAY, tfchainModel } from "./model";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const DEV = path.join(ROOT, "dist", "scripts", "tfchain-dev.js");
const PROOFS_PER_DAY = 24;

/** Bytes measured for a set of extrinsics (or blocks). */
export interface Bytes {
  extrinsics: number;
  blockBytes: number;
  events: number;
  eventBytes: number;
  writes: number;
  writtenBytes: number;
  grownBytes: number;
}

const zero = (): Bytes => ({ extrinsics: 0, blockBytes: 0, events: 0, eventBytes: 0, writes: 0, writtenBytes: 0, grownBytes: 0 });
function add(a: Bytes, b: Bytes): Bytes {
  const r = zero();
  for (const k of Object.keys(r) as Array<keyof Bytes>) r[k] = a[k] + b[k];
  return r;
}
function scale(a: Bytes, f: number): Bytes {
  const r = zero();
  for (const k of Object.keys(r) as Array<keyof Bytes>) r[k] = Math.round(a[k] * f);
  return r;
}

class Meter {
  private readonly prefixes: string[];
  constructor(private readonly b: TfchainBackend) {
    this.prefixes = ["TfgridModule", "SmartContractModule"].map((p) => xxhashAsHex(p, 128));
  }

  async head(): Promise<number> {
    return (await this.b.api.rpc.chain.getHeader()).number.toNumber();
  }

  /**
   * Bytes of blocks from+1..to: signed extrinsics, their events and init/finalization events, and
   * the state each block wrote under the measured pallets (scripts/tfchain-dev's dev_storageDiff:
   * key + value of each new or changed entry, the value before it for the growth). One extrinsic
   * per block (instant block building), so a block's writes are its extrinsic's plus the block's
   * own (billing in on_finalize); an entry rewritten in several blocks is counted in each.
   */
  async blocks(from: number, to: number): Promise<Bytes> {
    const api = this.b.api;
    const r = zero();
    for (let n = from + 1; n <= to; n++) {
      const hash = await api.rpc.chain.getBlockHash(n);
      const block = await api.rpc.chain.getBlock(hash);
      const signed = new Set<number>();
      block.block.extrinsics.forEach((x, i) => {
        if (!x.isSigned) return;
        signed.add(i);
        r.extrinsics++;
        r.blockBytes += x.encodedLength;
      });
      const events = (await (await api.at(hash)).query.system.events()) as unknown as Array<{ phase: { isApplyExtrinsic: boolean; asApplyExtrinsic: { toNumber(): number } }; toU8a(): Uint8Array }>;
      for (const e of events) {
        if (e.phase.isApplyExtrinsic && !signed.has(e.phase.asApplyExtrinsic.toNumber())) continue; // inherents (timestamp)
        r.events++;
        r.eventBytes += e.toU8a().length;
      }
      const diff = (await api.rpc("dev_storageDiff" as never, hash.toHex() as never, this.prefixes as never)) as unknown as Array<[string, string | null, string | null]>;
      for (const [k, now, old] of diff) {
        const keyBytes = (k.length - 2) / 2;
        const len = (v: string | null): number => (v === null ? 0 : (v.length - 2) / 2);
        if (now === null) {
          r.grownBytes -= keyBytes + len(old); // removed
          continue;
        }
        r.writes++;
        r.writtenBytes += keyBytes + len(now);
        r.grownBytes += old === null ? keyBytes + len(now) : len(now) - len(old);
      }
    }
    return r;
  }

  /** Submit each intent (signed by `who`), and measure the blocks they made. */
  async run(who: Signer, intents: CallIntent[]): Promise<Bytes> {
    const from = await this.head();
    for (const intent of intents) {
      const r = await this.b.submit(who, intent);
      if (!r.ok) throw new Error(`${intent.section}.${intent.method}: [${r.refusal.code}] ${r.refusal.message}`);
    }
    return this.blocks(from, await this.head());
  }

  /** Build `count` empty blocks (the runtime's own work: billing) and measure them. */
  async idle(count: number): Promise<Bytes> {
    const from = await this.head();
    // in small steps: one RPC call must answer within the provider timeout
    for (let left = count; left > 0; left -= 10) await this.b.api.rpc("dev_newBlock" as never, { count: Math.min(10, left) } as never);
    return this.blocks(from, await this.head());
  }
}

function key(scheme: "ed25519" | "sr25519"): Signer {
  return signerFromSeed(scheme, new Uint8Array(crypto.randomBytes(32)));
}

const resources: Units = { ...zeroUnits(), cru: 32, mru: 256 * GiB, sru: 4096 * GiB, hru: 16384 * GiB };

/** A proof envelope of the size the agent sends (totals of the magnitudes a day of D deployments gives). */
function proofEnvelope(node: Signer, nodeId: number, farmId: number, sequence: number, D: number): Uint8Array {
  const hour = 3_600_000;
  const start = Date.now() - 48 * hour + sequence * hour;
  const h: ProofHeader = {
    nodeId,
    farmId,
    sequence,
    periodStartMs: start,
    periodEndMs: start + hour,
    previousHash: new Uint8Array(crypto.randomBytes(32)),
    recordCount: D,
    totals: {
      cruSeconds: BigInt(D * 2 * 3600),
      mruByteSeconds: BigInt(D) * 4n * BigInt(GiB) * 3600n,
      sruByteSeconds: BigInt(D) * 50n * BigInt(GiB) * 3600n,
      hruByteSeconds: 0n,
      ipv4Seconds: 0n,
      gpuSeconds: 0n,
      nuBytes: BigInt(D) * 100_000_000n,
      cuMicroHours: BigInt(D) * 1_000_000n,
      suMicroHours: BigInt(D) * 250_000n,
    },
    recordsRoot: new Uint8Array(crypto.randomBytes(32)),
    downtimeMs: 0,
  };
  return seal(node, DOMAIN.UsageProof, encodeProofHeader(h));
}

export async function startChain(spec: string | undefined): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const args = [DEV, "--port", String(port), ...(spec ? ["--spec", spec] : [])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^(ws:\/\/\S+)$/m.exec(out);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(code === 2 ? err.trim() : `tfchain-dev exited (${code}): ${err}`)));
  });
  return { url, child };
}

export interface RealRow {
  deployments: number;
  today: { resources: Bytes; nru: Bytes; uptime: Bytes; billing: Bytes; total: Bytes; contractsOnce: Bytes };
  ours: { proofs: Bytes; registrationOnce: Bytes; total: Bytes };
  model: { stored: number; emitted: number };
}

/**
 * Measure today's way and ours for each D in `deployments` on the runtime `chain` runs (started by
 * startChain; stopped when done), the runtime's billing over `billingBlocks` blocks. Progress goes
 * to stderr.
 */
export async function measureReal(chain: { url: string; child: ChildProcess }, deployments: readonly number[], billingBlocks: number): Promise<RealRow[]> {
  const log = (s: string): void => void process.stderr.write(`chain-footprint: ${s}\n`);
  // connectTimeoutMs is also the RPC timeout: storage snapshots of D = 100 take longer than the default 15 s under load
  const backend = await TfchainBackend.connect({ url: chain.url, inclusionTimeoutMs: 120_000, connectTimeoutMs: 120_000 }, { logger: silentLogger() });
  const rows: RealRow[] = [];
  try {
    const meter = new Meter(backend);
    const farmer = key("sr25519");
    await fundAccounts(chain.url, [farmer.address], 10_000n * PLANCK_PER_TFT);
    const t = await backend.ensureTwin(farmer);
    const f = t.ok ? await backend.ensureFarm(farmer, `footprint-${crypto.randomBytes(3).toString("hex")}`) : t;
    if (!f.ok) throw new Error(`farm: [${f.code}] ${f.message}`);
    const farmId = f.id;
    for (const D of deployments) {
      log(`D=${D}: registering a node and a deployer, creating ${D} contracts`);
      const node = key("ed25519");
      const user = key("sr25519");
      await fundAccounts(chain.url, [node.address, user.address], 100_000n * PLANCK_PER_TFT);
      // (b) registration of the node, measured: twin (userAcceptTc, createTwin) and createNode
      const tc = await meter.run(node, [
        { section: "tfgridModule", method: "userAcceptTc", values: { document_link: "https://library.threefold.me/info/legal/", document_hash: "capacity-agent" } },
        { section: "tfgridModule", method: "createTwin", values: { ip: "::1" } },
      ]);
      const twinId = (await backend.twinIdOf(node.address))!;
      const before = await meter.head();
      const reg = await backend.ensureNode(node, { farmId, total: resources });
      if (!reg.ok) throw new Error(`node: [${reg.code}] ${reg.message}`);
      const nodeId = reg.id;
      // createNode through the backend (the agent's own path), measured from its blocks
      const registrationOnce = add(tc, await meter.blocks(before, await meter.head()));
      void twinId;
      await backend.ensureTwin(user);
      const contractsOnce = await meter.run(
        user,
        Array.from({ length: D }, () => ({ section: "smartContractModule", method: "createNodeContract", values: { node_id: nodeId, data: "0x" + crypto.randomBytes(64).toString("hex"), deployment_hash: crypto.randomBytes(16).toString("hex"), public_ips: 0 } })),
      );
      const ids = (await backend.api.query.smartContractModule.activeNodeContracts(nodeId)) as unknown as Array<{ toNumber(): number }>;
      const contractIds = Array.from(ids).map((c) => c.toNumber());
      if (contractIds.length !== D) throw new Error(`expected ${D} active contracts on node ${nodeId}, the chain has ${contractIds.length}`);
      log(`D=${D}: a day of reports (${DEFAULT_RESOURCE_REPORTS_PER_DAY} resources, ${DEFAULT_NRU_REPORTS_PER_DAY} NRU, ${DEFAULT_UPTIME_REPORTS_PER_DAY} uptime)`);
      const used = { hru: 0, sru: 50 * GiB, cru: 2, mru: 4 * GiB };
      const res = await meter.run(node, [{ section: "smartContractModule", method: "reportContractResources", values: { contract_resources: contractIds.map((id) => ({ contract_id: id, used })) } }]);
      const nowS = Math.floor(Date.now() / 1000);
      const nru = await meter.run(
        node,
        Array.from({ length: DEFAULT_NRU_REPORTS_PER_DAY }, (_, h) => ({ section: "smartContractModule", method: "addNruReports", values: { reports: contractIds.map((id) => ({ contract_id: id, timestamp: nowS + h * 3600, window: 3600, nru: 100_000_000 })) } })),
      );
      const uptime = await meter.run(
        node,
        Array.from({ length: DEFAULT_UPTIME_REPORTS_PER_DAY }, (_, i) => ({ section: "tfgridModule", method: "reportUptime", values: { uptime: 2400 * (i + 1) } })),
      );
      log(`D=${D}: ${billingBlocks} blocks of the runtime's own billing`);
      const billingMeasured = await meter.idle(billingBlocks);
      const billing = scale(billingMeasured, BLOCKS_PER_DAY / billingBlocks);
      const total = add(add(add(res, nru), uptime), billing);
      log(`D=${D}: ${PROOFS_PER_DAY} proof remarks`);
      const proofs = await meter.run(
        node,
        Array.from({ length: PROOFS_PER_DAY }, (_, i) => ({ section: "system", method: "remark", values: { remark: "0x" + Buffer.from(proofEnvelope(node, nodeId, farmId, i + 1, D)).toString("hex") } })),
      );
      const m = tfchainModel(D).total;
      const row: RealRow = { deployments: D, today: { resources: res, nru, uptime, billing, total, contractsOnce }, ours: { proofs, registrationOnce, total: proofs }, model: { stored: m.stored, emitted: m.emitted } };
      rows.push(row);
      // each row as soon as it is measured (a long run that fails later keeps what it measured)
      log(`D=${D} measured: ${JSON.stringify(row)}`);
    }
  } finally {
    await backend.close();
    chain.child.kill("SIGTERM");
  }
  return rows;
}
