/**
 * The agent on the real tfchain runtime (spec 49 under chopsticks, scripts/tfchain-dev on a free
 * port): `run --chain-url` registers the node key's twin and node with real extrinsics (the farm
 * created first with `farm create`), serves under tfchain's node id, accepts a deployment signed
 * by a twin that exists only on tfchain, and sends its usage proofs as system.remark extrinsics;
 * `capacity-agent verifier` on the same NATS judges them, and `proofs list` / `proofs verify`
 * answer for them. Restarted mid-period, the agent delivers each proof exactly once.
 * One chain process for the file (the runtime is CPU-heavy); skipped with a message when the
 * chain spec (test data outside the repository) is absent.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseDeployment } from "../../agent/admission/spec";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { silentLogger } from "../../agent/log/logger";
import { TfchainBackend } from "../../agent/tfchain/backend";
import { fundAccounts, PLANCK_PER_TFT } from "../../agent/tfchain/dev";
import { cryptoReady, loadKeyFile } from "../../agent/identity/keys";
import { cli, startDaemon, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { keyFiles } from "../utils/setup";
import { createFarm, describeWith, fundedKeyFiles, registerTwin, startTfchain, tfchainSpec, type TfchainHandle } from "../utils/tfchain";
import { natsBus } from "../../agent/bus/nats";

jest.setTimeout(300_000);

const PERIOD_S = 5;

describeWith(tfchainSpec(), "the tfchain agent integration test")("an agent on the real tfchain runtime (run --chain-url)", () => {
  let chain: TfchainHandle;
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let verifier: AgentProcess;
  let agent: AgentProcess | undefined;
  const dir = tmpDir("tfchain-agent-");
  const keys = keyFiles(dir, ["farmer", "node", "owner"]);
  const data = path.join(dir, "data");
  const config = path.join(dir, "config.json");
  let farmId = 0;
  let ownerTwin = 0;
  let nodeId = 0;
  let nodeTwin = 0;

  /** the verifier's key (made by it at its first start): the agent trusts its verdicts only */
  const verifierKey = (): string => (JSON.parse(fs.readFileSync(path.join(dir, "verifier", "verifier-key.json"), "utf8")) as { publicKey: string }).publicKey;
  const runArgs = (): string[] => ["--chain-url", chain.url, "--nats", nats.url, "--data", data, "--farm-id", String(farmId), "--key", keys.node, "--config", config, "--period", String(PERIOD_S), "--verifier-key", verifierKey()];

  /** `run --chain-url`: ready once connected to tfchain; agent_started follows the registration extrinsics */
  async function startOnChain(): Promise<AgentProcess> {
    const a = await startDaemon(["run", ...runArgs()], "tfchain_connected");
    await a.waitForEvent("agent_started", 180_000);
    return a;
  }

  /** what the verifier judged for this node so far: [sequence, code] */
  const judged = (): Array<[unknown, unknown]> => verifier.logs.filter((l) => l.event === "proof_judged" && l.nodeId === nodeId).map((l) => [l.sequence, l.code]);

  /** waitFor, and on a timeout the agent's and verifier's proof-related log lines (what went wrong) */
  async function waitLogged(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
    try {
      await waitFor(cond, ms, what);
    } catch (err) {
      const interesting = (l: Record<string, unknown>): boolean => /proof|usage|chain|tfchain|verif/.test(String(l.event)) || Number(l.level) >= 40;
      process.stderr.write(`agent: ${JSON.stringify(agent?.logs.filter(interesting).slice(0, 30))}\nverifier: ${JSON.stringify(verifier.logs.filter(interesting).slice(0, 30))}\n`);
      throw err;
    }
  }

  async function proofsList(): Promise<Array<{ sequence: number; hash: string; previousHash: string }>> {
    const list = await cli(["proofs", "list", "--node", String(nodeId), "--nats", nats.url, "--json"]);
    expect(list.code).toBe(0);
    return JSON.parse(list.stdout);
  }

  beforeAll(async () => {
    await cryptoReady();
    chain = await startTfchain();
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    // the owner twin signs with ed25519: tfchain records its account only, the node must try both schemes
    await fundedKeyFiles(chain.url, [[keys.farmer, "sr25519"], [keys.node, "ed25519"], [keys.owner, "ed25519"]]);
    await registerTwin(chain.url, keys.farmer);
    farmId = await createFarm(chain.url, keys.farmer, "agent");
    ownerTwin = await registerTwin(chain.url, keys.owner);
    // zmount workloads need SSD capacity: every disk of this machine counts as one
    const hw = JSON.parse((await cli(["hardware", "--json"])).stdout) as { disks: Array<{ name: string }> };
    fs.writeFileSync(config, JSON.stringify({ hardware: { diskOverrides: Object.fromEntries(hw.disks.map((d) => [d.name, "ssd"])) } }));
    // a TFT price of 1 mUSD where the runtime has none: the few seconds of a period then cost whole planck
    verifier = await startDaemon(["verifier", "--chain-url", chain.url, "--data", path.join(dir, "verifier"), "--nats", nats.url, "--tft-price-musd", "1"], "verifier_ready");
  });

  afterAll(async () => {
    await agent?.stop();
    await verifier?.stop();
    await nc?.close();
    await nats?.stop();
    await chain?.stop();
  });

  it("registers the node key's twin and node on tfchain and serves under tfchain's node id", async () => {
    agent = await startOnChain();
    const reg = agent.logs.find((l) => l.event === "node_registered" && l.module === "agent");
    expect(reg).toMatchObject({ nodeId: expect.any(Number), twinId: expect.any(Number), farmId, kind: "registered" });
    nodeId = reg!.nodeId as number;
    nodeTwin = reg!.twinId as number;
    expect(agent.logs.find((l) => l.event === "agent_started")).toMatchObject({ nodeId, twinId: nodeTwin, farmId });
    expect(agent.logs.find((l) => l.event === "verifier_trusted")).toMatchObject({ verifierKey: verifierKey() });
    // what tfchain holds for the node's key
    const info = await cli(["chain-info", "--chain-url", chain.url, "--key", keys.node, "--json"]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ twinId: nodeTwin, nodeId });
    // the node API answers on tfgrid.v1.node.<tfchain's id>.*
    const status = await cli(["status", "--node", String(nodeId), "--nats", nats.url, "--json"]);
    expect(status.code).toBe(0);
  });

  it("refuses to start with a --node-id other than tfchain's (node_id_mismatch) or a tfchain that does not answer (chain_unavailable)", async () => {
    const other = await cli(["run", ...runArgs(), "--data", path.join(dir, "other"), "--node-id", String(nodeId + 100)]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("[node_id_mismatch]");
    const down = await cli(["run", "--chain-url", "ws://127.0.0.1:1", "--nats", nats.url, "--data", path.join(dir, "down"), "--farm-id", String(farmId), "--key", keys.node]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("[chain_unavailable]");
    const bad = await cli(["run", "--chain-url", "http://127.0.0.1:1", "--nats", nats.url, "--data", path.join(dir, "bad")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--chain-url");
  });

  it("accepts a deployment signed by a twin that exists only on tfchain (ed25519 key, scheme not stored)", async () => {
    const owner = await loadKeyFile(keys.owner);
    const client = new NodeClient(natsBus(nc), new Subjects("tfgrid.v1"));
    const r = parseDeployment({ id: 101, twinId: ownerTwin, version: 1, workloads: [{ name: "d", type: "zmount", size: "1GiB" }] });
    if (!r.ok) throw new Error(r.refusal.message);
    expect(await client.deploy(nodeId, buildDeployRequest(r.value, [{ twinId: ownerTwin, signer: owner }]))).toMatchObject({ accepted: true });
    // a twin id tfchain does not have is refused
    const stranger = parseDeployment({ id: 102, twinId: 9999, version: 1, workloads: [{ name: "d", type: "zmount", size: "1GiB" }] });
    if (!stranger.ok) throw new Error(stranger.refusal.message);
    expect(await client.deploy(nodeId, buildDeployRequest(stranger.value, [{ twinId: 9999, signer: owner }]))).toMatchObject({ accepted: false, rejection: { code: "unauthorized" } });
  });

  it("sends proofs of two periods into tfchain blocks; the verifier accepts them; proofs list and proofs verify answer", async () => {
    await waitLogged(async () => judged().filter(([, code]) => code === "ok").length >= 2, 120_000, "two proofs judged ok by the verifier");
    const list = await proofsList();
    expect(list.length).toBeGreaterThanOrEqual(2);
    expect(list.slice(0, 2).map((p) => p.sequence)).toEqual([1, 2]);
    expect(list[1].previousHash).toBe(list[0].hash);
    // deployment 101 ran through the second period at least: its record holds against the chain
    await waitLogged(async () => (await proofsList()).length >= 3, 60_000, "a third proof");
    const v = await cli(["proofs", "verify", "--node", String(nodeId), "--deployment", "101", "--nats", nats.url, "--json"]);
    expect(v.code).toBe(0);
    const verified = JSON.parse(v.stdout) as { holds: boolean; checked: Array<{ code: string }> };
    expect(verified.holds).toBe(true);
    expect(verified.checked.length).toBeGreaterThanOrEqual(1);
    expect(verified.checked.every((c) => c.code === "holds")).toBe(true);
  });

  it("restarted mid-period, the agent delivers each proof exactly once (contiguous sequences, no duplicates)", async () => {
    const before = (await proofsList()).length;
    // stop in the middle of a period, stay down across a period boundary, come back
    const ms = Date.now() % (PERIOD_S * 1000);
    await new Promise((res) => setTimeout(res, (PERIOD_S * 1000 - ms + PERIOD_S * 500) % (PERIOD_S * 1000)));
    await agent!.stop();
    await new Promise((res) => setTimeout(res, PERIOD_S * 1000));
    agent = await startOnChain();
    // the second start finds its twin and node on tfchain: nothing registered again
    expect(agent.logs.find((l) => l.event === "node_registered" && l.module === "agent")).toMatchObject({ nodeId, twinId: nodeTwin, kind: "unchanged" });
    await waitLogged(async () => (await proofsList()).length >= before + 3, 120_000, "three more proofs after the restart");
    const list = await proofsList();
    expect(list.map((p) => p.sequence)).toEqual(list.map((_, i) => i + 1));
    for (let i = 1; i < list.length; i++) expect(list[i].previousHash).toBe(list[i - 1].hash);
    // the verifier saw each remark once: every one judged ok, none a duplicate
    const seen = judged();
    expect(seen.every(([, code]) => code === "ok")).toBe(true);
    expect(new Set(seen.map(([s]) => s)).size).toBe(seen.length);
  });

  it("bills the owner twin on tfchain: charged with the farm's pricing policy, its balance is its account's free balance minus its bills, bills verify holds", async () => {
    const client = new ChainClient(natsBus(nc), new Subjects("tfgrid.v1"));
    await waitLogged(async () => ((await client.bills(ownerTwin))?.bills.filter((b) => b.amount > 0n).length ?? 0) >= 2, 120_000, "two bills of the owner twin with an amount");
    const r = (await client.bills(ownerTwin))!;
    // policy 1 of the genesis at 1 mUSD per TFT (the runtime has no TFT price): value x 1000 planck
    expect(r.pricing).toMatchObject({ cuPerHour: 320_000_000n, suPerHour: 150_000_000n, nuPerGib: 30_000_000n, ipv4PerHour: 49_000_000n, version: 1 });
    const api = await TfchainBackend.connect({ url: chain.url }, { logger: silentLogger() });
    let free: bigint;
    try {
      free = await api.freeBalance((await loadKeyFile(keys.owner)).publicKey);
    } finally {
      await api.close();
    }
    // newest first: the newest bill's balance is the free balance minus every bill so far
    const spent = r.bills.reduce((a, b) => a + b.amount, 0n);
    expect(spent).toBeGreaterThan(0n);
    expect(r.bills[0].balanceAfter).toBe(free - spent);
    expect(r.bills.every((b) => b.code === "" && b.pricingVersion === 1 && b.farmId === farmId)).toBe(true);
    for (const b of r.bills.filter((x) => x.amount > 0n).slice(0, 2)) {
      const v = await cli(["bills", "verify", "--twin", String(ownerTwin), "--node", String(nodeId), "--sequence", String(b.sequence), "--nats", nats.url, "--json"]);
      expect({ sequence: b.sequence, code: v.code, out: v.stdout }).toEqual({ sequence: b.sequence, code: 0, out: expect.stringContaining('"holds":true') });
    }
    const bal = await cli(["balance", "--twin", String(ownerTwin), "--nats", nats.url, "--json"]);
    expect(bal.code).toBe(0);
    expect(BigInt((JSON.parse(bal.stdout) as { balance: string }).balance)).toBeLessThan(free);
  });

  it("a twin the verifier bills into debt is told to the node (the verifier's signed verdict): its new deployments are refused with twin_in_debt", async () => {
    const file = path.join(dir, "debtor.json");
    const made = await cli(["keys", "new", "--out", file, "--type", "ed25519"]);
    expect(made.code).toBe(0);
    const address = JSON.parse(made.stdout).address as string;
    await fundAccounts(chain.url, [address], 1000n * PLANCK_PER_TFT);
    const reg = await cli(["twin", "register", "--chain-url", chain.url, "--key", file, "--json"]);
    expect(reg.code).toBe(0);
    const debtor = (JSON.parse(reg.stdout) as { twinId: number }).twinId;
    // the account is left with 1 planck: its first bill puts the twin in debt
    await fundAccounts(chain.url, [address], 1n);
    const signer = await loadKeyFile(file);
    const client = new NodeClient(natsBus(nc), new Subjects("tfgrid.v1"));
    const spec = (id: number) => {
      const r = parseDeployment({ id, twinId: debtor, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 2, memory: "4GiB", rootfs: "2GiB" }] });
      if (!r.ok) throw new Error(r.refusal.message);
      return buildDeployRequest(r.value, [{ twinId: debtor, signer }]);
    };
    expect(await client.deploy(nodeId, spec(301))).toMatchObject({ accepted: true });
    const chainClient = new ChainClient(natsBus(nc), new Subjects("tfgrid.v1"));
    await waitLogged(async () => (await chainClient.bills(debtor))?.balance.inDebt === true, 120_000, "the verifier bills the debtor into debt");
    const balance = (await chainClient.bills(debtor))!.balance;
    expect(balance.graceEndMs).toBe(balance.inDebtSinceMs! + 14 * 24 * 3600 * 1000);
    // the node asks the verifier for its verdicts and learns it
    await waitLogged(async () => ((await client.status(nodeId)).usage?.twinsInGrace ?? []).includes(debtor), 60_000, "the node shows the debtor in grace");
    const status = await client.status(nodeId);
    expect(status.usage!.grace).toContainEqual({ twinId: debtor, graceEndMs: balance.graceEndMs, expired: false });
    expect(agent!.logs.some((l) => l.event === "proof_verdict" && Array.isArray(l.twinsInDebt) && (l.twinsInDebt as number[]).includes(debtor))).toBe(true);
    expect(await client.deploy(nodeId, spec(302))).toMatchObject({ accepted: false, rejection: { code: "twin_in_debt" } });
    // what it has keeps running in grace (14 days)
    expect(await client.get(nodeId, 301)).toMatchObject({ found: true });
  });
});
