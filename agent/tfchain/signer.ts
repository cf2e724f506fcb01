import type { Signer as ApiSigner, SignerResult } from "@polkadot/api/types";
import type { SignerPayloadJSON } from "@polkadot/types/types";
import type { Registry } from "@polkadot/types/types";
import { u8aConcat, u8aToHex } from "@polkadot/util";
import { blake2AsU8a } from "@polkadot/util-crypto";
import type { Signer } from "../identity/keys";

/** MultiSignature variant index per scheme. */
const MULTI_SIGNATURE: Record<Signer["scheme"], number> = { ed25519: 0, sr25519: 1 };

/**
 * Signs extrinsics with the agent's Signer (its node key), the way a Substrate node checks them:
 * the SCALE payload, hashed with blake2-256 when longer than 256 bytes, signed, and tagged as a
 * MultiSignature of the key's scheme. The seed never leaves the Signer.
 */
export class ExtrinsicSigner implements ApiSigner {
  private id = 0;
  constructor(
    private readonly registry: Registry,
    private readonly signer: Signer,
  ) {}

  async signPayload(payload: SignerPayloadJSON): Promise<SignerResult> {
    const p = this.registry.createType("ExtrinsicPayload", payload, { version: payload.version });
    let data = p.toU8a({ method: true });
    if (data.length > 256) data = blake2AsU8a(data, 256);
    const sig = this.signer.sign(data);
    return { id: ++this.id, signature: u8aToHex(u8aConcat([MULTI_SIGNATURE[this.signer.scheme]], sig)) };
  }
}
