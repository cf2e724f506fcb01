import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { Keyring } from "@polkadot/keyring";
import { encodeAddress, signatureVerify } from "@polkadot/util-crypto";
import { addressOf, createKeyFile, cryptoReady, hexToU8a, isHex, toHex, domainMessage, loadKeyFile, signDomain, signerFromSeed, verify, verifyDomain } from "../../agent/identity/keys";
import { DOMAIN } from "../../agent/identity/domains";
import { open, seal } from "../../agent/identity/envelope";
import { tmpDir } from "../utils/agent";

beforeAll(() => cryptoReady());

const seed = new Uint8Array(32).map((_, i) => i + 1);

describe("keys and signatures (real crypto)", () => {
  test.each(["ed25519", "sr25519"] as const)("%s: our signer matches @polkadot/keyring keys and signatures verify both ways", (scheme) => {
    const ours = signerFromSeed(scheme, seed);
    const pair = new Keyring({ type: scheme, ss58Format: 42 }).addFromSeed(seed);
    expect(Buffer.from(ours.publicKey).toString("hex")).toBe(Buffer.from(pair.publicKey).toString("hex"));
    expect(ours.address).toBe(pair.address);
    const msg = domainMessage(DOMAIN.Deployment, new Uint8Array([1, 2, 3]));
    const sig = ours.sign(msg);
    expect(signatureVerify(msg, sig, pair.publicKey).isValid).toBe(true);
    expect(verify(scheme, pair.publicKey, msg, pair.sign(msg))).toBe(true);
  });

  test("SS58 addresses and hex without @polkadot: the same as @polkadot's for any key, leading zeros too", () => {
    const keys = [new Uint8Array(32), new Uint8Array(32).fill(255), new Uint8Array(32).map((_, i) => (i < 3 ? 0 : i * 7))];
    for (let i = 0; i < 50; i++) keys.push(new Uint8Array(32).map(() => Math.floor(Math.random() * 256)));
    for (const k of keys) {
      expect(addressOf(k)).toBe(encodeAddress(k, 42));
      expect(toHex(hexToU8a(toHex(k)))).toBe(toHex(k));
    }
    expect([isHex("0x"), isHex("0xAb01"), isHex("0xabc"), isHex("ab"), isHex(12)]).toEqual([true, true, false, false, false]);
  });

  test.each(["ed25519", "sr25519"] as const)("%s: a signature for one domain does not verify under another, or for other bytes", (scheme) => {
    const s = signerFromSeed(scheme, seed);
    const payload = new Uint8Array([9, 9, 9]);
    const sig = signDomain(s, DOMAIN.DecisionReply, payload);
    expect(verifyDomain(scheme, s.publicKey, DOMAIN.DecisionReply, payload, sig)).toBe(true);
    expect(verifyDomain(scheme, s.publicKey, DOMAIN.StatusReply, payload, sig)).toBe(false);
    expect(verifyDomain(scheme, s.publicKey, DOMAIN.DecisionReply, new Uint8Array([9, 9, 8]), sig)).toBe(false);
    expect(verify(scheme, s.publicKey, new Uint8Array(1), new Uint8Array(10))).toBe(false);
  });

  test("envelopes: open checks the signature and the domain; tampering is bad_signature, junk is malformed", () => {
    const s = signerFromSeed("ed25519", seed);
    const env = seal(s, DOMAIN.StatusReply, new Uint8Array([1, 2]));
    const ok = open(env, DOMAIN.StatusReply);
    expect(ok.ok && Buffer.from(ok.value.payload)).toEqual(Buffer.from([1, 2]));
    expect(open(env, DOMAIN.DecisionReply)).toMatchObject({ ok: false, refusal: { code: "bad_signature" } });
    const tampered = Uint8Array.from(env);
    tampered[3] ^= 1;
    expect(open(tampered, DOMAIN.StatusReply).ok).toBe(false);
    expect(open(new Uint8Array([0xff, 0xff, 0xff]), DOMAIN.StatusReply)).toMatchObject({ ok: false, refusal: { code: "malformed" } });
    expect(open(new Uint8Array(300 * 1024), DOMAIN.StatusReply)).toMatchObject({ ok: false, refusal: { code: "too_large" } });
  });

  test("key files: 0600, never overwritten, refused when readable by others, type checked", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "k.json");
    const kf = await createKeyFile(file, "sr25519");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(kf.address).toMatch(/^5/);
    const signer = await loadKeyFile(file);
    expect(signer.address).toBe(kf.address);
    expect(signer.scheme).toBe("sr25519");
    await expect(createKeyFile(file, "ed25519")).rejects.toMatchObject({ code: "key_exists" });
    fs.chmodSync(file, 0o644);
    await expect(loadKeyFile(file)).rejects.toMatchObject({ code: "key_permissions" });
    await expect(loadKeyFile(path.join(dir, "none.json"))).rejects.toMatchObject({ code: "key_missing" });
    fs.writeFileSync(path.join(dir, "bad.json"), JSON.stringify({ type: "rsa", seed: "0x00" }), { mode: 0o600 });
    await expect(loadKeyFile(path.join(dir, "bad.json"))).rejects.toMatchObject({ code: "key_invalid" });
  });
});

describe("sr25519 verification without @polkadot's WASM (the daemon's footprint)", () => {
  test("a fresh process verifies good sr25519 signatures and refuses bad ones without loading @polkadot/util-crypto", () => {
    const signer = signerFromSeed("sr25519", seed);
    const msg = domainMessage(DOMAIN.CapacityAnnouncement, new Uint8Array([9, 8, 7]));
    const sig = signer.sign(msg);
    const bad = Uint8Array.from(sig);
    bad[10] ^= 1;
    // the built module (npm test builds first), in a process of its own: nothing loaded before it
    const keys = path.join(__dirname, "..", "..", "dist", "agent", "identity", "keys.js");
    expect(fs.existsSync(keys)).toBe(true);
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    const code = `
      const k = require(${JSON.stringify(keys)});
      const b = (s) => new Uint8Array(Buffer.from(s, "hex"));
      process.stdout.write(JSON.stringify({
        good: k.verify("sr25519", b("${hex(signer.publicKey)}"), b("${hex(msg)}"), b("${hex(sig)}")),
        bad: k.verify("sr25519", b("${hex(signer.publicKey)}"), b("${hex(msg)}"), b("${hex(bad)}")),
        polkadot: Object.keys(require.cache).filter((f) => f.includes("@polkadot/")).length,
      }));`;
    const out = JSON.parse(execFileSync(process.execPath, ["-e", code], { encoding: "utf8" }));
    expect(out).toEqual({ good: true, bad: false, polkadot: 0 });
  });
});
