import * as fs from "node:fs";
import * as path from "node:path";
import type { Bus, BusMessage, BusSubscription } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { unitsEqual } from "../capacity/units";
import { MAX_TWINS_PER_PROOF } from "./billing";
import { initialNodeState, type ChainNodeRecord } from "./rules";
import type { ChainServer } from "./server";
import type { ChainStore } from "./store";
import { DOMAIN } from "../identity/domains";
import { open, sameKey } from "../identity/envelope";
import { schemeFromWire } from "../identity/keys";
import type { Logger } from "../log/logger";
import { decodeProofHeader, type ProofHeader } from "../proofs/proof";
import { decode } from "../wire/codec";
import type { TfchainBackend } from "../tfchain/backend";
import { TfchainError } from "../tfchain/errors";
import { readFarmPricing } from "../tfchain/pricing";
import { decodeTwinSubtotal } from "../billing/twins";

/** A remark that is a proof envelope, as taken from a block. */
export interface ProofRemark {
  bytes: Uint8Array;
  header: ProofHeader;
  signer: Uint8Array;
  scheme: "ed25519" | "sr25519";
  /** the twin subtotals the header commits to, when the remark is a ProofSubmission (billing); judged as proof.settle */
  twins?: Uint8Array[];
}

/**
 * Pure: the remark's bytes as a proof envelope, or undefined when they are not one (any other
 * remark: most remarks on a chain are not proofs and are skipped without a word). An envelope
 * with a bad signature IS returned: judging it (bad_signature) is the rules' job.
 */
export function proofRemark(bytes: Uint8Array, maxBytes = 64 * 1024): ProofRemark | undefined {
  const direct = envelopeRemark(bytes, maxBytes);
  if (direct) return direct;
  // a proof with the twin subtotals its header commits to (billing, docs/billing.md): the
  // ProofSubmission of chain.proof.settle, as one remark
  let sub: { proof: Uint8Array; twins: Uint8Array[] };
  try {
    sub = decode("ProofSubmission", bytes, { maxBytes: maxBytes + MAX_TWINS_PER_PROOF * 128, maxRepeated: MAX_TWINS_PER_PROOF });
  } catch {
    return undefined;
  }
  if (!sub.proof || sub.proof.length === 0) return undefined;
  const p = envelopeRemark(new Uint8Array(sub.proof), maxBytes);
  return p && { ...p, bytes, twins: (sub.twins ?? []).map((t) => new Uint8Array(t)) };
}

function envelopeRemark(bytes: Uint8Array, maxBytes: number): ProofRemark | undefined {
  const o = open(bytes, DOMAIN.UsageProof, { maxBytes });
  let env: { payload: Uint8Array; signer: Uint8Array; scheme: "ed25519" | "sr25519" } | undefined;
  if (o.ok) env = o.value;
  else if (o.refusal.code === "bad_signature") {
    // parse again without the signature check failing the parse: the envelope's fields are what matter here
    try {
      const raw = decode("Signed", bytes, { maxBytes, maxRepeated: 0 });
      env = { payload: new Uint8Array(raw.payload), signer: new Uint8Array(raw.signer), scheme: schemeFromWire(raw.scheme) ?? "ed25519" };
    } catch {
      return undefined;
    }
  } else return undefined;
  try {
    return { bytes, header: decodeProofHeader(env.payload), signer: env.signer, scheme: env.scheme };
  } catch {
    return undefined;
  }
}

export interface VerifierModules {
  backend: TfchainBackend;
  store: ChainStore;
  /** the stand-in's server, not started: the verifier feeds it proofs from blocks and queries from NATS */
  server: ChainServer;
  bus: Bus;
  subjects: Subjects;
  logger: Logger;
  /** set to each block's timestamp before its proofs are judged (the server's `now`) */
  setNow: (ms: number) => void;
  /** mUSD per TFT when the runtime has no TFT price (tfchain/pricing.ts; default 1000) */
  fallbackTftPriceMusd?: number;
}

/** Where the verifier is: the chain it follows and the last block it judged. */
interface Cursor {
  genesis: string;
  lastBlock: number;
}

export const VERIFIER_CURSOR_FILE = "verifier-cursor.json";

/**
 * Follows tfchain's finalized blocks and judges every remark that is a usage-proof envelope with
 * the stand-in's rules (agent/authority/rules.ts through ChainServer.handle: signature by the node's
 * key as the chain binds it, sequence, contiguous period, previous hash, capacity), in block order.
 * It keeps what the stand-in keeps (ChainStore: one entry per node with its proof head, and the
 * accepted proof headers) and answers the stand-in's `query` subject, so `proofs list/show/verify`
 * work against it unchanged. The node's key, farm, twin and capacity come from tfchain storage.
 *
 * This is what a tfchain validator (or a proof pallet) would run; docs/tfchain.md.
 */
export class ProofVerifier {
  private readonly log: Logger;
  private sub: BusSubscription | null = null;
  private unsubHeads: (() => void) | null = null;
  private cursor: Cursor | null = null;
  private target = 0;
  private running: Promise<void> | null = null;
  private closed = false;
  readonly counts = { blocks: 0, accepted: 0, refused: 0 };

  constructor(
    private readonly dataDir: string,
    private readonly m: VerifierModules,
  ) {
    this.log = m.logger.child({ module: "verifier" });
  }

  private cursorFile(): string {
    return path.join(this.dataDir, VERIFIER_CURSOR_FILE);
  }

  private loadCursor(genesis: string): Cursor {
    const file = this.cursorFile();
    if (!fs.existsSync(file)) return { genesis, lastBlock: 0 };
    let c: Partial<Cursor>;
    try {
      c = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Cursor>;
    } catch (err) {
      throw new TfchainError("invalid_options", `${file} is not valid JSON; remove it (and chain.db) to judge the chain from block 1 again`, { cause: err });
    }
    if (c.genesis !== genesis) {
      throw new TfchainError("invalid_options", `${this.dataDir} holds the proofs of another chain (genesis ${c.genesis}, this one ${genesis}); use another --data directory`);
    }
    if (typeof c.lastBlock !== "number" || !Number.isSafeInteger(c.lastBlock) || c.lastBlock < 0) throw new TfchainError("invalid_options", `${file}: lastBlock is not a block number`);
    return { genesis, lastBlock: c.lastBlock };
  }

  private saveCursor(): void {
    const file = this.cursorFile();
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.cursor) + "\n");
    fs.renameSync(tmp, file);
  }

  /** Answer queries, judge the blocks finalized so far, then follow new ones. */
  async start(): Promise<void> {
    const api = this.m.backend.api;
    const genesis = (await api.query.system.blockHash(0)).toHex();
    this.cursor = this.loadCursor(genesis);
    const subject = this.m.subjects.chain("query");
    this.sub = this.m.bus.subscribe(subject, { callback: (err, msg) => (err ? undefined : this.answer(msg)) });
    await this.m.bus.flush();
    const unsub = await api.rpc.chain.subscribeFinalizedHeads((h) => {
      this.target = Math.max(this.target, h.number.toNumber());
      this.kick();
    });
    this.unsubHeads = unsub;
    this.log.info({ event: "verifier_started", fromBlock: this.cursor.lastBlock + 1, subject, runtime: this.m.backend.runtime() }, "verifier following the chain");
  }

  private answer(msg: BusMessage): void {
    try {
      msg.respond(this.m.server.handle("query", msg.data));
    } catch (err) {
      this.log.debug({ event: "verifier_reply_failed", err: String(err) }, "could not reply");
    }
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.catchUp()
      .catch((err: unknown) => {
        if (!this.closed) this.log.error({ event: "verifier_block_failed", err: (err as Error).message }, "a block could not be judged; retrying on the next head");
      })
      .finally(() => {
        this.running = null;
        if (!this.closed && this.cursor && this.cursor.lastBlock < this.target) setTimeout(() => this.kick(), 1000).unref();
      });
  }

  private async catchUp(): Promise<void> {
    const api = this.m.backend.api;
    while (!this.closed && this.cursor && this.cursor.lastBlock < this.target) {
      const n = this.cursor.lastBlock + 1;
      const hash = await api.rpc.chain.getBlockHash(n);
      const signed = await api.rpc.chain.getBlock(hash);
      let nowMs = 0;
      const remarks: Uint8Array[] = [];
      for (const x of signed.block.extrinsics) {
        const { section, method } = x.method;
        if (section === "timestamp" && method === "set") nowMs = Number(x.method.args[0].toString());
        else if (section === "system" && (method === "remark" || method === "remarkWithEvent")) remarks.push((x.method.args[0] as unknown as { toU8a(bare: boolean): Uint8Array }).toU8a(true));
      }
      for (const bytes of remarks) await this.judge(bytes, nowMs, n);
      this.cursor.lastBlock = n;
      this.counts.blocks++;
      this.saveCursor();
    }
  }

  /** Judge one remark found in block `blockNumber` (timestamp `nowMs`). */
  async judge(bytes: Uint8Array, nowMs: number, blockNumber: number): Promise<{ ok: boolean; code: string } | undefined> {
    const p = proofRemark(bytes);
    if (!p) return undefined;
    await this.mirrorNode(p, nowMs);
    this.m.setNow(nowMs);
    if (p.twins) await this.prepareCharges(p, nowMs);
    const reply = this.m.server.handle(p.twins ? "proof.settle" : "proof.submit", bytes);
    const o = open(reply, DOMAIN.ChainReply);
    if (!o.ok) throw new TfchainError("bad_reply", `the rules answered with an envelope that does not open: ${o.refusal.message}`);
    const r = decode("ChainReply", o.value.payload, { maxBytes: 1 << 20, maxRepeated: 1000 });
    const code = r.ok ? "ok" : (r.rejection?.code ?? "refused");
    if (r.ok) this.counts.accepted++;
    else this.counts.refused++;
    // kept for the node, which learns only "in a block" from tfchain and asks for this (docs/billing.md "The verdict path")
    if (code !== "duplicate") this.m.store.putVerdict(p.header.nodeId, p.header.sequence, r.ok, code, blockNumber);
    this.log.info({ event: "proof_judged", block: blockNumber, nodeId: p.header.nodeId, sequence: p.header.sequence, ok: r.ok, code }, "proof remark judged");
    return { ok: r.ok, code };
  }

  /**
   * Before a proof with twin subtotals is judged (and, if accepted, charged in the store's
   * transaction): price with the node's farm's pricing policy and TFT price read from tfchain, and
   * set each billed twin's balance to its account's free balance on tfchain minus everything this
   * verifier has billed it (docs/billing.md "Billing on tfchain"). The twin is mirrored into the
   * store so that bills and balance queries answer for it. Subtotals that do not decode are left
   * to the rules (malformed). A chain read that fails leaves the previous pricing and balance.
   */
  private async prepareCharges(p: ProofRemark, nowMs: number): Promise<void> {
    const entry = this.m.store.node(p.header.nodeId);
    if (!entry) return;
    try {
      const fp = await readFarmPricing(this.m.backend.api, entry.record.farmId, this.m.fallbackTftPriceMusd);
      this.m.server.usePricing(fp.pricing);
    } catch (err) {
      this.log.warn({ event: "pricing_unavailable", farmId: entry.record.farmId, err: (err as Error).message }, "farm pricing not readable from tfchain; pricing as before");
    }
    for (const bytes of p.twins ?? []) {
      let twinId: number;
      try {
        twinId = decodeTwinSubtotal(bytes).twinId;
      } catch {
        return;
      }
      if (twinId === 0) return;
      try {
        const t = await this.m.backend.twin(twinId);
        if (!t) continue;
        if (!this.m.store.twin(twinId)) this.m.store.putTwin({ twinId, publicKey: t.publicKey, scheme: t.scheme, registeredMs: 0, updatedMs: 0, lastCallMs: 0 });
        const free = await this.m.backend.freeBalance(t.publicKey);
        this.m.store.setBalance(twinId, free - this.m.store.billedTotal(twinId), nowMs);
      } catch (err) {
        this.log.warn({ event: "balance_unavailable", twinId, err: (err as Error).message }, "twin balance not readable from tfchain");
      }
    }
  }

  /**
   * The node as tfchain has it, into the store the rules read: its account is its key; the scheme
   * is the envelope's when the keys match (tfchain stores no scheme); capacity changes are dated
   * with the block's time so the rules judge the period against the larger one.
   */
  private async mirrorNode(p: ProofRemark, nowMs: number): Promise<void> {
    const n = await this.m.backend.node(p.header.nodeId);
    if (!n) return;
    const existing = this.m.store.node(n.nodeId);
    const scheme = sameKey(n.publicKey, p.signer) ? p.scheme : n.scheme;
    const registeredMs = existing?.record.registeredMs ?? (n.registeredMs || nowMs);
    const changed = !existing || !unitsEqual(existing.record.total, n.total) || !sameKey(existing.record.publicKey, n.publicKey) || existing.record.scheme !== scheme || existing.record.farmId !== n.farmId || existing.record.twinId !== n.twinId;
    if (!changed) return;
    const record: ChainNodeRecord = {
      nodeId: n.nodeId,
      farmId: n.farmId,
      twinId: n.twinId,
      publicKey: n.publicKey,
      scheme,
      total: n.total,
      registeredMs,
      updatedMs: nowMs,
      capacityUpdatedMs: existing && unitsEqual(existing.record.total, n.total) ? existing.record.capacityUpdatedMs : existing ? nowMs : registeredMs,
      lastCallMs: 0,
    };
    const state = existing?.state ?? initialNodeState(n.total);
    this.m.store.putNode(record, state);
    this.log.info({ event: existing ? "node_updated" : "node_registered", nodeId: n.nodeId, farmId: n.farmId, twinId: n.twinId }, existing ? "node updated from tfchain" : "node taken from tfchain");
  }

  /** Resolves once every block finalized so far is judged (for tests and scripts). */
  async idle(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const head = (await this.m.backend.api.rpc.chain.getHeader(await this.m.backend.api.rpc.chain.getFinalizedHead())).number.toNumber();
    this.target = Math.max(this.target, head);
    this.kick();
    while (!this.cursor || this.cursor.lastBlock < head) {
      if (Date.now() > deadline) throw new TfchainError("chain_unavailable", `the verifier did not reach block ${head} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubHeads?.();
    this.unsubHeads = null;
    try {
      this.sub?.unsubscribe();
    } catch {
      // the connection is closed already
    }
    this.sub = null;
    await this.running;
  }
}
