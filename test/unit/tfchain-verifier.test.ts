import * as crypto from "node:crypto";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { encodeProofHeader, zeroAmounts, ZERO_HASH, type ProofHeader } from "../../agent/proofs/proof";
import { proofRemark } from "../../agent/authority/verifier";
import { encode } from "../../agent/wire/codec";

const header: ProofHeader = { nodeId: 7, farmId: 1, sequence: 3, periodStartMs: 1_000, periodEndMs: 3_601_000, previousHash: ZERO_HASH, recordCount: 0, totals: zeroAmounts(), recordsRoot: ZERO_HASH, downtimeMs: 0 };

describe("proofRemark: which remarks the verifier judges", () => {
  beforeAll(() => cryptoReady());
  const node = signerFromSeed("ed25519", new Uint8Array(32).fill(1));

  it("takes a signed proof envelope, with its header, signer and scheme", () => {
    const p = proofRemark(seal(node, DOMAIN.UsageProof, encodeProofHeader(header)));
    expect(p?.header).toEqual(header);
    expect(Buffer.from(p!.signer).equals(Buffer.from(node.publicKey))).toBe(true);
    expect(p?.scheme).toBe("ed25519");
  });

  it("takes an envelope whose signature does not verify (the rules refuse it: bad_signature)", () => {
    const env = seal(node, DOMAIN.UsageProof, encodeProofHeader(header));
    env[env.length - 1] ^= 0xff; // the signature is the last field
    expect(proofRemark(env)?.header.sequence).toBe(3);
  });

  it("takes a ProofSubmission (a proof with the twin subtotals it commits to: billing) with its twins", () => {
    const env = seal(node, DOMAIN.UsageProof, encodeProofHeader(header));
    const twins = [new Uint8Array([8, 7, 16, 1]), new Uint8Array([8, 9, 16, 2])];
    const bytes = encode("ProofSubmission", { proof: env, twins });
    const p = proofRemark(bytes);
    expect(p?.header).toEqual(header);
    expect(p?.twins?.map((t) => Buffer.from(t).toString("hex"))).toEqual(twins.map((t) => Buffer.from(t).toString("hex")));
    expect(Buffer.from(p!.bytes).equals(Buffer.from(bytes))).toBe(true);
    // a plain envelope carries none; a submission with no subtotals (a header settling nothing) has an empty list
    expect(proofRemark(env)?.twins).toBeUndefined();
    expect(proofRemark(encode("ProofSubmission", { proof: env, twins: [] }))?.twins).toEqual([]);
    // a submission whose proof is no proof envelope is skipped
    expect(proofRemark(encode("ProofSubmission", { proof: new TextEncoder().encode("hello"), twins }))).toBeUndefined();
  });

  it.each([
    ["text", new TextEncoder().encode("hello tfchain")],
    ["random bytes", new Uint8Array(crypto.randomBytes(200))],
    ["empty", new Uint8Array()],
    ["an envelope of another type", seal(node, DOMAIN.Deployment, new Uint8Array([1, 2, 3]))],
  ])("skips %s", (_name, bytes) => {
    expect(proofRemark(bytes)).toBeUndefined();
  });
});
