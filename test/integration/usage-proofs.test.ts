/**
 * Usage proofs end to end: a real nats-server, the chain stand-in and an agent as real processes
 * (`capacity-agent chain`, `capacity-agent run --period 5`), real keys, real stores on disk.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { encodeProofHeader, proofHash, type ProofHeader } from "../../agent/proofs/proof";
import { decode } from "../../agent/wire/codec";
import { cli, startAgent, startChain } from "../utils/agent";
import { eventually } from "../utils/grid";
import { startMeteredNode, type MeteredNode } from "../utils/metered-node";
import { natsBus } from "../../agent/bus/nats";

const PERIOD_MS = 5000;
let node: MeteredNode;
let nodeKey: Signer;

type Proof = Awaited<ReturnType<ChainClient["proofs"]>>[number];

async function allProofs(): Promise<Proof[]> {
  return node.chain.proofs(1, 1, 1000);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** Every proof follows the one before it: sequence + 1, period contiguous, previous hash = its hash. */
function expectChained(proofs: Proof[]): void {
  proofs.forEach((p, i) => {
    expect(p.header.sequence).toBe(i + 1);
    expect(p.header.periodEndMs % PERIOD_MS).toBe(0);
    if (i === 0) {
      expect(hex(p.header.previousHash)).toBe("00".repeat(32));
      return;
    }
    const prev = proofs[i - 1];
    expect(p.header.periodStartMs).toBe(prev.header.periodEndMs);
    expect(hex(p.header.previousHash)).toBe(hex(proofHash(headerBytes(prev.proof))));
  });
}

/** The chain returns each proof as the Signed envelope it accepted; the header is its payload. */
function headerBytes(envelope: Uint8Array): Uint8Array {
  return decode("Signed", envelope).payload;
}

beforeAll(async () => {
  await cryptoReady();
  node = await startMeteredNode({
    dirPrefix: "usage-",
    periodS: PERIOD_MS / 1000,
    otherKeys: ["forger", "chainTwin"],
    hardware: { ipv4u: 1 },
    deployments: [
      { id: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB", rootfs: "2GiB" }, { name: "pub", type: "ipv4" }] },
      { id: 2, workloads: [{ name: "data", type: "zmount", size: "10GiB" }] },
    ],
  });
  nodeKey = await loadKeyFile(node.keys.node);
}, 60_000);

/** Wait until the chain holds `n` proofs of periods that began with both deployments in place. */
async function fullProofs(n: number): Promise<{ all: Proof[]; full: Proof[] }> {
  return eventually(async () => {
    const all = await allProofs();
    const full = all.filter((p) => p.header.periodStartMs >= node.deployedAt);
    return full.length >= n ? { all, full } : null;
  }, (n + 2) * PERIOD_MS + 10_000, `${n} proofs with both deployments`);
}

afterAll(() => node?.stop());

test("the node registers itself and its proofs form a contiguous, hash-chained series the chain accepts", async () => {
  const info = await eventually(() => node.chain.node(1), 10_000, "node 1 registered on the chain");
  expect(hex(info.publicKey)).toBe(hex(nodeKey.publicKey));
  expect(info.total.cru).toBeGreaterThan(0);
  const { all, full: [full] } = await fullProofs(2);
  expectChained(all);
  expect(full.header.recordCount).toBe(2);
  expect(full.header.downtimeMs).toBe(0);
  // deployment 1 reserves 1 CPU and one IPv4 for the whole period: 5 CPU-seconds, 5 IPv4-seconds
  expect(full.header.totals.cruSeconds).toBe(5n);
  expect(full.header.totals.ipv4Seconds).toBe(5n);
  expect(full.header.totals.mruByteSeconds).toBe(5n * 1024n ** 3n);
  expect(full.header.totals.sruByteSeconds).toBe(5n * (2n + 10n) * 1024n ** 3n);
});

test("proofs verify confirms each deployment's record against the chain's root; an absent one does not hold", async () => {
  await fullProofs(2);
  const list = await cli(["proofs", "list", "--node", "1", "--nats", node.nats.url, "--json"]);
  expect(list.code).toBe(0);
  const rows = JSON.parse(list.stdout) as Array<{ sequence: number; periodStart: number; periodEnd: number; root: string; records: number }>;
  expect(rows.length).toBeGreaterThanOrEqual(2);
  expect(rows.map((r) => r.sequence)).toEqual(rows.map((_, i) => i + 1));
  const withBoth = rows.find((r) => r.periodStart >= node.deployedAt)!;
  expect(withBoth.records).toBe(2);
  expect(withBoth.root).toMatch(/^0x[0-9a-f]{64}$/);
  for (const d of [1, 2]) {
    const v = await cli(["proofs", "verify", "--node", "1", "--deployment", String(d), "--nats", node.nats.url, "--json"]);
    expect(v.stderr).toBe("");
    const out = JSON.parse(v.stdout);
    expect(out.checked.filter((c: { code: string }) => c.code !== "holds")).toEqual([]);
    expect(v.code).toBe(0);
    expect(out.holds).toBe(true);
    expect(out.checked.length).toBeGreaterThanOrEqual(2);
    expect(out.checked.every((c: { code: string }) => c.code === "holds")).toBe(true);
    const one = await cli(["proofs", "verify", "--node", "1", "--deployment", String(d), "--sequence", String(withBoth.sequence), "--nats", node.nats.url]);
    expect(one.code).toBe(0);
  }
  const absent = await cli(["proofs", "verify", "--node", "1", "--deployment", "999", "--sequence", String(withBoth.sequence), "--nats", node.nats.url, "--json"]);
  expect(absent.code).toBe(1);
  expect(JSON.parse(absent.stdout)).toMatchObject({ holds: false, checked: [{ code: "not_found" }] });
  const show = await cli(["proofs", "show", "--node", "1", "--sequence", String(withBoth.sequence), "--nats", node.nats.url, "--json"]);
  expect(JSON.parse(show.stdout)).toMatchObject({ sequence: withBoth.sequence, root: withBoth.root, records: 2 });
});

test("the agent learned its node and twin ids from the chain and saved them", async () => {
  // --node-id 1 was given: the chain assigned node 1 (the first node), so the agent started
  expect(await node.agent.waitForEvent("node_registered")).toMatchObject({ nodeId: 1, twinId: 1, kind: "registered" });
  expect(JSON.parse(fs.readFileSync(path.join(node.dir, "data", "chain-ids.json"), "utf8"))).toEqual({ nodeId: 1, twinId: 1, farmId: 1 });
  expect(await node.chain.twin(1)).toMatchObject({ twinId: 1, publicKey: nodeKey.publicKey });
});

test("a twin registered only on the chain deploys: the chain assigns its id, the agent resolves its key through the chain", async () => {
  // a chosen id is refused: the chain assigns ids
  const chosen = await cli(["registry", "add", "--chain", "--twin", "9", "--key", node.keys.chainTwin, "--nats", node.nats.url]);
  expect(chosen.code).toBe(1);
  expect(chosen.stderr).toContain("[unauthorized]");
  expect(chosen.stderr).toContain("--twin 0");
  const reg = await cli(["registry", "add", "--chain", "--key", node.keys.chainTwin, "--nats", node.nats.url]);
  expect(reg.stderr).toBe("");
  const out = JSON.parse(reg.stdout) as { twin: number; registered: boolean };
  expect(out).toMatchObject({ twin: expect.any(Number), publicKey: expect.stringMatching(/^0x[0-9a-f]{64}$/), registered: true });
  const T = out.twin;
  expect(T).toBeGreaterThan(1);
  // again (--twin 0 or its own id): the same twin, nothing new
  expect(JSON.parse((await cli(["registry", "add", "--chain", "--twin", "0", "--key", node.keys.chainTwin, "--nats", node.nats.url])).stdout)).toMatchObject({ twin: T, registered: false });
  expect((await cli(["registry", "add", "--chain", "--twin", String(T), "--key", node.keys.chainTwin, "--nats", node.nats.url])).code).toBe(0);
  // the same twin id with another key is refused by the chain
  const steal = await cli(["registry", "add", "--chain", "--twin", String(T), "--key", node.keys.forger, "--nats", node.nats.url]);
  expect(steal.code).toBe(1);
  expect(steal.stderr).toContain("[unauthorized]");
  const twinT = await loadKeyFile(node.keys.chainTwin);
  const forger = await loadKeyFile(node.keys.forger);
  const client = new NodeClient(natsBus(node.nc), new Subjects());
  const r = parseDeployment({ id: 90, twinId: T, version: 1, workloads: [{ name: "n", type: "network" }] });
  if (!r.ok) throw new Error(r.refusal.message);
  expect(await client.deploy(1, buildDeployRequest(r.value, [{ twinId: T, signer: forger }]))).toMatchObject({ accepted: false, code: "bad_signature" });
  expect(await client.deploy(1, buildDeployRequest(r.value, [{ twinId: T, signer: twinT }]))).toMatchObject({ accepted: true, code: "ok" });
  // farms: --farm 0 creates one owned by the key's twin; the chain prints its id
  const farm = await cli(["registry", "add", "--chain", "--farm", "0", "--name", "usage farm", "--key", node.keys.chainTwin, "--nats", node.nats.url]);
  expect(farm.stderr).toBe("");
  expect(JSON.parse(farm.stdout)).toEqual({ farm: 1, twin: T, name: "usage farm", open: false, allowedTwins: [] });
  const open = await cli(["registry", "add", "--chain", "--farm", "1", "--open", "--allow", "5,6", "--key", node.keys.chainTwin, "--nats", node.nats.url]);
  expect(JSON.parse(open.stdout)).toEqual({ farm: 1, twin: T, name: "usage farm", open: true, allowedTwins: [5, 6] });
  const notMine = await cli(["registry", "add", "--chain", "--farm", "1", "--name", "mine", "--key", node.keys.forger, "--nats", node.nats.url]);
  expect(notMine.code).toBe(1);
  expect(notMine.stderr).toContain("[unauthorized]");
});

test("forged, replayed, out-of-order and over-capacity proofs are refused with their codes", async () => {
  const proofs = await allProofs();
  const last = proofs[proofs.length - 1];
  const forger = await loadKeyFile(node.keys.forger);
  const next: ProofHeader = {
    ...last.header,
    sequence: last.header.sequence + 1,
    periodStartMs: last.header.periodEndMs,
    periodEndMs: last.header.periodEndMs + PERIOD_MS,
    previousHash: proofHash(headerBytes(last.proof)),
  };
  const forged = await node.chain.submitProof(seal(forger, DOMAIN.UsageProof, encodeProofHeader(next)));
  expect(forged).toMatchObject({ ok: false, code: "bad_signature" });
  const replayed = await node.chain.submitProof(last.proof);
  expect(replayed).toMatchObject({ ok: true, code: "duplicate" });
  // well ahead of the series: the agent goes on delivering a proof every period meanwhile
  const outOfOrder = await node.chain.submitProof(seal(nodeKey, DOMAIN.UsageProof, encodeProofHeader({ ...next, sequence: next.sequence + 5 })));
  expect(outOfOrder).toMatchObject({ ok: false, code: "gap" });
  const huge = { ...next.totals, mruByteSeconds: 1n << 62n };
  const over = await node.chain.submitProof(seal(nodeKey, DOMAIN.UsageProof, encodeProofHeader({ ...next, totals: huge })));
  expect(over).toMatchObject({ ok: false, code: "exceeds_capacity" });
  // none of them changed the chain's series
  const after = await allProofs();
  expect(after.slice(0, proofs.length).map((p) => hex(p.proof))).toEqual(proofs.map((p) => hex(p.proof)));
});

test("with the chain away for several periods and the agent restarted meanwhile, every proof arrives once, in order", async () => {
  await node.chainProc.stop();
  const builtBefore = node.agent.logs.filter((l) => l.event === "usage_proof_built").length;
  await eventually(() => node.agent.logs.filter((l) => l.event === "usage_proof_built").length >= builtBefore + 1, 2 * PERIOD_MS + 5000, "a proof built while the chain is away");
  // the farmer sees it in status: proofs waiting, and why
  const waiting = await eventually(async () => {
    const u = (await new NodeClient(natsBus(node.nc), new Subjects()).status(1)).usage;
    return u && u.pending >= 1 && u.lastCode === "chain_unavailable" ? u : null;
  }, 10_000, "status to show a pending proof");
  expect(waiting).toMatchObject({ periodMs: PERIOD_MS, chain: true });
  expect(waiting.deliveredSequence).toBe(waiting.lastSequence - waiting.pending);
  await node.agent.stop();
  // the agent is down for more than two periods, so at least one whole period is downtime, not served time
  await new Promise((r) => setTimeout(r, 2 * PERIOD_MS + 500));
  node.agent = await startAgent(node.agentArgs);
  const restartedAt = Date.now();
  await eventually(() => node.agent.logs.some((l) => l.event === "usage_proof_built"), 2 * PERIOD_MS + 5000, "a proof built after the restart");
  node.chainProc = await startChain(node.chainArgs);
  const lastBuilt = () => Math.max(...node.agent.logs.filter((l) => l.event === "usage_proof_built").map((l) => l.sequence as number));
  const proofs = await eventually(async () => {
    const ps = await allProofs();
    return ps.length > 0 && ps[ps.length - 1].header.sequence >= lastBuilt() ? ps : null;
  }, 30_000, "the chain catching up with every proof");
  expectChained(proofs);
  const done = await eventually(async () => {
    const u = (await new NodeClient(natsBus(node.nc), new Subjects()).status(1)).usage;
    return u && u.pending === 0 ? u : null;
  }, 10_000, "status to show every proof delivered");
  expect(done.deliveredSequence).toBe(done.lastSequence);
  expect(done.lastCode).toBe("");
  // a period the agent was down for entirely states its whole length as downtime and bills nothing
  const down = proofs.find((p) => p.header.downtimeMs === PERIOD_MS);
  expect(down).toBeDefined();
  expect(down!.header.recordCount).toBe(0);
  expect(down!.header.totals.cruSeconds).toBe(0n);
  expect(down!.header.periodEndMs).toBeLessThanOrEqual(restartedAt);
  // nothing was refused: each proof was accepted exactly once (a lost ack shows as "duplicate", never twice stored)
  expect(node.agent.logs.filter((l) => l.event === "usage_proof_refused")).toEqual([]);
  expect(node.chainProc.logs.filter((l) => l.event === "proof_refused")).toEqual([]);
}, 120_000);
