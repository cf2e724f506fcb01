import type { Units } from "../capacity/units";
import type { SchemeName, Signer } from "../identity/keys";

/** A twin the chain found in debt, and when its grace ends (chain clock, ms; 0: not told). */
export interface TwinDebt {
  twinId: number;
  graceEndMs: number;
}

/**
 * The answer to a call: accepted (`duplicate`: the same proof was accepted before) or refused with
 * a code. An accepted proof.settle names the proof's twins in debt with their
 * grace ends (`debts`).
 */
export type ChainResult = { ok: true; code: "ok" | "duplicate"; proofHash?: Uint8Array; debts?: TwinDebt[] } | { ok: false; code: string; message: string };

/** The chain's verdict on one of a node's proofs (ChainReply.verdict); `judged: false` until it has one. */
export type ProofVerdict = { judged: false } | { judged: true; ok: boolean; code: string; debts: TwinDebt[]; block: number };

/** A node's registration: what the chain binds to a node id, whichever chain keeps it. */
export interface ChainNodeRegistration {
  nodeId: number;
  farmId: number;
  /** the node's twin: the twin bound to the node key (0 only in stores from before ids were assigned) */
  twinId: number;
  publicKey: Uint8Array;
  scheme: SchemeName;
  /** hardware capacity as last registered */
  total: Units;
  registeredMs: number;
  updatedMs: number;
}

/** A node as the chain knows it (chain.proto NodeInfo). */
export interface ChainNode extends ChainNodeRegistration {
  /** 0 before the first proof */
  lastSequence: number;
  lastPeriodEndMs: number;
  /** hash of the last accepted proof header (32 zero bytes before the first) */
  lastHash: Uint8Array;
  /** as the node last reported it (node.power); "up" before any report */
  powerState?: "up" | "standby";
  powerTarget?: "up" | "standby";
}

/** A twin as the chain knows it (chain.proto TwinInfo). */
export interface ChainTwin {
  twinId: number;
  publicKey: Uint8Array;
  scheme: SchemeName;
  registeredMs: number;
}

/** A farm as the chain knows it (chain.proto FarmInfo). */
export interface ChainFarm {
  farmId: number;
  /** the twin that owns it */
  twinId: number;
  name: string;
  registeredMs: number;
  updatedMs: number;
  /** nodes registered in this farm */
  nodeCount: number;
  /** any twin's node may join */
  open: boolean;
  /** twins whose nodes may join (besides the owner's) */
  allowedTwins: number[];
}

/** A node's proof chain head as the chain holds it (after its last accepted proof). */
export interface ChainProofHead {
  sequence: number;
  periodEndMs: number;
  hash: Uint8Array;
}

/** What registering did: the id the chain assigned (or already held for this key), and whether anything changed. */
export type Registration = { ok: true; id: number; kind: "registered" | "updated" | "unchanged" } | { ok: false; code: string; message: string };

/** Power state as a node reports it (GRID.md "Power management today"). */
export type PowerState = "up" | "standby" | "waking" | "down";

/**
 * The agent's view of a chain, whatever runs it: the chain stand-in over NATS (the default) or
 * tfchain over @polkadot/api. The chain assigns twin, farm and node ids and binds each to the
 * account (key) that registered it; nobody registers an id for someone else.
 *
 * Refusals are values (`{ok: false, code}`); a backend throws ChainError `chain_unavailable` when
 * the chain cannot be reached and `bad_reply` when its answer cannot be trusted.
 */
export interface ChainBackend {
  /** "standin" or "tfchain": for logs and status */
  readonly kind: string;
  /** The twin bound to `signer`'s account, created when absent (ids are assigned by the chain). */
  ensureTwin(signer: Signer): Promise<Registration>;
  /**
   * The node of `signer`'s twin in farm `farmId`, created when absent, its resources updated when
   * they differ from `total`. The id comes back in the result.
   */
  ensureNode(signer: Signer, node: { farmId: number; total: Units }): Promise<Registration>;
  /** Lookups from chain storage; undefined when the id is not registered. */
  twin(twinId: number): Promise<ChainTwin | undefined>;
  node(nodeId: number): Promise<ChainNode | undefined>;
  farm(farmId: number): Promise<ChainFarm | undefined>;
  /**
   * Submit a Signed{UsageProof} envelope with the encoded twin subtotals its header commits to
   * (billing, docs/billing.md); an accepted replay is {ok: true, code: "duplicate"}.
   */
  submitProof(signer: Signer, envelope: Uint8Array, twins?: Uint8Array[]): Promise<ChainResult>;
  /** The node's proof chain head; undefined before its first proof or when unknown. */
  head(nodeId: number): Promise<ChainProofHead | undefined>;
  /** Report the node's power state, where the chain keeps one (optional). */
  reportPower?(signer: Signer, nodeId: number, state: PowerState): Promise<ChainResult>;
  close(): Promise<void>;
}
