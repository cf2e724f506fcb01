/**
 * A proof remark in flight when the agent dies lands exactly once (docs/tfchain.md "Exactly
 * once"), on the real runtime (spec 49 under chopsticks, scripts/tfchain-dev on a free port).
 * The crash is simulated where it matters: the signed remark is written to the in-flight file
 * (prepareRemark), then sent by hand or not at all, then the backend is dropped and a new one on
 * the same file is asked to deliver the same proof, as the agent's outbox does after a restart.
 * Skipped with a message when the chain spec (test data outside the repository) is absent.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { blake2b256 } from "../../agent/proofs/proof";
import { TfchainBackend } from "../../agent/tfchain/backend";
import { remarkIntent } from "../../agent/tfchain/calls";
import { fundAccounts, PLANCK_PER_TFT } from "../../agent/tfchain/dev";
import { tmpDir } from "../utils/agent";
import { describeWith, startTfchain, tfchainSpec, type TfchainHandle } from "../utils/tfchain";

jest.setTimeout(180_000);

describeWith(tfchainSpec(), "the tfchain in-flight remark test")("a proof remark in flight at a crash lands once", () => {
  let chain: TfchainHandle;
  const dir = tmpDir("tfchain-inflight-");
  let key: Signer;
  const open: TfchainBackend[] = [];

  async function backend(inflightFile?: string): Promise<TfchainBackend> {
    const b = await TfchainBackend.connect({ url: chain.url, inclusionTimeoutMs: 60_000, inflightFile }, { logger: silentLogger() });
    open.push(b);
    return b;
  }

  /** How many system.remark extrinsics in the chain's blocks carry exactly these bytes. */
  async function remarksOf(b: TfchainBackend, bytes: Uint8Array): Promise<number> {
    const head = (await b.api.rpc.chain.getHeader(await b.api.rpc.chain.getFinalizedHead())).number.toNumber();
    let count = 0;
    for (let n = 1; n <= head; n++) {
      const block = await b.api.rpc.chain.getBlock(await b.api.rpc.chain.getBlockHash(n));
      for (const x of block.block.extrinsics) {
        if (x.method.section !== "system" || x.method.method !== "remark") continue;
        if (Buffer.from((x.method.args[0] as unknown as { toU8a(bare: boolean): Uint8Array }).toU8a(true)).equals(Buffer.from(bytes))) count++;
      }
    }
    return count;
  }

  function proofBytes(): Uint8Array {
    return new Uint8Array(crypto.randomBytes(200));
  }

  beforeAll(async () => {
    await cryptoReady();
    chain = await startTfchain();
    key = signerFromSeed("ed25519", new Uint8Array(crypto.randomBytes(32)));
    await fundAccounts(chain.url, [key.address], 1000n * PLANCK_PER_TFT);
  });

  afterAll(async () => {
    for (const b of open) await b.close();
    await chain?.stop();
  });

  it("sent, then the agent killed before it learnt the outcome: the restart finds it in its block and does not send it again", async () => {
    const file = path.join(dir, "a", "tfchain-inflight.json");
    const bytes = proofBytes();
    const before = await backend(file);
    const rec = await before.prepareRemark(key, bytes);
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toMatchObject({ address: key.address, nonce: rec.nonce, remarkHash: Buffer.from(blake2b256(bytes)).toString("hex") });
    // the dead process had sent it: it lands
    await before.api.rpc.author.submitExtrinsic(rec.extrinsic);
    await waitNonce(before, key.address, rec.nonce + 1);
    await before.close();

    const after = await backend(file);
    const r = await after.submitProof(key, bytes);
    expect(r).toEqual({ ok: true, code: "ok", proofHash: blake2b256(bytes) });
    expect(await remarksOf(after, bytes)).toBe(1);
    expect(await after.accountNonce(key.address)).toBe(rec.nonce + 1);
    expect(fs.existsSync(file)).toBe(false);
  });

  it("signed and stored, the agent killed before sending: the restart sends that same extrinsic (same nonce) once", async () => {
    const file = path.join(dir, "b", "tfchain-inflight.json");
    const bytes = proofBytes();
    const before = await backend(file);
    const rec = await before.prepareRemark(key, bytes);
    await before.close();

    const after = await backend(file);
    expect(await after.submitProof(key, bytes)).toMatchObject({ ok: true, code: "ok" });
    expect(await remarksOf(after, bytes)).toBe(1);
    const found = await after.findExtrinsic(rec.extrinsicHash, rec.fromBlock);
    expect(found).toBeDefined();
    expect(await after.accountNonce(key.address)).toBe(rec.nonce + 1);
    // delivering it again (the outbox's retry) finds nothing in flight and would send a new one: the
    // agent only retries what it has not recorded, so here the file is gone
    expect(fs.existsSync(file)).toBe(false);
  });

  it("never sent, and its nonce taken by another transaction meanwhile: the proof is sent anew, once", async () => {
    const file = path.join(dir, "c", "tfchain-inflight.json");
    const bytes = proofBytes();
    const before = await backend(file);
    const rec = await before.prepareRemark(key, bytes);
    await before.close();

    const after = await backend(file);
    // another extrinsic of the same key uses the stored nonce
    expect(await after.submit(key, remarkIntent(new TextEncoder().encode("not a proof")))).toMatchObject({ ok: true });
    expect(await after.accountNonce(key.address)).toBe(rec.nonce + 1);
    expect(await after.submitProof(key, bytes)).toMatchObject({ ok: true, code: "ok" });
    expect(await remarksOf(after, bytes)).toBe(1);
    expect(await after.findExtrinsic(rec.extrinsicHash, rec.fromBlock)).toBeUndefined();
    expect(await after.accountNonce(key.address)).toBe(rec.nonce + 2);
  });

  it("without the in-flight file (as before): the same crash puts the remark on the chain twice", async () => {
    const file = path.join(dir, "d", "tfchain-inflight.json");
    const bytes = proofBytes();
    const before = await backend(file);
    const rec = await before.prepareRemark(key, bytes);
    await before.api.rpc.author.submitExtrinsic(rec.extrinsic);
    await waitNonce(before, key.address, rec.nonce + 1);
    await before.close();
    const forgetful = await backend(undefined);
    expect(await forgetful.submitProof(key, bytes)).toMatchObject({ ok: true });
    expect(await remarksOf(forgetful, bytes)).toBe(2);
  });
});

async function waitNonce(b: TfchainBackend, address: string, atLeast: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await b.accountNonce(address)) < atLeast) {
    if (Date.now() > deadline) throw new Error(`nonce did not reach ${atLeast}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
