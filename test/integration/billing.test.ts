/**
 * Billing end to end (issue 13): a real nats-server, the chain stand-in and two agents as real
 * processes, two twins registered on the chain with deployments on both nodes, real keys and
 * stores on disk. Each twin's balance falls by exactly its bills, `bills verify` holds for each,
 * and a node that inflates one twin's subtotal in a signed proof is caught: by the chain when the
 * totals stay as metered, by `bills verify` when it inflates the totals too.
 */
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { encodeTwinSubtotal, twinSubtotals, twinsTree } from "../../agent/billing/twins";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, loadKeyFile, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { leafHash, merkleRoot } from "../../agent/proofs/merkle";
import { addAmounts, encodeProofHeader, encodeRecord, zeroAmounts, ZERO_HASH, type ProofHeader, type UsageRecord } from "../../agent/proofs/proof";
import { encode } from "../../agent/wire/codec";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually } from "../utils/grid";
import { chainTwins, ssdConfig, stopAll } from "../utils/setup";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

const PERIOD_MS = 3000;
const FUND = 10n ** 12n;
let nats: NatsServerHandle;
let chainProc: AgentProcess;
const agents: AgentProcess[] = [];
let nc: NatsConnection;
let chain: ChainClient;
let dir: string;
const twins: number[] = [];
let deployedAt = 0;

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("billing-");
  const config = await ssdConfig(dir, { ipv4u: 2 });
  chainProc = await startChain(["--nats", nats.url, "--data", path.join(dir, "chain")]);
  for (const n of ["a", "b"]) agents.push(await startAgent(["--nats", nats.url, "--data", path.join(dir, n), "--farm-id", "1", "--config", config, "--period", String(PERIOD_MS / 1000)]));
  nc = await connect({ servers: nats.url });
  chain = new ChainClient(natsBus(nc), new Subjects());
  await eventually(async () => (await chain.node(1)) && (await chain.node(2)), 15_000, "nodes 1 and 2 registered");
  const client = new NodeClient(natsBus(nc), new Subjects());
  for (const [i, r] of (await chainTwins(dir, chain, 2)).entries()) {
    const n = i + 1;
    twins.push(r.id);
    const funded = await cli(["chain", "fund", "--twin", String(r.id), "--amount", FUND.toString(), "--nats", nats.url, "--json"]);
    expect(funded.code).toBe(0);
    expect(JSON.parse(funded.stdout)).toEqual({ twinId: r.id, balance: FUND.toString(), inDebt: false });
    // each twin deploys on both nodes: a VM with a public IP for the first, storage for the second
    for (const node of [1, 2]) {
      const workloads = n === 1 ? [{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB", rootfs: "2GiB" }, { name: "pub", type: "ipv4" }] : [{ name: "data", type: "zmount", size: "10GiB" }];
      const spec = parseDeployment({ id: n * 10 + node, twinId: r.id, version: 1, workloads });
      if (!spec.ok) throw new Error(spec.refusal.message);
      await eventually(async () => {
        const d = await client.deploy(node, buildDeployRequest(spec.value, [{ twinId: r.id, signer: r.signer }]));
        return d.accepted ? d : null;
      }, 15_000, `twin ${r.id}'s deployment on node ${node}`);
    }
  }
  deployedAt = Date.now();
}, 90_000);

afterAll(() => stopAll(nc, agents, chainProc, nats));

test("two twins on two nodes, three periods: each twin is billed per period and node, its balance falls by exactly its bills, and bills verify holds", async () => {
  // three full periods with every deployment in place, on both nodes, billed to both twins
  const snapshot = await eventually(async () => {
    const all = await Promise.all(twins.map((t) => chain.bills(t)));
    const ok = all.every((r) => r && [1, 2].every((node) => r.bills.filter((b) => b.nodeId === node && b.periodStartMs >= deployedAt).length >= 3));
    return ok ? all : null;
  }, 12 * PERIOD_MS + 20_000, "three billed periods per twin and node");
  for (const [i, r] of snapshot.entries()) {
    const spent = r!.bills.reduce((a, b) => a + b.amount, 0n);
    expect(r!.balance.balance).toBe(FUND - spent);
    expect(r!.bills.every((b) => b.twinId === twins[i] && b.code === "")).toBe(true);
    expect(r!.bills.filter((b) => b.periodStartMs >= deployedAt).every((b) => b.amount > 0n)).toBe(true);
    // no proof bills a twin twice
    expect(new Set(r!.bills.map((b) => `${b.nodeId}/${b.sequence}`)).size).toBe(r!.bills.length);
  }
  // the CLI's JSON shapes (issue 13's contract)
  const list = await cli(["bills", "list", "--twin", String(twins[0]), "--nats", nats.url, "--json"]);
  expect(list.code).toBe(0);
  const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
  expect(rows[0]).toEqual(expect.objectContaining({ nodeId: expect.any(Number), sequence: expect.any(Number), periodStart: expect.any(Number), periodEnd: expect.any(Number), amount: expect.stringMatching(/^[0-9]+$/), amounts: expect.objectContaining({ cuMicroHours: expect.any(String) }) }));
  const bal = await cli(["balance", "--twin", String(twins[0]), "--nats", nats.url, "--json"]);
  expect(bal.code).toBe(0);
  const b = JSON.parse(bal.stdout) as { twinId: number; balance: string };
  expect(b.twinId).toBe(twins[0]);
  // the balance is the fund minus every bill the chain holds at that moment (re-read: periods go on)
  const again = (await chain.bills(twins[0]))!;
  expect(BigInt(b.balance)).toBeGreaterThanOrEqual(again.balance.balance);
  // bills verify holds for each twin's bills on each node
  for (const twin of twins) {
    const bills = snapshot[twins.indexOf(twin)]!.bills.filter((x) => x.periodStartMs >= deployedAt);
    for (const node of [1, 2]) {
      const bill = bills.find((x) => x.nodeId === node)!;
      const v = await cli(["bills", "verify", "--twin", String(twin), "--node", String(node), "--sequence", String(bill.sequence), "--nats", nats.url, "--json"]);
      expect({ twin, node, code: v.code, out: v.stdout }).toEqual({ twin, node, code: 0, out: expect.stringContaining('"holds":true') });
    }
  }
}, 120_000);

test("a twin whose balance cannot cover its bill goes into debt: the node shows it in grace and refuses its new deployments with twin_in_debt until it is funded", async () => {
  const file = path.join(dir, "poor.json");
  expect((await cli(["keys", "new", "--out", file])).code).toBe(0);
  const signer = await loadKeyFile(file);
  const r = await chain.registerTwin(signer);
  if (!r.ok) throw new Error(r.message);
  const poor = r.id;
  const client = new NodeClient(natsBus(nc), new Subjects());
  const deploy = async (id: number) => {
    const spec = parseDeployment({ id, twinId: poor, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB", rootfs: "2GiB" }] });
    if (!spec.ok) throw new Error(spec.refusal.message);
    return client.deploy(1, buildDeployRequest(spec.value, [{ twinId: poor, signer }]));
  };
  // never funded: the first deployment is taken (the node knows of no debt yet), its first bill puts the twin in debt
  expect(await deploy(500)).toMatchObject({ accepted: true });
  const inDebt = await eventually(async () => (await chain.bills(poor))!.bills.find((b) => b.nodeId === 1 && b.code === "twin_in_debt"), 6 * PERIOD_MS + 10_000, "a bill in debt");
  expect(inDebt.balanceAfter).toBeLessThan(0n);
  const bal = JSON.parse((await cli(["balance", "--twin", String(poor), "--nats", nats.url, "--json"])).stdout) as { balance: string; inDebt: boolean };
  expect(BigInt(bal.balance)).toBeLessThan(0n);
  expect(bal.inDebt).toBe(true);
  await eventually(async () => ((await client.status(1)).usage?.twinsInGrace ?? []).includes(poor), 4 * PERIOD_MS + 5_000, "node 1's status to show the twin in grace");
  expect(await deploy(501)).toMatchObject({ accepted: false, rejection: { code: "twin_in_debt" } });
  // funded well above its debt: the next accepted proof clears it, and the node takes new deployments again
  expect((await cli(["chain", "fund", "--twin", String(poor), "--amount", FUND.toString(), "--nats", nats.url])).code).toBe(0);
  await eventually(async () => !((await client.status(1)).usage?.twinsInGrace ?? []).includes(poor), 4 * PERIOD_MS + 5_000, "the twin out of grace");
  expect(await deploy(501)).toMatchObject({ accepted: true });
}, 60_000);

describe("a node that inflates one twin's subtotal in a signed proof", () => {
  let node: Signer;
  let nodeId = 0;
  const records: UsageRecord[] = [];
  const H = 3_600_000;
  const start = Math.floor(Date.now() / H) * H - 2 * H;

  beforeAll(async () => {
    node = signerFromSeed("ed25519", randomBytes(32));
    const t = await chain.registerTwin(node);
    if (!t.ok) throw new Error(t.message);
    const n = await chain.registerNode(node, { farmId: 1, total: { cru: 64, mru: 256 * 2 ** 30, sru: 4 * 2 ** 40, hru: 0, ipv4u: 4, gpu: 0 } });
    if (!n.ok) throw new Error(n.message);
    nodeId = n.id;
    const a = (cru: bigint): UsageRecord["amounts"] => ({ ...zeroAmounts(), cruSeconds: cru * 3600n, cuMicroHours: cru * 500_000n, ipv4Seconds: 3600n });
    records.push({ deploymentId: 1, twinId: twins[0], firstVersion: 1, lastVersion: 1, servedMs: H, amounts: a(2n) });
    records.push({ deploymentId: 2, twinId: twins[1], firstVersion: 1, lastVersion: 1, servedMs: H, amounts: a(4n) });
    // the node's audit listing: every record, signed by the node key, naming the proof the chain holds
    nc.subscribe(`tfgrid.v1.node.${nodeId}.usage.>`, {
      callback: (_e, m) => {
        const seq = Number(m.subject.split(".").pop());
        const reply = { found: true, proof: proofs.get(seq), recordCount: records.length, startIndex: 0, records: records.map(encodeRecord), nextIndex: records.length };
        m.respond(seal(node, DOMAIN.UsageRecordsReply, encode("UsageRecordsReply", reply)));
      },
    });
  });

  const proofs = new Map<number, Uint8Array>();
  function signed(sequence: number, previousHash: Uint8Array, inflateTotals: boolean): { envelope: Uint8Array; twins: Uint8Array[] } {
    const subs = twinSubtotals(records);
    const honestTotals = records.reduce((t, r) => addAmounts(t, r.amounts), zeroAmounts());
    subs[0] = { ...subs[0], amounts: { ...subs[0].amounts, cuMicroHours: subs[0].amounts.cuMicroHours + 7_000_000n } };
    const encoded = subs.map(encodeTwinSubtotal);
    const h: ProofHeader = {
      nodeId,
      farmId: 1,
      sequence,
      periodStartMs: start + (sequence - 1) * H,
      periodEndMs: start + sequence * H,
      previousHash,
      recordCount: records.length,
      totals: inflateTotals ? subs.reduce((t, s) => addAmounts(t, s.amounts), zeroAmounts()) : honestTotals,
      recordsRoot: merkleRoot(records.map((r) => leafHash(encodeRecord(r)))),
      downtimeMs: 0,
      twinsRoot: twinsTree(encoded).root,
      twinCount: encoded.length,
    };
    return { envelope: seal(node, DOMAIN.UsageProof, encodeProofHeader(h)), twins: encoded };
  }

  test("the chain refuses it when the totals are as metered (subtotals must add up to the totals), and charges nobody", async () => {
    const before = (await chain.bills(twins[0]))!.balance.balance;
    const p = signed(1, ZERO_HASH, false);
    expect(await chain.settleProof(p.envelope, p.twins)).toMatchObject({ ok: false, code: "subtotal_mismatch" });
    // bare proof.submit: the subtotals are missing
    expect(await chain.submitProof(p.envelope)).toMatchObject({ ok: false, code: "twins_missing" });
    const after = (await chain.bills(twins[0]))!;
    expect(after.bills.some((b) => b.nodeId === nodeId)).toBe(false);
    expect(after.balance.balance).toBeLessThanOrEqual(before); // only the real nodes' bills go on
  });

  test("inflating the totals too gets it charged, and bills verify catches it (exit 1)", async () => {
    const p = signed(1, ZERO_HASH, true);
    const r = await chain.settleProof(p.envelope, p.twins);
    expect(r).toMatchObject({ ok: true, code: "ok" });
    proofs.set(1, p.envelope);
    const bill = (await chain.bills(twins[0], { nodeId, sequence: 1 }))!.bills[0];
    expect(bill.amounts.cuMicroHours).toBe(1_000_000n + 7_000_000n);
    const v = await cli(["bills", "verify", "--twin", String(twins[0]), "--node", String(nodeId), "--sequence", "1", "--nats", nats.url, "--json"]);
    expect(v.code).toBe(1);
    expect(JSON.parse(v.stdout)).toMatchObject({ holds: false, code: "listing_failed" });
    expect(v.stdout).toContain("totals_mismatch");
    // the other twin's subtotal was honest, but the proof's totals do not hold: its bill cannot be confirmed either
    const w = await cli(["bills", "verify", "--twin", String(twins[1]), "--node", String(nodeId), "--sequence", "1", "--nats", nats.url, "--json"]);
    expect(JSON.parse(w.stdout)).toMatchObject({ code: "listing_failed" });
  });
});
