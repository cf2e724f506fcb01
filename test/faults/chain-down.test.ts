/**
 * Fault suite, "chain-down": the chain stand-in is away for many usage periods while the agent is
 * SIGKILLed and restarted again and again (test/integration/usage-proofs.test.ts covers one
 * graceful restart; this is the storm). When the chain is back, every proof the agent built is
 * on the chain exactly once, in sequence order, periods contiguous and hash-chained, nothing was
 * refused, and status shows nothing pending. Quick: 6 periods of 2 s and 4 kills; full: 40 and 20.
 */
import { startChain } from "../utils/agent";
import { eventually } from "../utils/grid";
import { decode } from "../../agent/wire/codec";
import { proofHash } from "../../agent/proofs/proof";
import { faultMode } from "./mode";
import { deployBytes, startFaultNode, type FaultNode } from "./node";
import { recordFigures } from "./report";
import * as path from "node:path";

const PERIOD_S = 2;
const DOWN_PERIODS = faultMode() === "full" ? 40 : 6;
const KILLS = faultMode() === "full" ? 20 : 4;
let n: FaultNode;
jest.setTimeout(DOWN_PERIODS * PERIOD_S * 1000 + KILLS * 5000 + 90_000);

beforeAll(async () => {
  n = await startFaultNode({ periodSeconds: PERIOD_S, prefix: "chain-down-" });
  expect(await n.client.deploy(1, deployBytes(n, 1, 1, 1))).toMatchObject({ accepted: true });
  await eventually(async () => (await n.chainClient.proofs(1, 1, 100)).length >= 1, PERIOD_S * 3000 + 10_000, "a first proof");
});
afterAll(async () => {
  await n?.close();
});

test(`chain away for ${DOWN_PERIODS} periods with ${KILLS} agent SIGKILLs: every proof once, in order`, async () => {
  const built = new Set<number>();
  const collect = (): void => {
    for (const l of n.agent.logs) if (l.event === "usage_proof_built") built.add(l.sequence as number);
  };
  await n.chain.stop();
  const downAt = Date.now();
  const downFor = DOWN_PERIODS * PERIOD_S * 1000;
  for (let k = 0; k < KILLS; k++) {
    await new Promise((r) => setTimeout(r, downFor / (KILLS + 1)));
    collect();
    await n.agent.kill();
    await n.restart();
  }
  await new Promise((r) => setTimeout(r, Math.max(0, downAt + downFor - Date.now())));
  collect();
  n.chain = await startChain(["--nats", n.nats.url, "--data", path.join(n.dir, "chain")]);
  const upAt = Date.now();
  const proofs = await eventually(async () => {
    collect();
    const ps = await n.chainClient.proofs(1, 1, 10_000);
    return ps.length > 0 && ps[ps.length - 1].header.sequence >= Math.max(...built) ? ps : null;
  }, 60_000, "the chain catching up with every proof built");
  const catchUpMs = Date.now() - upAt;
  const problems: string[] = [];
  proofs.forEach((p, i) => {
    if (p.header.sequence !== i + 1) problems.push(`proof ${i} has sequence ${p.header.sequence}`);
    if (i === 0) return;
    const prev = proofs[i - 1];
    if (p.header.periodStartMs !== prev.header.periodEndMs) problems.push(`proof ${p.header.sequence} starts at ${p.header.periodStartMs}, the one before ended at ${prev.header.periodEndMs}`);
    const prevHash = proofHash(decode("Signed", prev.proof).payload);
    if (!Buffer.from(p.header.previousHash).equals(Buffer.from(prevHash))) problems.push(`proof ${p.header.sequence} does not chain to ${prev.header.sequence}`);
  });
  const done = await eventually(async () => {
    const u = (await n.client.status(1)).usage;
    return u && u.pending === 0 ? u : null;
  }, 15_000, "status to show every proof delivered");
  const refused = [...n.agent.logs, ...n.chain.logs].filter((l) => l.event === "usage_proof_refused" || l.event === "proof_refused").length;
  const downtimeMs = proofs.reduce((s, p) => s + p.header.downtimeMs, 0);
  recordFigures("chain-down", {
    periodS: PERIOD_S,
    downPeriods: DOWN_PERIODS,
    agentKills: KILLS,
    proofsBuiltSeen: built.size,
    proofsOnChain: proofs.length,
    lastSequence: done.lastSequence,
    chainProblems: problems.length,
    refused,
    catchUpMs,
    downtimeMsReported: downtimeMs,
  });
  expect(problems).toEqual([]);
  expect(refused).toBe(0);
  expect(proofs.length).toBe(done.lastSequence);
  expect(done.deliveredSequence).toBe(done.lastSequence);
  // the outage spanned its periods: at least that many proofs were built while the chain was away
  expect(proofs.filter((p) => p.header.periodEndMs > downAt && p.header.periodEndMs <= upAt).length).toBeGreaterThanOrEqual(DOWN_PERIODS - 1);
});
