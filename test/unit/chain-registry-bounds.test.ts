/**
 * ChainRegistry under forged input: a flood of unknown node ids (forged gossip) can neither grow
 * its cache past maxEntries nor send more than lookupsPerSecond requests to the chain, and does
 * not crowd out twin lookups. The chain behind it is a table (ChainLookups is the interface the
 * registry asks through); the clock is injected.
 */
import type { ChainLookups } from "../../agent/chain/registry";
import { ChainRegistry } from "../../agent/chain/registry";
import { silentLogger } from "../../agent/log/logger";
import { createMetrics } from "../../agent/metrics/metrics";

const KEY = new Uint8Array(32).fill(7);

function chain(): ChainLookups & { calls: { twin: number; node: number } } {
  const calls = { twin: 0, node: 0 };
  return {
    calls,
    twin: async (id) => {
      calls.twin++;
      return id === 7 ? { twinId: 7, publicKey: KEY, scheme: "ed25519", registeredMs: 0 } : undefined;
    },
    node: async () => {
      calls.node++;
      return undefined;
    },
  };
}

test("a flood of unknown node ids keeps the cache at maxEntries and the chain at lookupsPerSecond", async () => {
  let now = 1_000_000;
  const c = chain();
  const metrics = createMetrics();
  const reg = new ChainRegistry({ maxEntries: 500, lookupsPerSecond: 50 }, { client: c, logger: silentLogger(), now: () => now, metrics });
  // 20 simulated seconds, 5,000 forged ids each
  for (let s = 0; s < 20; s++) {
    const answers = await Promise.all(Array.from({ length: 5000 }, (_, i) => reg.node(1_000_000 + s * 5000 + i)));
    expect(answers.every((a) => a === undefined)).toBe(true);
    expect(reg.size).toBeLessThanOrEqual(500);
    expect(reg.pending).toBe(0);
    now += 1000;
  }
  // burst of 100, then 50 a second
  expect(c.calls.node).toBeLessThanOrEqual(100 + 20 * 50);
  expect(c.calls.node).toBeGreaterThanOrEqual(20 * 50);
  expect(metrics.shed.get({ subject: "chain_lookup", reason: "global_rate" })).toBe(20 * 5000 - c.calls.node);
  // twins have their own budget: a registered twin still resolves during the node flood
  await Promise.all(Array.from({ length: 5000 }, (_, i) => reg.node(9_000_000 + i)));
  expect(await reg.twin(7)).toMatchObject({ id: 7, scheme: "ed25519" });
});

test("over the rate a cached (even expired) entry is served, an uncached id resolves unknown without asking", async () => {
  let now = 0;
  const c = chain();
  const reg = new ChainRegistry({ lookupsPerSecond: 1, ttlMs: 10 }, { client: c, logger: silentLogger(), now: () => now });
  expect(await reg.twin(7)).toMatchObject({ id: 7 });
  now += 100; // expired
  expect(await reg.twin(8)).toBeUndefined(); // second of the burst of 2
  expect(c.calls.twin).toBe(2);
  expect(await reg.twin(7)).toMatchObject({ id: 7 }); // over the rate: the stale entry
  expect(await reg.twin(9)).toBeUndefined(); // over the rate: unknown, not asked
  expect(c.calls.twin).toBe(2);
  now += 1000;
  expect(await reg.twin(7)).toMatchObject({ id: 7 });
  expect(c.calls.twin).toBe(3);
});

test("ids in use stay cached while a flood of unknown ids passes through the cache (least recently used go first)", async () => {
  let now = 0;
  const c = chain();
  const reg = new ChainRegistry({ maxEntries: 100, lookupsPerSecond: 1_000_000 }, { client: c, logger: silentLogger(), now: () => now });
  expect(await reg.twin(7)).toMatchObject({ id: 7 });
  for (let i = 0; i < 1000; i++) {
    await reg.node(5_000_000 + i);
    if (i % 50 === 0) expect(await reg.twin(7)).toMatchObject({ id: 7 }); // in use
    now += 1;
  }
  expect(reg.size).toBe(100);
  expect(c.calls.twin).toBe(1); // never evicted, never asked again
});
