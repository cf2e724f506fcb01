/**
 * tfchain stores accounts, not key schemes: a twin resolved through a ChainRegistry with
 * twinSchemes "any" carries scheme "any", and the node API accepts a deployment signature that
 * verifies under either scheme (ed25519 or sr25519) for the twin's public key - and nothing
 * else. With "recorded" (the stand-in), the recorded scheme must match, as before. Real keys,
 * real signatures; the chain behind the registry is a table (ChainLookups).
 */
import * as crypto from "node:crypto";
import { parseDeployment } from "../../agent/admission/spec";
import { buildDeployRequest } from "../../agent/api/messages";
import { verifyDeployRequest } from "../../agent/api/verify";
import { ChainRegistry, type ChainLookups } from "../../agent/chain/registry";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { schemeAdmits } from "../../agent/registry/types";
import { DEFAULT_LIMITS } from "../../agent/wire/codec";

const key = (scheme: "ed25519" | "sr25519"): Signer => signerFromSeed(scheme, new Uint8Array(crypto.randomBytes(32)));

let ed: Signer;
let sr: Signer;
let other: Signer;

beforeAll(async () => {
  await cryptoReady();
  ed = key("ed25519");
  sr = key("sr25519");
  other = key("sr25519");
});

/** twins 1 (ed's key) and 2 (sr's key), both recorded as the tfchain backend records an unknown account: sr25519 */
function chain(): ChainLookups {
  return {
    twin: async (id) => (id === 1 ? { twinId: 1, publicKey: ed.publicKey, scheme: "sr25519", registeredMs: 0 } : id === 2 ? { twinId: 2, publicKey: sr.publicKey, scheme: "sr25519", registeredMs: 0 } : undefined),
    node: async () => undefined,
  };
}

function request(twinId: number, signer: Signer): Uint8Array {
  const r = parseDeployment({ id: 10 + twinId, twinId, version: 1, workloads: [{ name: "d", type: "zmount", size: "1GiB" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return buildDeployRequest(r.value, [{ twinId, signer }]);
}

test("schemeAdmits: a named scheme admits itself only, any admits both", () => {
  expect(schemeAdmits("ed25519", "ed25519")).toBe(true);
  expect(schemeAdmits("ed25519", "sr25519")).toBe(false);
  expect(schemeAdmits("any", "ed25519")).toBe(true);
  expect(schemeAdmits("any", "sr25519")).toBe(true);
});

test("twinSchemes any: records say any; signatures under either scheme verify, another key does not", async () => {
  const reg = new ChainRegistry({ twinSchemes: "any" }, { client: chain(), logger: silentLogger() });
  expect((await reg.twin(1))?.scheme).toBe("any");
  // an ed25519 signature for an account the chain could not tell the scheme of
  expect(await verifyDeployRequest(request(1, ed), reg, DEFAULT_LIMITS)).toMatchObject({ ok: true });
  expect(await verifyDeployRequest(request(2, sr), reg, DEFAULT_LIMITS)).toMatchObject({ ok: true });
  // the right scheme but another key: refused
  expect(await verifyDeployRequest(request(2, other), reg, DEFAULT_LIMITS)).toMatchObject({ ok: false, refusal: { rejection: { code: "bad_signature" } } });
});

test("twinSchemes recorded (default): the recorded scheme must match", async () => {
  const reg = new ChainRegistry({}, { client: chain(), logger: silentLogger() });
  expect((await reg.twin(1))?.scheme).toBe("sr25519");
  expect(await verifyDeployRequest(request(1, ed), reg, DEFAULT_LIMITS)).toMatchObject({ ok: false, refusal: { rejection: { code: "bad_signature" } } });
  expect(await verifyDeployRequest(request(2, sr), reg, DEFAULT_LIMITS)).toMatchObject({ ok: true });
});

test("twinSchemes is validated", () => {
  expect(() => new ChainRegistry({ twinSchemes: "both" as never }, { client: chain(), logger: silentLogger() })).toThrow(/twinSchemes/);
});
