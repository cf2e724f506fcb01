/**
 * The chain stand-in's billing on its own: a real nats-server, the ChainServer with a real
 * ChainStore on disk, the ChainClient over NATS. A proof that bills many twins fits in one
 * proof.settle; each twin is debited and the farm credited with the sum; fund validates its input.
 */
import * as crypto from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { price, PRICING_DEFAULTS } from "../../agent/billing/pricing";
import { twinSubtotals } from "../../agent/billing/twins";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, TiB } from "../../agent/capacity/units";
import { ChainClient } from "../../agent/chain/client";
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { addAmounts, zeroAmounts, ZERO_HASH, type UsageRecord } from "../../agent/proofs/proof";
import { decode, encode } from "../../agent/wire/codec";
import { buildProof } from "../../agent/proofs/build";
import { InProcessChain } from "../utils/chain-server";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

let nats: NatsServerHandle;
let nc: NatsConnection;
let standin: InProcessChain;
let chain: ChainClient;
const H = 3_600_000;

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  standin = await InProcessChain.start(nats.url, { options: { limits: { perKeyBurst: 1000 } }, dirPrefix: "billing-chain-" });
  nc = await connect({ servers: nats.url });
  chain = new ChainClient(natsBus(nc), new Subjects());
});

afterAll(async () => {
  await nc?.close();
  await standin?.stop();
  await nats?.stop();
});

test("a proof billing 1000 twins fits in one proof.settle: each twin is debited its price, the farm credited the sum, the unfunded twins reported in debt", async () => {
  const node = signerFromSeed("ed25519", crypto.randomBytes(32));
  expect(await chain.registerTwin(node)).toMatchObject({ ok: true });
  const reg = await chain.registerNode(node, { farmId: 4, total: { cru: 1024, mru: 4 * TiB, sru: 100 * TiB, hru: 0, ipv4u: 512, gpu: 0 } });
  if (!reg.ok) throw new Error(reg.message);
  const records: UsageRecord[] = Array.from({ length: 1000 }, (_, i) => ({
    deploymentId: i + 1,
    twinId: 1000 + i,
    firstVersion: 1,
    lastVersion: 1,
    servedMs: H,
    amounts: { ...zeroAmounts(), cruSeconds: 3600n, mruByteSeconds: BigInt(2 * GiB) * 3600n, ipv4Seconds: BigInt(i % 2) * 3600n, cuMicroHours: 500_000n + BigInt(i), suMicroHours: 0n },
  }));
  const subs = twinSubtotals(records);
  const start = Math.floor(Date.now() / H) * H - H;
  const totals = records.reduce((t, r) => addAmounts(t, r.amounts), zeroAmounts());
  const { envelope, twins } = buildProof({ sequence: 0, periodEndMs: start, hash: ZERO_HASH }, { nodeId: reg.id, farmId: 4, periodEndMs: start + H, records, totals, downtimeMs: 0 }, node);
  expect(encode("ProofSubmission", { proof: envelope, twins }).length).toBeGreaterThan(16 * 1024); // above the other calls' limit
  const r = await chain.settleProof(envelope, twins);
  expect(r).toMatchObject({ ok: true, code: "ok" });
  expect(r.ok && r.debts?.length).toBe(1000);
  let sum = 0n;
  for (const t of subs) {
    const want = price(t.amounts, PRICING_DEFAULTS);
    sum += want;
    expect(standin.store.balance(t.twinId)).toBe(-want);
  }
  expect(standin.store.farmBalance(4)).toBe(sum);
  const fp = standin.store.footprint();
  expect([fp.twin_bills.rows, fp.node_bills.rows]).toEqual([1000, 1]);
  // every one of them entered grace with this proof: one debt row each, the grace end told with it
  expect(fp.debts.rows).toBe(1000);
  const since = standin.store.debtSince(subs[0].twinId)!;
  expect(r.ok && r.debts?.[0]).toEqual({ twinId: subs[0].twinId, graceEndMs: since + 14 * 24 * 3600 * 1000 });
  // a replay is a duplicate and charges nothing again
  expect(await chain.settleProof(envelope, twins)).toMatchObject({ ok: true, code: "duplicate" });
  expect(standin.store.farmBalance(4)).toBe(sum);
});

test("fund: a registered twin or one the chain billed, a positive integer amount; an unknown twin and its bills are not_found", async () => {
  const twin = signerFromSeed("ed25519", crypto.randomBytes(32));
  const reg = await chain.registerTwin(twin);
  if (!reg.ok) throw new Error(reg.message);
  for (const bad of ["0", "-5", "1.5", "1e9", "", "1" + "0".repeat(25)]) {
    const raw = await nc.request(new Subjects().chain("fund"), encode("FundTwin", { twinId: reg.id, amount: bad }), { timeout: 5000 });
    const o = open(raw.data, DOMAIN.ChainReply, { maxBytes: 64 * 1024 });
    if (!o.ok) throw new Error(o.refusal.message);
    const reply = decode("ChainReply", o.value.payload, { maxBytes: 64 * 1024, maxRepeated: 10 });
    expect({ bad, ok: reply.ok, code: reply.rejection?.code }).toEqual({ bad, ok: false, code: "malformed" });
  }
  for (const bad of [0n, -5n]) await expect(chain.fund(reg.id, bad)).resolves.toMatchObject({ ok: false, code: "malformed" });
  await expect(chain.fund(999_999, 5n)).resolves.toMatchObject({ ok: false, code: "not_found" });
  // a twin the chain billed without its being registered (a dev grid's registry-file twin, billed in
  // the test above) can pay its debt
  const debt = standin.store.balance(1000);
  expect(debt).toBeLessThan(0n);
  expect(standin.store.debtSince(1000)).toBeGreaterThan(0);
  await expect(chain.fund(1000, -debt)).resolves.toMatchObject({ ok: true, balance: { twinId: 1000, balance: 0n } });
  // funded back to zero: out of grace
  expect(standin.store.debtSince(1000)).toBeUndefined();
  await expect(chain.fund(reg.id, 5n)).resolves.toMatchObject({ ok: true, balance: { twinId: reg.id, balance: 5n, inDebt: false } });
  await expect(chain.fund(reg.id, 7n)).resolves.toMatchObject({ ok: true, balance: { balance: 12n } });
  expect(await chain.bills(999_999)).toBeUndefined();
  expect(await chain.bills(reg.id)).toMatchObject({ balance: { balance: 12n }, bills: [], pricing: PRICING_DEFAULTS });
});
