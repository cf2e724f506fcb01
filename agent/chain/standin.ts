import type { Units } from "../capacity/units";
import type { Signer } from "../identity/keys";
import type { ChainBackend, ChainFarm, ChainNode, ChainProofHead, ChainResult, ChainTwin, PowerState, Registration } from "./backend";
import type { ChainClient } from "./client";

/**
 * ChainBackend over the chain stand-in (`capacity-agent chain`, reached over NATS by ChainClient).
 * The stand-in assigns ids like tfchain: ensureTwin and ensureNode send id 0 ("mine") and get the
 * assigned id back in the reply.
 */
export class StandinBackend implements ChainBackend {
  readonly kind = "standin";

  constructor(readonly client: ChainClient) {}

  ensureTwin(signer: Signer): Promise<Registration> {
    return this.client.registerTwin(signer, 0);
  }

  ensureNode(signer: Signer, node: { farmId: number; total: Units }): Promise<Registration> {
    return this.client.registerNode(signer, { nodeId: 0, twinId: 0, farmId: node.farmId, total: node.total });
  }

  twin(twinId: number): Promise<ChainTwin | undefined> {
    return this.client.twin(twinId);
  }

  node(nodeId: number): Promise<ChainNode | undefined> {
    return this.client.node(nodeId);
  }

  farm(farmId: number): Promise<ChainFarm | undefined> {
    return this.client.farm(farmId);
  }

  /** The stand-in takes the signed envelope as it is; the node key signed it already. */
  submitProof(_signer: Signer, envelope: Uint8Array, twins?: Uint8Array[]): Promise<ChainResult> {
    return twins ? this.client.settleProof(envelope, twins) : this.client.submitProof(envelope);
  }

  /** node.power on the stand-in: it keeps state and target in the node's record. */
  async reportPower(signer: Signer, nodeId: number, state: PowerState): Promise<ChainResult> {
    if (state !== "up" && state !== "standby") return { ok: false, code: "malformed", message: `the stand-in keeps up or standby, not ${state}` };
    return this.client.setPower(signer, nodeId, state);
  }

  head(nodeId: number): Promise<ChainProofHead | undefined> {
    return this.client.head(nodeId);
  }

  async close(): Promise<void> {
    // the NATS connection belongs to the caller
  }
}
