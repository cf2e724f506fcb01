import { isNoResponders, type Bus } from "../bus/bus";
import { parsePricing, type VersionedPricing } from "../billing/pricing";
import type { Subjects } from "../bus/subjects";
import type { Units } from "../capacity/units";
import { DOMAIN } from "../identity/domains";
import { open, sameKey, seal } from "../identity/envelope";
import { schemeFromWire, type Signer } from "../identity/keys";
import { decodeProofHeader, type ProofHeader } from "../proofs/proof";
import { decode, encode, toSafeNumber, unitsFromWire, WireError } from "../wire/codec";
import type { ChainFarm, ChainNode, ChainResult, ChainTwin, ProofVerdict, Registration, TwinDebt } from "./backend";
import { ChainError } from "./errors";
import { CHAIN_CLIENT_DEFAULTS, type ChainClientOptions } from "./options";
import type { WireChainReply, WireFarmInfo, WireNodeInfo, WirePricing, WireTwinBalance, WireTwinInfo } from "../wire/generated";
import { balanceFromWire, billFromWire, chainCallToWire, type TwinBalance, type TwinBill } from "./wire";

export interface ChainProof {
  /** the Signed{UsageProof} envelope as the chain accepted it */
  proof: Uint8Array;
  header: ProofHeader;
  acceptedMs: number;
}

/** Largest reply accepted (a proofs page stays under the NATS max payload, 1 MiB by default). */
const REPLY_LIMITS = { maxBytes: 8 * 1024 * 1024, maxRepeated: 1000 };

function nodeFromWire(w: WireNodeInfo): ChainNode {
  const scheme = schemeFromWire(w.scheme);
  if (!scheme) throw new WireError("malformed", `node ${w.nodeId}: unknown key scheme ${w.scheme}`);
  return {
    nodeId: w.nodeId,
    farmId: w.farmId,
    twinId: w.twinId,
    publicKey: new Uint8Array(w.publicKey),
    scheme,
    total: unitsFromWire(w.total, "node.total"),
    registeredMs: toSafeNumber(w.registeredMs, "node.registered_ms"),
    updatedMs: toSafeNumber(w.updatedMs, "node.updated_ms"),
    lastSequence: toSafeNumber(w.lastSequence, "node.last_sequence"),
    lastPeriodEndMs: toSafeNumber(w.lastPeriodEndMs, "node.last_period_end_ms"),
    lastHash: new Uint8Array(w.lastHash),
    powerState: w.powerState === 2 ? "standby" : "up",
    powerTarget: w.powerTarget === 2 ? "standby" : "up",
  };
}

function twinFromWire(w: WireTwinInfo): ChainTwin {
  const scheme = schemeFromWire(w.scheme);
  if (!scheme) throw new WireError("malformed", `twin ${w.twinId}: unknown key scheme ${w.scheme}`);
  return { twinId: w.twinId, publicKey: new Uint8Array(w.publicKey), scheme, registeredMs: toSafeNumber(w.registeredMs, "twin.registered_ms") };
}

function farmFromWire(w: WireFarmInfo): ChainFarm {
  return {
    farmId: w.farmId,
    twinId: w.twinId,
    name: w.name,
    registeredMs: toSafeNumber(w.registeredMs, "farm.registered_ms"),
    updatedMs: toSafeNumber(w.updatedMs, "farm.updated_ms"),
    nodeCount: w.nodeCount,
    open: w.open,
    allowedTwins: [...w.allowedTwins],
  };
}

/**
 * Talks to the chain stand-in (`capacity-agent chain`) over NATS. Refusals are values
 * (ChainResult); ChainError is thrown only when the chain does not answer in time
 * (`chain_unavailable`) or its answer cannot be trusted (`bad_reply`: bad envelope, not signed by
 * the pinned chain key, undecodable).
 *
 * It also serves as the usage service's proof sink (submitProof, head).
 */
export class ChainClient {
  private readonly timeoutMs: number;
  private readonly chainKey?: Uint8Array;
  private lastTs = 0;

  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    options: ChainClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? CHAIN_CLIENT_DEFAULTS.timeoutMs;
    this.chainKey = options.chainKey;
  }

  /** ChainCall timestamps: the wall clock, strictly increasing per client (the chain refuses replays). */
  private nextTimestamp(): number {
    const t = Math.max(Date.now(), this.lastTs + 1);
    this.lastTs = t;
    return t;
  }

  private async request(call: string, data: Uint8Array): Promise<WireChainReply> {
    const subject = this.subjects.chain(call);
    let bytes: Uint8Array;
    try {
      bytes = (await this.bus.request(subject, data, { timeout: this.timeoutMs })).data;
    } catch (err) {
      const noResponders = isNoResponders(err);
      throw new ChainError("chain_unavailable", `the chain did not answer on ${subject} within ${this.timeoutMs} ms (${(err as Error).message}); is \`capacity-agent chain\` running on this NATS?`, { cause: err, noResponders });
    }
    const o = open(bytes, DOMAIN.ChainReply, REPLY_LIMITS);
    if (!o.ok) throw new ChainError("bad_reply", `the chain's reply on ${subject} does not verify: ${o.refusal.message}`);
    if (this.chainKey && !sameKey(this.chainKey, o.value.signer)) {
      throw new ChainError("bad_reply", `the reply on ${subject} is not signed by the pinned chain key`);
    }
    try {
      return decode("ChainReply", o.value.payload, REPLY_LIMITS);
    } catch (err) {
      throw new ChainError("bad_reply", `the chain's reply on ${subject} cannot be decoded: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Twins in debt with their grace ends, as a reply lists them. */
  private static debts(ws: readonly WireTwinBalance[]): TwinDebt[] {
    try {
      return ws.map((w) => ({ twinId: w.twinId, graceEndMs: toSafeNumber(w.graceEndMs ?? 0, "grace_end_ms") }));
    } catch (err) {
      throw new ChainError("bad_reply", `the chain's twins in debt: ${(err as Error).message}`, { cause: err });
    }
  }

  private static result(r: WireChainReply): ChainResult {
    const hash = r.proofHash.length ? new Uint8Array(r.proofHash) : undefined;
    if (r.ok) {
      const debt = r.twinsInDebt ?? [];
      // a chain from before grace names the twins only: their grace end is unknown (0)
      const told = new Map(ChainClient.debts(r.twinsGrace ?? []).map((d) => [d.twinId, d.graceEndMs]));
      const debts = debt.map((twinId) => ({ twinId, graceEndMs: told.get(twinId) ?? 0 }));
      return { ok: true, code: "ok", ...(hash ? { proofHash: hash } : {}), ...(debt.length ? { debts } : {}) };
    }
    const code = r.rejection?.code || "unknown";
    if (code === "duplicate") return hash ? { ok: true, code: "duplicate", proofHash: hash } : { ok: true, code: "duplicate" };
    return { ok: false, code, message: r.rejection?.message ?? "" };
  }

  /** A register call's reply: the id the chain assigned (or holds for this key) and what changed. */
  private static registration(r: WireChainReply, kind: "twin" | "node" | "farm"): Registration {
    if (!r.ok) return { ok: false, code: r.rejection?.code || "unknown", message: r.rejection?.message ?? "" };
    const info = r[kind];
    const id = info ? (kind === "twin" ? (info as WireTwinInfo).twinId : kind === "node" ? (info as WireNodeInfo).nodeId : (info as WireFarmInfo).farmId) : 0;
    if (!id) throw new ChainError("bad_reply", `the chain accepted the ${kind} registration but its reply holds no ${kind} id`);
    const kindOf = r.outcome === "registered" ? "registered" : r.outcome === "updated" || r.outcome === "renamed" ? "updated" : "unchanged";
    return { ok: true, id, kind: kindOf };
  }

  private async call(subject: "twin.register" | "node.register" | "farm.register", signer: Signer, c: Parameters<typeof chainCallToWire>[1]): Promise<Registration> {
    const payload = encode("ChainCall", chainCallToWire(this.nextTimestamp(), c));
    const r = await this.request(subject, seal(signer, DOMAIN.ChainCall, payload));
    return ChainClient.registration(r, subject === "twin.register" ? "twin" : subject === "node.register" ? "node" : "farm");
  }

  /**
   * The twin of `signer`'s key: created when the key has none (the chain assigns its id), else
   * returned ("unchanged"). `twinId` nonzero asks for that id and is refused (`unauthorized`)
   * unless it is the key's own twin.
   */
  registerTwin(signer: Signer, twinId = 0): Promise<Registration> {
    return this.call("twin.register", signer, { registerTwin: { twinId } });
  }

  /**
   * The node of `signer`'s twin (the node key must have a twin: registerTwin first), created when
   * it has none (the chain assigns its id), else updated (farm, capacity). A nonzero nodeId or
   * twinId must be the signer's own (else `unauthorized`).
   */
  registerNode(signer: Signer, node: { nodeId?: number; farmId: number; twinId?: number; total: Units }): Promise<Registration> {
    return this.call("node.register", signer, { registerNode: { nodeId: node.nodeId ?? 0, farmId: node.farmId, twinId: node.twinId ?? 0, total: node.total } });
  }

  /**
   * farmId 0: create a farm owned by `signer`'s twin (the chain assigns its id; names are unique);
   * else change farm `farmId`, which that twin must own: rename it (an empty name keeps the name),
   * open or close it (`access`), allow or disallow twins whose nodes may join.
   */
  registerFarm(signer: Signer, farm: { farmId: number; twinId?: number; name?: string; access?: "keep" | "open" | "closed"; allowTwins?: number[]; disallowTwins?: number[] }): Promise<Registration> {
    const access = farm.access === "open" ? 1 : farm.access === "closed" ? 2 : 0;
    return this.call("farm.register", signer, {
      registerFarm: { farmId: farm.farmId, twinId: farm.twinId ?? 0, name: farm.name ?? "", access, allowTwins: farm.allowTwins ?? [], disallowTwins: farm.disallowTwins ?? [] },
    });
  }

  /** Submit a Signed{UsageProof} envelope. A replay of an accepted proof is {ok: true, code: "duplicate"}. */
  /** node.power: report the node's power state (and target), signed by the node's key. */
  async setPower(signer: Signer, nodeId: number, state: "up" | "standby"): Promise<ChainResult> {
    const v = state === "standby" ? 2 : 1;
    const payload = encode("ChainCall", chainCallToWire(this.nextTimestamp(), { setPower: { nodeId, state: v, target: v } }));
    return ChainClient.result(await this.request("node.power", seal(signer, DOMAIN.ChainCall, payload)));
  }

  async submitProof(signedProof: Uint8Array): Promise<ChainResult> {
    return ChainClient.result(await this.request("proof.submit", signedProof));
  }

  /**
   * Submit a proof with the twin subtotals its header commits to (proof.settle): the chain checks
   * them and charges each twin in the same transaction as it accepts the proof (docs/billing.md).
   */
  async settleProof(signedProof: Uint8Array, twins: Uint8Array[]): Promise<ChainResult> {
    return ChainClient.result(await this.request("proof.settle", encode("ProofSubmission", { proof: signedProof, twins })));
  }

  /** Stand-in only (dev grids): add `amount` (smallest unit) to twin `twinId`'s balance; the new balance. */
  async fund(twinId: number, amount: bigint): Promise<{ ok: true; balance: TwinBalance } | { ok: false; code: string; message: string }> {
    const r = await this.request("fund", encode("FundTwin", { twinId, amount: amount.toString() }));
    if (!r.ok) return { ok: false, code: r.rejection?.code || "unknown", message: r.rejection?.message ?? "" };
    if (!r.balance || r.balance.twinId !== twinId) throw new ChainError("bad_reply", `funded twin ${twinId}, the chain answered without its balance`);
    return { ok: true, balance: balanceFromWire(r.balance) };
  }

  /**
   * A twin's balance and bills, newest first (at most `limit`, the chain's default 100); only node
   * `nodeId`'s with it, only the bill of proof `sequence` with both. undefined: no such twin.
   */
  async bills(
    twinId: number,
    filter: { nodeId?: number; sequence?: number; limit?: number } = {},
  ): Promise<{ balance: TwinBalance; bills: TwinBill[]; pricing: VersionedPricing; pricings: Map<number, VersionedPricing> } | undefined> {
    const r = await this.query({ billsTwinId: twinId, billsNodeId: filter.nodeId ?? 0, billsSequence: filter.sequence ?? 0, limit: filter.limit ?? 0 });
    if (!r) return undefined;
    if (!r.balance || r.balance.twinId !== twinId) throw new ChainError("bad_reply", `asked for twin ${twinId}'s bills, the chain answered without its balance`);
    try {
      if (!r.pricing) throw new Error("the reply holds no pricing policy");
      const versioned = (w: WirePricing, field: string): VersionedPricing => {
        const { version, ...prices } = w;
        return { ...parsePricing(prices, field), version: version ?? 0 };
      };
      const pricings = new Map<number, VersionedPricing>();
      for (const w of r.pricings ?? []) pricings.set(w.version, versioned(w, "pricings"));
      const pricing = versioned(r.pricing, "pricing");
      if (pricing.version > 0) pricings.set(pricing.version, pricing);
      return { balance: balanceFromWire(r.balance), bills: r.bills.map(billFromWire), pricing, pricings };
    } catch (err) {
      throw new ChainError("bad_reply", `the chain's bills of twin ${twinId}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * The chain's verdict on node `nodeId`'s proof `sequence` (on tfchain: the verifier's, made after
   * the proof remark is in a block). Unknown node: not judged.
   */
  async verdict(nodeId: number, sequence: number): Promise<ProofVerdict> {
    const r = await this.query({ nodeId, verdictSequence: sequence });
    const v = r?.verdict;
    if (!r || !v || !v.judged) return { judged: false };
    if (v.nodeId !== nodeId || toSafeNumber(v.sequence, "verdict.sequence") !== sequence) throw new ChainError("bad_reply", `asked for the verdict on node ${nodeId}'s proof ${sequence}, the chain answered node ${v.nodeId}'s ${v.sequence}`);
    return { judged: true, ok: v.ok, code: v.code, debts: ChainClient.debts(v.twinsInDebt), block: toSafeNumber(v.block, "verdict.block") };
  }

  private async query(q: { verdictSequence?: number; nodeId?: number; twinId?: number; farmId?: number; wantProofs?: boolean; fromSequence?: number; limit?: number; billsTwinId?: number; billsNodeId?: number; billsSequence?: number }): Promise<WireChainReply | undefined> {
    const r = await this.request("query", encode("ChainQuery", q));
    if (r.ok) return r;
    const code = r.rejection?.code ?? "unknown";
    if (code === "not_found") return undefined;
    throw new ChainError("refused", `the chain refused the query: [${code}] ${r.rejection?.message ?? ""}`, { refusal: code });
  }

  /** Look one record up; a reply about another id, or one that does not decode, is bad_reply. */
  private async record<W extends object, T>(kind: "node" | "twin" | "farm", id: number, reply: (r: WireChainReply) => W | null, idOf: (w: W) => number, fromWire: (w: W) => T): Promise<T | undefined> {
    const r = await this.query({ [`${kind}Id`]: id });
    if (!r) return undefined;
    const w = reply(r);
    if (!w || idOf(w) !== id) throw new ChainError("bad_reply", `asked for ${kind} ${id}, the chain answered ${w ? `${kind} ${idOf(w)}` : `no ${kind}`}`);
    try {
      return fromWire(w);
    } catch (err) {
      throw new ChainError("bad_reply", `the chain's record of ${kind} ${id}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The node's registration and proof chain head; undefined when it is not registered. */
  node(nodeId: number): Promise<ChainNode | undefined> {
    return this.record("node", nodeId, (r) => r.node, (w) => w.nodeId, nodeFromWire);
  }

  /** The twin's registration; undefined when it is not registered. */
  twin(twinId: number): Promise<ChainTwin | undefined> {
    return this.record("twin", twinId, (r) => r.twin, (w) => w.twinId, twinFromWire);
  }

  /** The farm's registration (owner, name, how many nodes it has); undefined when it is not registered. */
  farm(farmId: number): Promise<ChainFarm | undefined> {
    return this.record("farm", farmId, (r) => r.farm, (w) => w.farmId, farmFromWire);
  }

  /**
   * Accepted proofs of a node: fromSequence 0 = the last one only; else up to `limit` (at most
   * 1000) from that sequence on, in order. A page may hold fewer than asked (the reply stays under
   * the NATS max payload): ask again from the next sequence. Unknown node: [].
   * Each proof's envelope is checked (signature and header) before it is returned.
   */
  async proofs(nodeId: number, fromSequence: number, limit: number): Promise<ChainProof[]> {
    const r = await this.query({ nodeId, wantProofs: true, fromSequence, limit });
    if (!r) return [];
    const out: ChainProof[] = [];
    for (const p of r.proofs) {
      const o = open(p.proof, DOMAIN.UsageProof, { maxBytes: 64 * 1024 });
      if (!o.ok) throw new ChainError("bad_reply", `a proof of node ${nodeId} from the chain does not verify: ${o.refusal.message}`);
      let header: ProofHeader;
      let acceptedMs: number;
      try {
        header = decodeProofHeader(o.value.payload);
        acceptedMs = toSafeNumber(p.acceptedMs, "accepted_ms");
      } catch (err) {
        throw new ChainError("bad_reply", `a proof of node ${nodeId} from the chain cannot be decoded: ${(err as Error).message}`, { cause: err });
      }
      if (header.nodeId !== nodeId) throw new ChainError("bad_reply", `asked for node ${nodeId}'s proofs, the chain sent one of node ${header.nodeId}`);
      out.push({ proof: new Uint8Array(p.proof), header, acceptedMs });
    }
    return out;
  }

  /** The node's proof chain head (for the usage service); undefined before its first proof or when unknown. */
  async head(nodeId: number): Promise<{ sequence: number; periodEndMs: number; hash: Uint8Array } | undefined> {
    const n = await this.node(nodeId);
    if (!n || n.lastSequence === 0) return undefined;
    return { sequence: n.lastSequence, periodEndMs: n.lastPeriodEndMs, hash: n.lastHash };
  }
}
