/**
 * `dev_storageDiff`, the RPC method scripts/tfchain-dev adds to chopsticks for
 * `scripts/chain-footprint --real`: the entries a block wrote, [key, after, before], against the
 * real runtime (spec 49). A createTwin block writes the new twin (before: absent) and the
 * account-to-twin map; a prefix filter keeps only those pallets; nothing unchanged is listed; a
 * malformed hash is refused.
 */
import * as crypto from "node:crypto";
import { xxhashAsHex } from "@polkadot/util-crypto";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { TfchainBackend } from "../../agent/tfchain/backend";
import { fundAccounts, PLANCK_PER_TFT } from "../../agent/tfchain/dev";
import { describeWith, startTfchain, tfchainSpec, type TfchainHandle } from "../utils/tfchain";

jest.setTimeout(180_000);

type Diff = Array<[string, string | null, string | null]>;

describeWith(tfchainSpec(), "the tfchain runtime")("dev_storageDiff on the real runtime", () => {
  let chain: TfchainHandle;
  let backend: TfchainBackend;
  beforeAll(async () => {
    await cryptoReady();
    chain = await startTfchain();
    backend = await TfchainBackend.connect({ url: chain.url, connectTimeoutMs: 60_000 }, { logger: silentLogger() });
  });
  afterAll(async () => {
    await backend?.close();
    await chain?.stop();
  });

  test("a createTwin block's diff holds the new twin (absent before) and the account map; unchanged entries are left out", async () => {
    const who = signerFromSeed("sr25519", new Uint8Array(crypto.randomBytes(32)));
    await fundAccounts(chain.url, [who.address], 1000n * PLANCK_PER_TFT);
    const api = backend.api;
    const head = async (): Promise<number> => (await api.rpc.chain.getHeader()).number.toNumber();
    const from = await head();
    const r = await backend.ensureTwin(who);
    expect(r.ok).toBe(true);
    const to = await head();
    expect(to).toBeGreaterThan(from);
    const tfgrid = xxhashAsHex("TfgridModule", 128);
    const twinsPrefix = tfgrid + xxhashAsHex("Twins", 128).slice(2);
    const all: Diff = [];
    for (let n = from + 1; n <= to; n++) {
      const hash = (await api.rpc.chain.getBlockHash(n)).toHex();
      const filtered = (await api.rpc("dev_storageDiff" as never, hash as never, [tfgrid] as never)) as unknown as Diff;
      const unfiltered = (await api.rpc("dev_storageDiff" as never, hash as never)) as unknown as Diff;
      expect(filtered.every(([k]) => k.startsWith(tfgrid))).toBe(true);
      // the filter only removes: every TfgridModule entry of the full diff is in the filtered one
      expect(unfiltered.filter(([k]) => k.startsWith(tfgrid))).toEqual(filtered);
      for (const [, after, before] of unfiltered) expect(after).not.toBe(before);
      all.push(...filtered);
    }
    const twin = all.filter(([k]) => k.startsWith(twinsPrefix));
    expect(twin).toHaveLength(1);
    const [key, after, before] = twin[0];
    expect(before).toBeNull();
    // the value is what chain storage now holds under that key
    expect(after).toBe(((await api.rpc.state.getStorage(key)) as unknown as { toHex(): string }).toHex());
    // the twin id is in the key (Blake2_128Concat(u32)) and it is the id the chain assigned
    expect(r.ok && key.endsWith(Buffer.from(new Uint32Array([r.id]).buffer).toString("hex"))).toBe(true);
  });

  test("a malformed block hash is refused", async () => {
    await expect(backend.api.rpc("dev_storageDiff" as never, "0x1234" as never)).rejects.toThrow(/block hash/);
    // known gap: a well-formed hash of no block of this chain answers [] (chopsticks' getBlock makes
    // up a block for any hash on a genesis chain), not an error
  });
});
