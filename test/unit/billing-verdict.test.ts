/**
 * The verdict path (docs/billing.md "The verdict path"): an agent on tfchain learns its twins in
 * debt from the verifier's verdict on its proofs, and trusts only a verdict signed by the verifier
 * key it is configured with. Real ChainClient, UsageService and SQLite store over a MemoryBus; the
 * verifier's replies are made as the verifier makes them (a ChainReply sealed with its key).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MemoryBus } from "../../agent/bus/memory";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { Store } from "../../agent/store/store";
import { UsageService } from "../../agent/usage/service";
import { decode, encode } from "../../agent/wire/codec";

const HOUR = 3_600_000;
const S = 472_222 * HOUR;
const subjects = new Subjects();
let node: Signer;
let verifier: Signer;
let impostor: Signer;
const dirs: string[] = [];

beforeAll(async () => {
  await cryptoReady();
  node = signerFromSeed("ed25519", new Uint8Array(32).fill(1));
  verifier = signerFromSeed("ed25519", new Uint8Array(32).fill(2));
  impostor = signerFromSeed("ed25519", new Uint8Array(32).fill(3));
});

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A verifier on the bus answering verdict queries with twin 9 in debt, its replies sealed by `key`. */
function serveVerdicts(bus: MemoryBus, key: Signer, asked: number[]): void {
  bus.subscribe(subjects.chain("query"), {
    callback: (_err, msg) => {
      const q = decode("ChainQuery", msg.data, { maxBytes: 1024 });
      asked.push(Number(q.verdictSequence));
      const verdict = { nodeId: q.nodeId, sequence: q.verdictSequence, judged: true, ok: true, code: "ok", block: 12, twinsInDebt: [{ twinId: 9, balance: "-5", inDebt: true, inDebtSinceMs: S, graceEndMs: S + 2 * HOUR }] };
      msg.respond(seal(key, DOMAIN.ChainReply, encode("ChainReply", { ok: true, verdict })));
    },
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function agentWith(answeredBy: Signer): Promise<{ svc: UsageService; store: Store; bus: MemoryBus; asked: number[]; debts: Array<readonly number[]> }> {
  const bus = new MemoryBus();
  const asked: number[] = [];
  serveVerdicts(bus, answeredBy, asked);
  // the agent pins the verifier key it is configured with (agent.ts: chain.verifierKey)
  const judge = new ChainClient(bus, subjects, { chainKey: verifier.publicKey, timeoutMs: 1000 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "billing-verdict-"));
  dirs.push(dir);
  const store = Store.open(dir);
  const debts: Array<readonly number[]> = [];
  const clock = { t: S + 60_000 };
  const svc = new UsageService(
    { nodeId: 1, farmId: 1, periodMs: HOUR, aliveMs: 900_000_000, retryMinMs: 900_000_000, retryMaxMs: 900_000_000 },
    {
      bus, subjects, store, signer: node, logger: silentLogger(), metrics: null, now: () => clock.t,
      // tfchain answers "in a block" and says nothing of debts
      sink: { submitProof: async () => ({ ok: true, code: "ok" }), verdict: (n, s) => judge.verdict(n, s) },
      onTwinsInDebt: (ids) => debts.push(ids),
    },
  );
  await svc.start();
  clock.t = S + HOUR + 1;
  expect(svc.closeDuePeriods()).toBe(1);
  await until(() => svc.outbox.deliveredSequence() === 1, "proof 1 delivered");
  await until(() => asked.length > 0, "the verdict asked for");
  return { svc, store, bus, asked, debts };
}

test("a verdict signed by the configured verifier key tells the twins in debt and their grace ends", async () => {
  const { svc, store, asked, debts } = await agentWith(verifier);
  await until(() => (svc.status().twinsInGrace ?? []).length > 0, "twin 9 in grace");
  expect(asked).toEqual([1]);
  expect(debts.at(-1)).toEqual([9]);
  expect(svc.status().grace).toEqual([{ twinId: 9, graceEndMs: S + 2 * HOUR, expired: false }]);
  // kept in the store: a restart goes on refusing the twin
  expect(svc.debts.list()).toEqual([{ twinId: 9, graceEndMs: S + 2 * HOUR, expired: false }]);
  svc.close();
  store.close();
});

test("a verdict signed by another key is ignored", async () => {
  const { svc, store, bus, asked, debts } = await agentWith(impostor);
  await new Promise((r) => setTimeout(r, 100));
  expect(asked).toEqual([1]);
  expect(svc.status().twinsInGrace).toEqual([]);
  expect(svc.status().grace).toEqual([]);
  expect(debts.every((d) => d.length === 0)).toBe(true);
  expect(svc.debts.list()).toEqual([]);
  // why: the pinned client refuses the reply as bad_reply (the same reply passes unpinned)
  await expect(new ChainClient(bus, subjects, { chainKey: verifier.publicKey, timeoutMs: 1000 }).verdict(1, 1)).rejects.toMatchObject({ code: "bad_reply" });
  await expect(new ChainClient(bus, subjects, { timeoutMs: 1000 }).verdict(1, 1)).resolves.toMatchObject({ judged: true, debts: [{ twinId: 9, graceEndMs: S + 2 * HOUR }] });
  svc.close();
  store.close();
});
