import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady, sr25519Verify, encodeAddress } from "@polkadot/util-crypto";
import { u8aToHex, hexToU8a, isHex } from "@polkadot/util";
import { IdentityError } from "./errors";
import type { Domain } from "./domains";

export type SchemeName = "ed25519" | "sr25519";
export const SCHEMES: readonly SchemeName[] = ["ed25519", "sr25519"];

/** Scheme enum values of common.proto. */
export const SCHEME_WIRE: Record<SchemeName, number> = { ed25519: 1, sr25519: 2 };
export function schemeFromWire(n: number): SchemeName | undefined {
  return n === 1 ? "ed25519" : n === 2 ? "sr25519" : undefined;
}

/** SS58 prefix 42, the generic Substrate one tfchain uses. */
export const SS58_FORMAT = 42;

export interface Signer {
  readonly scheme: SchemeName;
  readonly publicKey: Uint8Array;
  readonly address: string;
  sign(message: Uint8Array): Uint8Array;
}

/** The key file written by `capacity-agent keys new`: JSON, mode 0600. */
export interface KeyFile {
  type: SchemeName;
  /** 32-byte secret seed, 0x hex */
  seed: string;
  publicKey: string;
  address: string;
}

let ready: Promise<boolean> | null = null;
/** sr25519 and address helpers need the WASM crypto loaded once per process. */
export function cryptoReady(): Promise<boolean> {
  if (!ready) ready = cryptoWaitReady();
  return ready;
}

/** utf8(tag) || 0x00 || payload */
export function domainMessage(domain: Domain, payload: Uint8Array): Uint8Array {
  const tag = Buffer.from(domain, "utf8");
  const out = new Uint8Array(tag.length + 1 + payload.length);
  out.set(tag, 0);
  out[tag.length] = 0;
  out.set(payload, tag.length + 1);
  return out;
}

const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** ed25519 keys through node's native crypto: same signatures as @polkadot (ed25519 is deterministic), much faster. */
class Ed25519Signer implements Signer {
  readonly scheme = "ed25519" as const;
  readonly publicKey: Uint8Array;
  readonly address: string;
  private readonly key: crypto.KeyObject;
  constructor(seed: Uint8Array) {
    this.key = crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
    const spki = crypto.createPublicKey(this.key).export({ format: "der", type: "spki" });
    this.publicKey = new Uint8Array(spki.subarray(ED25519_SPKI_PREFIX.length));
    this.address = encodeAddress(this.publicKey, SS58_FORMAT);
  }
  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(crypto.sign(null, message, this.key));
  }
}

class PolkadotSigner implements Signer {
  readonly scheme: SchemeName;
  readonly publicKey: Uint8Array;
  readonly address: string;
  private readonly pair: ReturnType<Keyring["addFromSeed"]>;
  constructor(scheme: SchemeName, seed: Uint8Array) {
    const keyring = new Keyring({ type: scheme, ss58Format: SS58_FORMAT });
    this.pair = keyring.addFromSeed(seed);
    this.scheme = scheme;
    this.publicKey = this.pair.publicKey;
    this.address = this.pair.address;
  }
  sign(message: Uint8Array): Uint8Array {
    return this.pair.sign(message);
  }
}

/** A signer from a 32-byte seed. Call `await cryptoReady()` once before using sr25519. */
export function signerFromSeed(scheme: SchemeName, seed: Uint8Array): Signer {
  if (seed.length !== 32) throw new IdentityError("key_invalid", `a seed is 32 bytes, got ${seed.length}`);
  return scheme === "ed25519" ? new Ed25519Signer(seed) : new PolkadotSigner(scheme, seed);
}

export function signDomain(signer: Signer, domain: Domain, payload: Uint8Array): Uint8Array {
  return signer.sign(domainMessage(domain, payload));
}

const spkiCache = new Map<string, crypto.KeyObject>();
function ed25519PublicKey(pub: Uint8Array): crypto.KeyObject {
  const k = Buffer.from(pub).toString("hex");
  let key = spkiCache.get(k);
  if (!key) {
    key = crypto.createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, pub]), format: "der", type: "spki" });
    if (spkiCache.size > 10000) spkiCache.clear();
    spkiCache.set(k, key);
  }
  return key;
}

/**
 * Verify a signature. ed25519 goes through node's native crypto, sr25519 through
 * @polkadot/util-crypto (needs cryptoReady()). Never throws on bad input: returns false.
 */
export function verify(scheme: SchemeName, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    if (scheme === "ed25519") return crypto.verify(null, message, ed25519PublicKey(publicKey), signature);
    return sr25519Verify(message, signature, publicKey);
  } catch {
    return false;
  }
}

export function verifyDomain(scheme: SchemeName, publicKey: Uint8Array, domain: Domain, payload: Uint8Array, signature: Uint8Array): boolean {
  return verify(scheme, publicKey, domainMessage(domain, payload), signature);
}

export function toHex(b: Uint8Array): string {
  return u8aToHex(b);
}

export function parsePublicKey(v: unknown, field: string): Uint8Array {
  if (typeof v !== "string" || !isHex(v) || v.length !== 66) {
    throw new IdentityError("key_invalid", `${field}: expected a 32-byte public key as 0x hex (66 characters)`);
  }
  return hexToU8a(v);
}

export function addressOf(publicKey: Uint8Array): string {
  return encodeAddress(publicKey, SS58_FORMAT);
}

/** Create a new key file (mode 0600, never overwriting an existing file). */
export async function createKeyFile(file: string, scheme: SchemeName): Promise<KeyFile> {
  await cryptoReady();
  const seed = new Uint8Array(crypto.randomBytes(32));
  const signer = signerFromSeed(scheme, seed);
  const kf: KeyFile = { type: scheme, seed: u8aToHex(seed), publicKey: u8aToHex(signer.publicKey), address: signer.address };
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new IdentityError("key_exists", `${file} exists already; refusing to overwrite a key`, { path: file });
    }
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(kf, null, 2) + "\n");
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return kf;
}

/** Load a key file; refuses files readable by group or others, like ssh does. */
export async function loadKeyFile(file: string): Promise<Signer> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new IdentityError("key_missing", `key file ${file} does not exist (create one with: capacity-agent keys new --out ${file})`, { path: file });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new IdentityError("key_permissions", `key file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`, { path: file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new IdentityError("key_invalid", `key file ${file} is not valid JSON`, { path: file, cause: err });
  }
  const kf = raw as Partial<KeyFile>;
  if (kf.type !== "ed25519" && kf.type !== "sr25519") {
    throw new IdentityError("key_invalid", `key file ${file}: type must be "ed25519" or "sr25519"`, { path: file });
  }
  if (typeof kf.seed !== "string" || !isHex(kf.seed) || kf.seed.length !== 66) {
    throw new IdentityError("key_invalid", `key file ${file}: seed must be 32 bytes as 0x hex`, { path: file });
  }
  await cryptoReady();
  const signer = signerFromSeed(kf.type, hexToU8a(kf.seed));
  if (typeof kf.publicKey === "string" && kf.publicKey.toLowerCase() !== u8aToHex(signer.publicKey)) {
    throw new IdentityError("key_invalid", `key file ${file}: publicKey does not match the seed`, { path: file });
  }
  return signer;
}
