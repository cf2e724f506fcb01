import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Keyring } from "@polkadot/keyring";
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

/*
 * ed25519, hex and SS58 addresses need nothing but node's crypto; sr25519 verification needs only
 * @scure/sr25519 (pure JS). @polkadot's WASM crypto, which takes a third of a second, ~350 modules
 * and ~19 MB of RSS to load, is required only to SIGN with an sr25519 key (cryptoReady(), an sr25519
 * key file) and by the tfchain backend.
 */
type UtilCrypto = typeof import("@polkadot/util-crypto");
let utilCryptoModule: UtilCrypto | null = null;
function utilCrypto(): UtilCrypto {
  if (!utilCryptoModule) utilCryptoModule = require("@polkadot/util-crypto") as UtilCrypto;
  return utilCryptoModule;
}

let ready: Promise<boolean> | null = null;
/** sr25519 signing needs the WASM crypto loaded once per process: await this before signing with sr25519. */
export function cryptoReady(): Promise<boolean> {
  if (!ready) ready = utilCrypto().cryptoWaitReady();
  return ready;
}

/** Load the crypto a scheme needs (nothing for ed25519). */
export async function schemeReady(scheme: SchemeName | undefined): Promise<void> {
  if (scheme === "sr25519") await cryptoReady();
}

export function isHex(v: unknown): boolean {
  return typeof v === "string" && /^0x(?:[0-9a-fA-F]{2})*$/.test(v);
}

export function hexToU8a(v: string): Uint8Array {
  if (!isHex(v)) throw new IdentityError("key_invalid", `not 0x hex: ${JSON.stringify(v.slice(0, 20))}`);
  return new Uint8Array(Buffer.from(v.slice(2), "hex"));
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
function base58(bytes: Uint8Array): string {
  let n = BigInt("0x" + (Buffer.from(bytes).toString("hex") || "0"));
  let out = "";
  while (n > 0n) {
    out = BASE58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (let i = 0; i < bytes.length && bytes[i] === 0; i++) out = "1" + out;
  return out;
}

/** SS58 address (Substrate): base58(prefix || key || blake2b-512("SS58PRE" || prefix || key)[0..2]). */
function ss58(publicKey: Uint8Array, format: number): string {
  if (format < 0 || format > 63) throw new Error(`SS58 format ${format}: only the one-byte formats 0..63 are supported`);
  const body = Buffer.concat([Buffer.from([format]), publicKey]);
  const hash = crypto.createHash("blake2b512").update(Buffer.from("SS58PRE", "utf8")).update(body).digest();
  return base58(Buffer.concat([body, hash.subarray(0, 2)]));
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
    this.address = ss58(this.publicKey, SS58_FORMAT);
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
    const { Keyring: KeyringClass } = require("@polkadot/keyring") as { Keyring: typeof Keyring };
    const keyring = new KeyringClass({ type: scheme, ss58Format: SS58_FORMAT });
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
 * Verify a signature. ed25519 goes through node's native crypto, sr25519 through @scure/sr25519
 * (what @polkadot/util-crypto uses; no WASM needed). Never throws on bad input: returns false.
 */
export function verify(scheme: SchemeName, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  if (scheme === "ed25519") {
    try {
      return crypto.verify(null, message, ed25519PublicKey(publicKey), signature);
    } catch {
      return false;
    }
  }
  try {
    return sr25519().verify(message, signature, publicKey);
  } catch {
    return false;
  }
}

type ScureSr25519 = typeof import("@scure/sr25519");
let sr25519Module: ScureSr25519 | null = null;
/**
 * sr25519 verification is @scure/sr25519 (pure JS, synchronous): the very function
 * @polkadot/util-crypto 14's sr25519Verify calls, without loading util-crypto itself (~19 MB of
 * RSS with its WASM) into a daemon that only checks signatures.
 */
function sr25519(): ScureSr25519 {
  if (!sr25519Module) sr25519Module = require("@scure/sr25519") as ScureSr25519;
  return sr25519Module;
}

export function verifyDomain(scheme: SchemeName, publicKey: Uint8Array, domain: Domain, payload: Uint8Array, signature: Uint8Array): boolean {
  return verify(scheme, publicKey, domainMessage(domain, payload), signature);
}

export function toHex(b: Uint8Array): string {
  return "0x" + Buffer.from(b).toString("hex");
}

export function parsePublicKey(v: unknown, field: string): Uint8Array {
  if (typeof v !== "string" || !isHex(v) || v.length !== 66) {
    throw new IdentityError("key_invalid", `${field}: expected a 32-byte public key as 0x hex (66 characters)`);
  }
  return hexToU8a(v);
}

export function addressOf(publicKey: Uint8Array): string {
  return ss58(publicKey, SS58_FORMAT);
}

/** Create a new key file (mode 0600, never overwriting an existing file). */
export async function createKeyFile(file: string, scheme: SchemeName): Promise<KeyFile> {
  await schemeReady(scheme);
  const seed = new Uint8Array(crypto.randomBytes(32));
  const signer = signerFromSeed(scheme, seed);
  const kf: KeyFile = { type: scheme, seed: toHex(seed), publicKey: toHex(signer.publicKey), address: signer.address };
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
  await schemeReady(kf.type);
  const signer = signerFromSeed(kf.type, hexToU8a(kf.seed));
  if (typeof kf.publicKey === "string" && kf.publicKey.toLowerCase() !== toHex(signer.publicKey)) {
    throw new IdentityError("key_invalid", `key file ${file}: publicKey does not match the seed`, { path: file });
  }
  return signer;
}
