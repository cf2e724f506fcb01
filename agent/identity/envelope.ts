import { ok, refused, type Result } from "../result";
import { decode, encode, WireError, type DecodeLimits } from "../wire/codec";
import type { WireSigned } from "../wire/generated";
import type { Domain } from "./domains";
import { SCHEME_WIRE, schemeFromWire, schemeReady, signDomain, verifyDomain, type SchemeName, type Signer } from "./keys";

export interface Opened {
  payload: Uint8Array;
  signer: Uint8Array;
  scheme: SchemeName;
  signature: Uint8Array;
}

/** Wrap a payload in a Signed envelope (common.proto) signed under `domain`. */
export function seal(signer: Signer, domain: Domain, payload: Uint8Array): Uint8Array {
  return encode("Signed", {
    payload,
    signer: signer.publicKey,
    scheme: SCHEME_WIRE[signer.scheme],
    signature: signDomain(signer, domain, payload),
  });
}

/** Why an envelope does not open. */
export interface OpenRefusal {
  code: "malformed" | "too_large" | "bad_signature";
  message: string;
}

export type OpenResult = Result<Opened, OpenRefusal>;

/**
 * Decode a Signed envelope and check its signature under `domain`. It does not say WHO may sign:
 * the caller compares `value.signer` with the key the registry binds to the claimed identity.
 */
export function open(bytes: Uint8Array, domain: Domain, limits?: DecodeLimits): OpenResult {
  let env: WireSigned;
  try {
    env = decode("Signed", bytes, limits);
  } catch (err) {
    if (err instanceof WireError) return refused({ code: err.code, message: err.message });
    throw err;
  }
  const scheme = schemeFromWire(env.scheme);
  if (!scheme) return refused({ code: "malformed", message: `unknown signature scheme ${env.scheme}` });
  if (env.signer.length !== 32 || env.signature.length !== 64) {
    return refused({ code: "malformed", message: "signer must be 32 bytes and signature 64 bytes" });
  }
  if (!verifyDomain(scheme, env.signer, domain, env.payload, env.signature)) {
    return refused({ code: "bad_signature", message: `signature does not verify for ${domain}` });
  }
  return ok({ payload: env.payload, signer: env.signer, scheme, signature: env.signature });
}

/**
 * Load the crypto an envelope's scheme needs before `open` checks it (sr25519's WASM is loaded
 * only when one shows up). Junk is left for `open` to refuse.
 */
export async function envelopeReady(bytes: Uint8Array, limits?: DecodeLimits): Promise<void> {
  let scheme: number;
  try {
    scheme = decode("Signed", bytes, limits).scheme;
  } catch {
    return;
  }
  await schemeReady(schemeFromWire(scheme));
}

export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}
