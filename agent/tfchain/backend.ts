import * as fs from "node:fs";
import * as path from "node:path";
import type { ApiPromise } from "@polkadot/api";
import type { SignerOptions, SubmittableExtrinsic } from "@polkadot/api/types";
import type { ISubmittableResult } from "@polkadot/types/types";
import { u8aToString } from "@polkadot/util";
import { unitsEqual, zeroUnits, type Units } from "../capacity/units";
import type { ChainBackend, ChainFarm, ChainNode, ChainProofHead, ChainResult, ChainTwin, PowerState, Registration } from "../chain/backend";
import type { Logger } from "../log/logger";
import { addressOf, type SchemeName, type Signer } from "../identity/keys";
import { blake2b256 } from "../proofs/proof";
import { encode } from "../wire/codec";
import {
  acceptTermsIntent,
  buildCall,
  createFarmIntent,
  createNodeIntent,
  createTwinIntent,
  powerIntent,
  remarkIntent,
  updateNodeIntent,
  type CallIntent,
  type CallTable,
  type NodeDescription,
} from "./calls";
import { connectTfchain } from "./connect";
import { TfchainError } from "./errors";
import { ok, refused, type Result } from "../result";
import { resolveTfchainOptions, type ResolvedTfchainOptions, type TfchainOptions } from "./options";
import { ExtrinsicSigner } from "./signer";

/** The outcome of one extrinsic: in a (finalized) block, or refused with a code. */
/** A transaction in a finalized block, with the events it raised. */
export interface Included {
  blockHash: string;
  blockNumber: number;
  events: { section: string; method: string; data: unknown[] }[];
}
/** Why a transaction is not in a block: a stable code (timeout, invalid_transaction, the runtime's error...) and a sentence. */
export interface SubmitRefusal {
  code: string;
  message: string;
}
export type Submitted = Result<Included, SubmitRefusal>;

export interface TfchainModules {
  logger: Logger;
  /** Proof chain heads, when a verifier follows the chain (tfchain itself keeps none). */
  heads?: (nodeId: number) => Promise<ChainProofHead | undefined>;
}

export interface TfchainBackendOptions extends TfchainOptions {
  /** the scheme assumed for a twin's account when no local key tells (tfchain stores no scheme; default sr25519) */
  twinScheme?: SchemeName;
  /** the scheme assumed for a node's account (Zero-OS nodes use ed25519; default ed25519) */
  nodeScheme?: SchemeName;
  /** where the node says it is (country, city, latitude, longitude) and its serial */
  node?: Omit<NodeDescription, "farmId" | "total">;
  /**
   * Where the proof remark in flight is kept (the signed extrinsic and its nonce) until its
   * outcome is known: a restart resends exactly that extrinsic, so a remark lands once
   * (the agent: <data>/tfchain-inflight.json). Without it a remark in flight at a crash may land twice.
   */
  inflightFile?: string;
}

/** A signed proof remark sent (or about to be) whose outcome is not yet known; kept on disk. */
export interface InflightRemark {
  /** the signing account (SS58) */
  address: string;
  /** the nonce it was signed with */
  nonce: number;
  /** blake2b-256 of the remark's bytes (hex): which proof it carries */
  remarkHash: string;
  /** the signed extrinsic (hex), resent as is */
  extrinsic: string;
  /** its hash (hex), searched for in blocks */
  extrinsicHash: string;
  /** the finalized block number when it was signed: it cannot be in an earlier block */
  fromBlock: number;
}

interface Codec {
  toString(): string;
  toJSON(): unknown;
  toU8a(): Uint8Array;
}
interface OptionCodec<T> {
  isSome: boolean;
  unwrap(): T;
}

/** snake_case of a runtime error name: `TwinExists` -> `twin_exists`. */
export function errorCode(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/([A-Z])([A-Z][a-z])/g, "$1_$2").toLowerCase();
}

/** Why a transaction was refused before it ran (the pool's "1010: Invalid Transaction: ..."), as a code. */
export function invalidTxCode(message: string): string {
  // the pool answers as text ("Inability to pay some fees") or as JSON ({"invalid":{"payment":null}})
  if (/pay some fees|balance too low|InsufficientBalance|"payment"/i.test(message)) return "insufficient_funds";
  if (/stale|Outdated/i.test(message)) return "stale_nonce";
  if (/ancient|AncientBirthBlock/i.test(message)) return "ancient_birth_block";
  if (/bad ?proof|signature/i.test(message)) return "bad_signature";
  if (/future/i.test(message)) return "future_nonce";
  return "invalid_transaction";
}

function bytesText(v: unknown): string {
  const c = v as { toU8a?: (bare?: boolean) => Uint8Array };
  return c && typeof c.toU8a === "function" ? u8aToString(c.toU8a(true)) : String(v);
}

/** A number field of a decoded struct (u32/u64), checked to be a safe integer. */
function num(struct: Record<string, unknown>, field: string, what: string): number {
  const v = struct[field] as { toString(): string } | undefined;
  if (v === undefined) throw new TfchainError("bad_reply", `${what}: field ${field} missing; the type definitions do not match the runtime`);
  const n = Number(v.toString());
  if (!Number.isSafeInteger(n) || n < 0) throw new TfchainError("bad_reply", `${what}: field ${field} is ${v.toString()}, not a safe integer`);
  return n;
}

/**
 * The chain backend on tfchain (@polkadot/api over ws:// or wss://). Twins, farms and nodes are
 * tfgridModule's own (userAcceptTc, createTwin, createNode, updateNode; read from `twins`,
 * `nodes`, `farms`, `twinIdByAccountID`, `nodeIdByTwinID`); a usage proof is the Signed{UsageProof}
 * envelope in a `system.remark`, signed by the node's key. tfchain keeps no proof state: a
 * verifier following the chain does (`heads`).
 *
 * Every extrinsic is signed with an immortal era and an explicit nonce (old runtimes refuse
 * mortal eras from chopsticks; the RPC's next index can lag), submitted one at a time per backend,
 * and awaited until its block is finalized. Refusals come back as codes: runtime errors as their
 * snake_case name (`twin_exists`), pool refusals as `insufficient_funds`, `invalid_transaction`...
 */
export class TfchainBackend implements ChainBackend {
  readonly kind = "tfchain";
  private queue: Promise<unknown> = Promise.resolve();
  /** schemes of keys this process signed with (tfchain stores accounts, not schemes) */
  private readonly schemes = new Map<string, SchemeName>();
  private readonly log: Logger;

  private constructor(
    readonly api: ApiPromise,
    private readonly options: ResolvedTfchainOptions & Pick<TfchainBackendOptions, "twinScheme" | "nodeScheme" | "node" | "inflightFile">,
    private readonly modules: TfchainModules,
  ) {
    this.log = modules.logger.child({ module: "tfchain" });
  }

  static async connect(options: TfchainBackendOptions, modules: TfchainModules): Promise<TfchainBackend> {
    const resolved = resolveTfchainOptions(options);
    const api = await connectTfchain(resolved.url, resolved.connectTimeoutMs);
    const b = new TfchainBackend(api, { ...resolved, twinScheme: options.twinScheme, nodeScheme: options.nodeScheme, node: options.node, inflightFile: options.inflightFile }, modules);
    const v = api.runtimeVersion;
    b.log.info({ event: "tfchain_connected", url: resolved.url, specName: v.specName.toString(), specVersion: v.specVersion.toNumber(), metadata: api.runtimeMetadata.version }, "connected to tfchain");
    return b;
  }

  /** spec name and version of the connected runtime */
  runtime(): { specName: string; specVersion: number } {
    return { specName: this.api.runtimeVersion.specName.toString(), specVersion: this.api.runtimeVersion.specVersion.toNumber() };
  }

  // ---- lookups ----

  private query(section: string, item: string): (...args: unknown[]) => Promise<unknown> {
    const q = (this.api.query as unknown as Record<string, Record<string, ((...a: unknown[]) => Promise<unknown>) | undefined> | undefined>)[section]?.[item];
    if (!q) throw new TfchainError("unsupported_runtime", `the runtime has no storage ${section}.${item}`);
    return q;
  }

  private async read(section: string, item: string, ...keys: unknown[]): Promise<unknown> {
    try {
      return await this.query(section, item)(...keys);
    } catch (err) {
      if (err instanceof TfchainError) throw err;
      throw new TfchainError("chain_unavailable", `reading ${section}.${item} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A map value that is a plain u32 id (0 = absent, as tfchain's ValueQuery maps answer). */
  private async idOf(item: string, key: unknown): Promise<number | undefined> {
    const v = (await this.read("tfgridModule", item, key)) as Codec & Partial<OptionCodec<Codec>>;
    const inner = v.isSome === undefined ? v : v.isSome ? (v.unwrap as () => Codec)() : undefined;
    if (!inner) return undefined;
    const n = Number(inner.toString());
    return n > 0 ? n : undefined;
  }

  private async struct(item: string, id: number): Promise<Record<string, unknown> | undefined> {
    const v = (await this.read("tfgridModule", item, id)) as OptionCodec<Record<string, unknown>> & Partial<{ isEmpty: boolean }>;
    if (typeof v.isSome === "boolean") return v.isSome ? v.unwrap() : undefined;
    if (v.isEmpty) return undefined;
    // a ValueQuery map answers an absent key with the default value: id 0 (ids start at 1)
    const s = v as unknown as Record<string, unknown>;
    const own = s.id as { toString(): string } | undefined;
    return own !== undefined && own.toString() !== String(id) ? undefined : s;
  }

  /** The twin id bound to an account (SS58 or public key), if any. */
  async twinIdOf(account: string | Uint8Array): Promise<number | undefined> {
    return this.idOf("twinIdByAccountID", typeof account === "string" ? account : addressOf(account));
  }

  async nodeIdOfTwin(twinId: number): Promise<number | undefined> {
    return this.idOf("nodeIdByTwinID", twinId);
  }

  async farmIdByName(name: string): Promise<number | undefined> {
    return this.idOf("farmIdByName", name);
  }

  private schemeOf(publicKey: Uint8Array, fallback: SchemeName): SchemeName {
    return this.schemes.get(addressOf(publicKey)) ?? fallback;
  }

  async twin(twinId: number): Promise<ChainTwin | undefined> {
    const t = await this.struct("twins", twinId);
    if (!t) return undefined;
    const what = `twin ${twinId}`;
    const account = (t.account_id ?? t.accountId) as Codec | undefined;
    if (!account) throw new TfchainError("bad_reply", `${what}: no account_id; the type definitions do not match the runtime`);
    const publicKey = account.toU8a();
    if (publicKey.length !== 32) throw new TfchainError("bad_reply", `${what}: account of ${publicKey.length} bytes`);
    return { twinId: num(t, "id", what), publicKey, scheme: this.schemeOf(publicKey, this.options.twinScheme ?? "sr25519"), registeredMs: 0 };
  }

  async node(nodeId: number): Promise<ChainNode | undefined> {
    const n = await this.struct("nodes", nodeId);
    if (!n) return undefined;
    const what = `node ${nodeId}`;
    const twinId = num(n, "twin_id", what);
    const twin = await this.twin(twinId);
    if (!twin) throw new TfchainError("bad_reply", `${what}: its twin ${twinId} is not on the chain`);
    const r = n.resources as Record<string, unknown> | undefined;
    if (!r) throw new TfchainError("bad_reply", `${what}: no resources`);
    const total: Units = { ...zeroUnits(), cru: num(r, "cru", what), mru: num(r, "mru", what), sru: num(r, "sru", what), hru: num(r, "hru", what) };
    // spec 49 stores `created` in seconds since the epoch
    const created = n.created === undefined ? 0 : num(n, "created", what) * 1000;
    const head = this.modules.heads ? await this.modules.heads(nodeId) : undefined;
    return {
      nodeId: num(n, "id", what),
      farmId: num(n, "farm_id", what),
      twinId,
      publicKey: twin.publicKey,
      scheme: this.schemeOf(twin.publicKey, this.options.nodeScheme ?? "ed25519"),
      total,
      registeredMs: created,
      updatedMs: created,
      lastSequence: head?.sequence ?? 0,
      lastPeriodEndMs: head?.periodEndMs ?? 0,
      lastHash: head?.hash ?? new Uint8Array(32),
    };
  }

  async farm(farmId: number): Promise<ChainFarm | undefined> {
    const f = await this.struct("farms", farmId);
    if (!f) return undefined;
    const what = `farm ${farmId}`;
    return { farmId: num(f, "id", what), twinId: num(f, "twin_id", what), name: bytesText(f.name), registeredMs: 0, updatedMs: 0, nodeCount: await this.nodeCount(farmId),
      // tfchain's createNode takes any existing farm (it keeps no admission list): open
      open: true, allowedTwins: [] };
  }

  /** A farm owned by `twinId` (the lowest id; a scan of `farms`), if any. */
  async farmOfTwin(twinId: number): Promise<number | undefined> {
    const farms = (this.api.query as unknown as Record<string, Record<string, { entries(): Promise<[unknown, Partial<OptionCodec<Record<string, unknown>>>][]> }>>).tfgridModule.farms;
    let best: number | undefined;
    for (const [, v] of await farms.entries()) {
      const f = typeof v.isSome === "boolean" ? (v.isSome ? v.unwrap!() : undefined) : (v as Record<string, unknown>);
      if (!f || num(f, "twin_id", "farm") !== twinId) continue;
      const id = num(f, "id", "farm");
      if (best === undefined || id < best) best = id;
    }
    return best;
  }

  /** Nodes in a farm: the runtime's index when it has one (nodesByFarmID), else a scan of `nodes`. */
  private async nodeCount(farmId: number): Promise<number> {
    const tg = (this.api.query as unknown as Record<string, Record<string, unknown>>).tfgridModule;
    if (tg.nodesByFarmID) return ((await this.read("tfgridModule", "nodesByFarmID", farmId)) as unknown as unknown[]).length;
    const entries = (tg.nodes as { entries(): Promise<[unknown, Partial<OptionCodec<Record<string, unknown>>>][]> }).entries();
    let count = 0;
    for (const [, v] of await entries) {
      const n = typeof v.isSome === "boolean" ? (v.isSome ? v.unwrap!() : undefined) : (v as Record<string, unknown>);
      if (n && Number((n.farm_id as Codec).toString()) === farmId) count++;
    }
    return count;
  }

  /** An account's free balance in planck (10^-7 TFT). */
  async freeBalance(account: string | Uint8Array): Promise<bigint> {
    const info = (await this.read("system", "account", typeof account === "string" ? account : addressOf(account))) as { data: { free: { toBigInt(): bigint } } };
    return info.data.free.toBigInt();
  }

  async head(nodeId: number): Promise<ChainProofHead | undefined> {
    return this.modules.heads ? this.modules.heads(nodeId) : undefined;
  }

  // ---- extrinsics ----

  /** Build `intent` for the connected runtime (from its metadata). */
  build(intent: CallIntent): SubmittableExtrinsic<"promise"> {
    return buildCall<SubmittableExtrinsic<"promise">>(this.api.registry, this.api.tx as unknown as CallTable, intent);
  }

  /** Sign `intent` with `signer` (immortal era, explicit nonce) and wait until its block is finalized. */
  submit(signer: Signer, intent: CallIntent): Promise<Submitted> {
    const tx = this.build(intent);
    this.schemes.set(signer.address, signer.scheme);
    // a nonce read just as blocks were built can be stale: read it again and resend (the same call, not a second one)
    const attempt = async (): Promise<Submitted> => {
      for (let i = 0; ; i++) {
        const r = await this.submitNow(signer, intent, i === 0 ? tx : this.build(intent));
        if (r.ok || r.refusal.code !== "stale_nonce" || i >= 2) return r;
        this.log.debug({ event: "tfchain_nonce_stale", call: `${intent.section}.${intent.method}`, attempt: i + 1 }, "stale nonce, resending");
        await new Promise((res) => setTimeout(res, 500));
      }
    };
    const run = this.queue.then(attempt);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async submitNow(signer: Signer, intent: CallIntent, tx: SubmittableExtrinsic<"promise">): Promise<Submitted> {
    await this.signTx(signer, tx, await this.accountNonce(signer.address));
    return this.watch(`${intent.section}.${intent.method}`, tx, signer.address);
  }

  /** The account's next nonce as the chain's state has it. */
  async accountNonce(address: string): Promise<number> {
    const account = (await this.read("system", "account", address)) as { nonce: Codec };
    return Number(account.nonce.toString());
  }

  /** Sign `tx` in place: immortal era, explicit nonce. */
  private async signTx(signer: Signer, tx: SubmittableExtrinsic<"promise">, nonce: number): Promise<void> {
    // CheckGenesis and the immortal era sign over System.BlockHash(0), which is what the runtime
    // compares with; the RPC's block 0 hash can differ (chopsticks after resuming from its db)
    const genesis = ((await this.read("system", "blockHash", 0)) as Codec).toString();
    // genesisHash is honoured by @polkadot/api's option merge though SignerOptions does not declare it
    const signOptions = { signer: new ExtrinsicSigner(this.api.registry, signer), era: 0, nonce, genesisHash: genesis, blockHash: genesis } as unknown as Partial<SignerOptions>;
    try {
      await tx.signAsync(signer.address, signOptions);
    } catch (err) {
      throw new TfchainError("chain_unavailable", `signing ${tx.method.section}.${tx.method.method} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Send a signed extrinsic and wait until its block is finalized (or it is refused, or the timeout). */
  private watch(what: string, tx: SubmittableExtrinsic<"promise">, address: string): Promise<Submitted> {
    return new Promise<Submitted>((resolve, reject) => {
      let unsub: (() => void) | undefined;
      let done = false;
      const finish = (r: Submitted | Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsub?.();
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const timer = setTimeout(
        () => finish(refused({ code: "timeout", message: `${what} was not in a finalized block within ${this.options.inclusionTimeoutMs} ms; it may still land: check the account's nonce before sending again` })),
        this.options.inclusionTimeoutMs,
      );
      tx.send((result: ISubmittableResult) => {
        if (result.status.isInvalid || result.status.isDropped || result.status.isUsurped) {
          finish(refused({ code: "invalid_transaction", message: `${what}: the transaction pool reports ${result.status.type}` }));
          return;
        }
        if (!result.status.isFinalized) return;
        const blockHash = result.status.asFinalized.toHex();
        const events = result.events.map((e) => ({ section: e.event.section, method: e.event.method, data: Array.from(e.event.data as unknown as unknown[]) }));
        if (result.dispatchError) {
          const de = result.dispatchError;
          if (de.isModule) {
            const meta = this.api.registry.findMetaError(de.asModule);
            finish(refused({ code: errorCode(meta.name), message: `${what} refused by the runtime: ${meta.section}.${meta.name}${meta.docs.length ? ` (${meta.docs.join(" ")})` : ""}` }));
          } else {
            finish(refused({ code: errorCode(de.type), message: `${what} failed: ${de.toString()}` }));
          }
          return;
        }
        this.api.rpc.chain.getHeader(blockHash).then(
          (h) => finish(ok({ blockHash, blockNumber: h.number.toNumber(), events })),
          () => finish(ok({ blockHash, blockNumber: -1, events })),
        );
      }).then(
        (u) => {
          unsub = u;
          if (done) u();
        },
        (err: unknown) => {
          const message = (err as Error).message ?? String(err);
          if (/disconnected|not connected|WebSocket is not connected|No response received/i.test(message)) {
            finish(new TfchainError("chain_unavailable", `${what}: ${message}`, { cause: err }));
          } else {
            const code = /already imported|1013/i.test(message) ? "already_imported" : invalidTxCode(message);
            finish(refused({ code, message: `${what} refused: ${message}${code === "insufficient_funds" ? ` (fund ${address}; on a dev chain: scripts/tfchain-dev fund --url ${this.options.url} ${address})` : ""}` }));
          }
        },
      );
    });
  }

  private refusal(s: Submitted & { ok: false }): Registration & ChainResult & { ok: false } {
    return { ok: false, code: s.refusal.code, message: s.refusal.message };
  }

  /** The account's accepted terms and conditions (none yet: a twin cannot be created). */
  private async hasAcceptedTerms(address: string): Promise<boolean> {
    const tg = (this.api.query as unknown as Record<string, Record<string, unknown>>).tfgridModule;
    if (!tg.usersTermsAndConditions) return true;
    const v = (await this.read("tfgridModule", "usersTermsAndConditions", address)) as unknown as { length?: number; isSome?: boolean; unwrap?: () => unknown[] };
    if (typeof v.isSome === "boolean") return v.isSome && (v.unwrap?.().length ?? 0) > 0;
    return (v.length ?? 0) > 0;
  }

  async ensureTwin(signer: Signer): Promise<Registration> {
    this.schemes.set(signer.address, signer.scheme);
    const existing = await this.twinIdOf(signer.address);
    if (existing !== undefined) return { ok: true, id: existing, kind: "unchanged" };
    if (!(await this.hasAcceptedTerms(signer.address))) {
      const tc = await this.submit(signer, acceptTermsIntent(this.options.termsLink, this.options.termsHash));
      if (!tc.ok) return this.refusal(tc);
    }
    const r = await this.submit(signer, createTwinIntent());
    if (!r.ok) return this.refusal(r);
    const id = await this.twinIdOf(signer.address);
    if (id === undefined) throw new TfchainError("bad_reply", `createTwin for ${signer.address} was in block ${r.value.blockHash} but twinIdByAccountID has no twin`);
    this.log.info({ event: "twin_registered", twinId: id, address: signer.address, block: r.value.blockNumber }, "twin registered on tfchain");
    return { ok: true, id, kind: "registered" };
  }

  /** A farm named `name` owned by `signer`'s twin, created when absent (the farmer's step, not the node's). */
  async ensureFarm(signer: Signer, name: string): Promise<Registration & { twinId?: number }> {
    const twinId = await this.twinIdOf(signer.address);
    if (twinId === undefined) return { ok: false, code: "twin_missing", message: `${signer.address} has no twin: run capacity-agent twin register first` };
    const existing = await this.farmIdByName(name);
    if (existing !== undefined) {
      const f = await this.farm(existing);
      if (f && f.twinId !== twinId) return { ok: false, code: "farm_exists", message: `farm "${name}" exists (id ${existing}) and belongs to twin ${f.twinId}, not ${twinId}; choose another name` };
      return { ok: true, id: existing, kind: "unchanged", twinId };
    }
    const r = await this.submit(signer, createFarmIntent(name));
    if (!r.ok) return this.refusal(r);
    const id = await this.farmIdByName(name);
    if (id === undefined) throw new TfchainError("bad_reply", `createFarm "${name}" was in block ${r.value.blockHash} but farmIdByName has no farm`);
    this.log.info({ event: "farm_registered", farmId: id, twinId, block: r.value.blockNumber }, "farm registered on tfchain");
    return { ok: true, id, kind: "registered", twinId };
  }

  async ensureNode(signer: Signer, node: { farmId: number; total: Units }): Promise<Registration> {
    const twinId = await this.twinIdOf(signer.address);
    if (twinId === undefined) return { ok: false, code: "twin_missing", message: `${signer.address} has no twin on the chain: register the twin first` };
    const desc: NodeDescription = { ...this.options.node, farmId: node.farmId, total: node.total };
    const nodeId = await this.nodeIdOfTwin(twinId);
    if (nodeId !== undefined) {
      const current = await this.node(nodeId);
      if (!current) throw new TfchainError("bad_reply", `nodeIdByTwinID(${twinId}) = ${nodeId} but nodes(${nodeId}) is empty`);
      if (current.farmId !== node.farmId) {
        return { ok: false, code: "farm_mismatch", message: `node ${nodeId} of this key is in farm ${current.farmId}, not ${node.farmId}; use --farm-id ${current.farmId} or move the node on the chain` };
      }
      const want = { ...zeroUnits(), cru: node.total.cru, mru: node.total.mru, sru: node.total.sru, hru: node.total.hru };
      if (unitsEqual({ ...current.total, ipv4u: 0, gpu: 0 }, want)) return { ok: true, id: nodeId, kind: "unchanged" };
      const r = await this.submit(signer, updateNodeIntent(nodeId, desc));
      if (!r.ok) return this.refusal(r);
      this.log.info({ event: "node_updated", nodeId, farmId: node.farmId, block: r.value.blockNumber }, "node resources updated on tfchain");
      return { ok: true, id: nodeId, kind: "updated" };
    }
    if (!(await this.farm(node.farmId))) return { ok: false, code: "farm_missing", message: `farm ${node.farmId} is not on the chain: the farmer creates it (capacity-agent farm create)` };
    const r = await this.submit(signer, createNodeIntent(desc));
    if (!r.ok) return this.refusal(r);
    const id = await this.nodeIdOfTwin(twinId);
    if (id === undefined) throw new TfchainError("bad_reply", `createNode was in block ${r.value.blockHash} but nodeIdByTwinID(${twinId}) has no node`);
    this.log.info({ event: "node_registered", nodeId: id, farmId: node.farmId, twinId, block: r.value.blockNumber }, "node registered on tfchain");
    return { ok: true, id, kind: "registered" };
  }

  /**
   * The proof envelope in a system.remark signed by the node's key, awaited until finalized. The
   * chain does not judge proofs (a verifier following it does), so `ok` means: in a finalized
   * block. proofHash is blake2b-256 of the envelope (what the verifier indexes remarks by).
   */
  async submitProof(signer: Signer, envelope: Uint8Array, twins?: Uint8Array[]): Promise<ChainResult> {
    // a proof that commits to twin subtotals (billing) carries them: ProofSubmission, as on proof.settle
    // (even none: a header with an empty twins_root is settled, as StandinBackend does)
    const remark = twins ? encode("ProofSubmission", { proof: envelope, twins }) : envelope;
    const r = await this.remarkOnce(signer, remark);
    if (!r.ok) return this.refusal(r);
    this.log.debug({ event: "proof_remarked", block: r.value.blockNumber, bytes: remark.length }, "proof in a finalized block");
    return { ok: true, code: "ok", proofHash: blake2b256(envelope) };
  }

  // ---- a proof remark lands once (docs/tfchain.md "Exactly once") ----

  /**
   * `system.remark(bytes)` signed by `signer`, landing at most once across restarts when
   * `inflightFile` is set: the signed extrinsic and its nonce are written to disk before it is
   * sent and removed once its outcome is known. A later call with the same bytes (the outbox
   * resending after a crash) does not sign a second extrinsic: when the account's nonce has moved
   * past the stored one, the stored extrinsic is looked for in the blocks since it was signed
   * (found: delivered; not found: the nonce went to another transaction, so it is sent anew);
   * otherwise the very same extrinsic (same nonce) is sent again, which the chain can include at
   * most once.
   */
  remarkOnce(signer: Signer, bytes: Uint8Array): Promise<Submitted> {
    if (!this.options.inflightFile) return this.submit(signer, remarkIntent(bytes));
    this.schemes.set(signer.address, signer.scheme);
    const run = this.queue.then(() => this.remarkOnceNow(signer, bytes));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async remarkOnceNow(signer: Signer, bytes: Uint8Array): Promise<Submitted> {
    const what = "system.remark";
    const remarkHash = Buffer.from(blake2b256(bytes)).toString("hex");
    const stored = this.loadInflight();
    if (stored && stored.address === signer.address && stored.remarkHash === remarkHash) {
      const r = await this.resolveInflight(stored, what);
      if (r) {
        if (r.ok || r.refusal.code !== "timeout") this.clearInflight();
        return r;
      }
      this.clearInflight();
    } else if (stored) {
      // another proof's remark (or another key's): the outbox moved on, so its outcome was recorded
      this.clearInflight();
    }
    const rec = await this.prepareRemark(signer, bytes);
    const r = await this.watch(what, this.api.tx(rec.extrinsic) as unknown as SubmittableExtrinsic<"promise">, signer.address);
    if (r.ok || r.refusal.code !== "timeout") this.clearInflight();
    return r;
  }

  /**
   * Sign `system.remark(bytes)` with the account's next nonce and write it to `inflightFile`
   * (not sent yet). Exposed for tests that simulate a crash between signing and sending.
   */
  async prepareRemark(signer: Signer, bytes: Uint8Array): Promise<InflightRemark> {
    if (!this.options.inflightFile) throw new TfchainError("invalid_options", "prepareRemark needs inflightFile");
    this.schemes.set(signer.address, signer.scheme);
    const tx = this.build(remarkIntent(bytes));
    const nonce = await this.accountNonce(signer.address);
    const fromBlock = (await this.api.rpc.chain.getHeader(await this.api.rpc.chain.getFinalizedHead())).number.toNumber();
    await this.signTx(signer, tx, nonce);
    const rec: InflightRemark = { address: signer.address, nonce, remarkHash: Buffer.from(blake2b256(bytes)).toString("hex"), extrinsic: tx.toHex(), extrinsicHash: tx.hash.toHex(), fromBlock };
    const file = this.options.inflightFile;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, "w", 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(rec) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    return rec;
  }

  /** The outcome of a stored remark: in a block (ok), sent again and in a block, or undefined when it never landed and its nonce is gone. */
  private async resolveInflight(rec: InflightRemark, what: string): Promise<Submitted | undefined> {
    const nonce = await this.accountNonce(rec.address);
    if (nonce <= rec.nonce) {
      // not in a block yet: send the very same extrinsic (same nonce, same signature) again
      this.log.info({ event: "proof_remark_resent", nonce: rec.nonce, extrinsic: rec.extrinsicHash }, "resending the proof remark that was in flight, with its nonce");
      const r = await this.watch(what, this.api.tx(rec.extrinsic) as unknown as SubmittableExtrinsic<"promise">, rec.address);
      if (r.ok) return r;
      // already in the pool, or taken in a block meanwhile: look for it below
      if (r.refusal.code !== "already_imported" && r.refusal.code !== "stale_nonce") return r;
      await this.waitNonceAbove(rec.address, rec.nonce);
    }
    const found = await this.findExtrinsic(rec.extrinsicHash, rec.fromBlock);
    if (found) {
      this.log.info({ event: "proof_remark_recovered", block: found.blockNumber, nonce: rec.nonce }, "the proof remark in flight at the last stop is in a block: not sent again");
      return ok({ blockHash: found.blockHash, blockNumber: found.blockNumber, events: [] });
    }
    this.log.info({ event: "proof_remark_lost", nonce: rec.nonce }, "the proof remark in flight at the last stop never landed and its nonce was used by another transaction: sending it anew");
    return undefined;
  }

  private async waitNonceAbove(address: string, nonce: number): Promise<void> {
    const deadline = Date.now() + this.options.inclusionTimeoutMs;
    while ((await this.accountNonce(address)) <= nonce) {
      if (Date.now() > deadline) throw new TfchainError("chain_unavailable", `the remark with nonce ${nonce} of ${address} is in the pool but not in a block within ${this.options.inclusionTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The finalized block (from `fromBlock` on) that holds the extrinsic with this hash, if any. */
  async findExtrinsic(extrinsicHash: string, fromBlock: number): Promise<{ blockHash: string; blockNumber: number } | undefined> {
    const head = (await this.api.rpc.chain.getHeader(await this.api.rpc.chain.getFinalizedHead())).number.toNumber();
    for (let n = Math.max(1, fromBlock); n <= head; n++) {
      const hash = await this.api.rpc.chain.getBlockHash(n);
      const block = await this.api.rpc.chain.getBlock(hash);
      if (block.block.extrinsics.some((x) => x.hash.toHex() === extrinsicHash)) return { blockHash: hash.toHex(), blockNumber: n };
    }
    return undefined;
  }

  private loadInflight(): InflightRemark | undefined {
    const file = this.options.inflightFile;
    if (!file || !fs.existsSync(file)) return undefined;
    try {
      const r = JSON.parse(fs.readFileSync(file, "utf8")) as InflightRemark;
      if (typeof r.address === "string" && Number.isSafeInteger(r.nonce) && typeof r.remarkHash === "string" && /^0x[0-9a-f]+$/.test(r.extrinsic) && typeof r.extrinsicHash === "string" && Number.isSafeInteger(r.fromBlock)) return r;
    } catch {
      // unreadable: a crash while writing it (the tmp file is renamed only when whole), so nothing was sent
    }
    this.log.warn({ event: "inflight_invalid", file }, "the in-flight remark file is not valid; ignoring it");
    return undefined;
  }

  private clearInflight(): void {
    if (this.options.inflightFile) fs.rmSync(this.options.inflightFile, { force: true });
  }

  async reportPower(signer: Signer, _nodeId: number, state: PowerState): Promise<ChainResult> {
    const tg = (this.api.tx as unknown as Record<string, Record<string, unknown>>).tfgridModule;
    if (!tg.changePowerState) return { ok: false, code: "unsupported_runtime", message: `runtime spec ${this.runtime().specVersion} keeps no power state (no tfgridModule.changePowerState)` };
    const r = await this.submit(signer, powerIntent(state === "up" || state === "waking"));
    return r.ok ? { ok: true, code: "ok" } : this.refusal(r);
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.api.disconnect().catch(() => undefined);
  }
}
