/**
 * Pricing read from tfchain (docs/billing.md "Pricing on tfchain"), against the real runtime
 * (spec 49 under chopsticks, scripts/tfchain-dev on a free port): the pricing policy and TFT price
 * read through agent/tfchain/pricing.ts are what the chain spec's genesis storage holds (decoded
 * here on its own from the raw spec), and the conversion to planck per hour follows the stated
 * integer rule. Skipped with a message when the chain spec (test data outside the repository) is absent.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { TfchainBackend } from "../../agent/tfchain/backend";
import { fundAccounts, PLANCK_PER_TFT } from "../../agent/tfchain/dev";
import { convertPricing, farmPricingPolicyId, readFarmPricing, readPricingPolicy, readTftPrice } from "../../agent/tfchain/pricing";
import { describeWith, startTfchain, tfchainSpec, type TfchainHandle } from "../utils/tfchain";

jest.setTimeout(240_000);

describeWith(tfchainSpec(), "the tfchain pricing test")("pricing read from the real runtime", () => {
  let chain: TfchainHandle;
  let backend: TfchainBackend;

  beforeAll(async () => {
    await cryptoReady();
    chain = await startTfchain();
    backend = await TfchainBackend.connect({ url: chain.url, inclusionTimeoutMs: 60_000 }, { logger: silentLogger() });
  });

  afterAll(async () => {
    await backend?.close();
    await chain?.stop();
  });

  it("reads pricing policy 1 exactly as the chain spec's genesis storage holds it", async () => {
    const spec = JSON.parse(fs.readFileSync(tfchainSpec(), "utf8")) as { genesis: { raw: { top: Record<string, string> } } };
    const key = (backend.api.query.tfgridModule as unknown as { pricingPolicies: { key(id: number): string } }).pricingPolicies.key(1);
    const raw = spec.genesis.raw.top[key];
    expect(raw).toMatch(/^0x/);
    const genesis = backend.api.registry.createType("PricingPolicy", raw).toJSON() as Record<string, { value: number; unit: string }> & { id: number };
    const read = await readPricingPolicy(backend.api, 1);
    expect(read).toBeDefined();
    expect(genesis.id).toBe(1);
    for (const f of ["cu", "su", "nu", "ipu"] as const) expect({ f, value: read![f].value, unit: read![f].unit }).toEqual({ f, value: BigInt(genesis[f].value), unit: genesis[f].unit });
    // the devnet genesis: threefold_default_pricing_policy
    expect(read).toMatchObject({ name: "threefold_default_pricing_policy", cu: { value: 320000n, unit: "Gigabytes" }, su: { value: 150000n, unit: "Gigabytes" }, nu: { value: 30000n, unit: "Gigabytes" }, ipu: { value: 49000n, unit: "Gigabytes" } });
    expect(await readPricingPolicy(backend.api, 99)).toBeUndefined();
  });

  it("the genesis has no TFT price (0): the fallback is used; a price set in storage is read as U16F16 and converts with one rounding per price", async () => {
    const spec = JSON.parse(fs.readFileSync(tfchainSpec(), "utf8")) as { genesis: { raw: { top: Record<string, string> } } };
    const avgKey = (backend.api.query.tftPriceModule as unknown as { averageTftPrice: { key(): string } }).averageTftPrice.key();
    const inGenesis = spec.genesis.raw.top[avgKey];
    expect(inGenesis === undefined || /^0x0+$/.test(inGenesis)).toBe(true);
    expect(await readTftPrice(backend.api)).toEqual({ num: 1000n, den: 1n, source: "fallback" });
    expect(await readTftPrice(backend.api, 50)).toEqual({ num: 50n, den: 1n, source: "fallback" });

    // 0.05 USD per TFT as U16F16: 3277 / 65536 USD
    await backend.api.rpc("dev_setStorage" as never, [[avgKey, "0xcd0c0000"]] as never);
    const tft = await readTftPrice(backend.api);
    expect(tft).toEqual({ num: 3277n * 1000n, den: 65536n, source: "averageTftPrice" });
    const policy = (await readPricingPolicy(backend.api, 1))!;
    const p = convertPricing(policy, tft);
    // cu: 320000 units USD (0.032 USD) per CU-hour at 3277/65536 USD per TFT = 0.63996 TFT = 6,399,609.4 planck
    expect(p.cuPerHour).toBe(6_399_609n);
    expect(p.suPerHour).toBe((150000n * 65536n) / 3277n);
    expect(p.nuPerGib).toBe((30000n * 65536n) / 3277n);
    expect(p.ipv4PerHour).toBe((49000n * 65536n) / 3277n);
    // at the fallback (1 USD per TFT) one unit USD is one planck
    expect(convertPricing(policy, { num: 1000n, den: 1n, source: "fallback" })).toEqual({ cuPerHour: 320000n, suPerHour: 150000n, nuPerGib: 30000n, ipv4PerHour: 49000n });
    // a policy in another unit: per TB -> per GiB divides by 1024 (rounded down)
    expect(convertPricing({ ...policy, su: { value: 150000n, unit: "Terrabytes" } }, { num: 1000n, den: 1n, source: "fallback" }).suPerHour).toBe(146n);
  });

  it("a farm's policy: a new farm names policy 1 (tfchain's default) and bills with it", async () => {
    const farmer = signerFromSeed("sr25519", new Uint8Array(crypto.randomBytes(32)));
    await fundAccounts(chain.url, [farmer.address], 100n * PLANCK_PER_TFT);
    expect(await backend.ensureTwin(farmer)).toMatchObject({ ok: true });
    const f = await backend.ensureFarm(farmer, "pricing-" + crypto.randomBytes(3).toString("hex"));
    if (!f.ok) throw new Error(f.message);
    const id = await farmPricingPolicyId(backend.api, f.id);
    expect(id === 0 || id === 1).toBe(true);
    const fp = await readFarmPricing(backend.api, f.id);
    expect(fp.policy.id).toBe(1);
    expect(fp.tftPrice.source).toBe("averageTftPrice");
    expect(fp.pricing.cuPerHour).toBe(6_399_609n);
    await expect(readFarmPricing(backend.api, 9999)).rejects.toMatchObject({ code: "not_found" });
  });
});
