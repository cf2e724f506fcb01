/**
 * Grace on the chain stand-in (issue 13, docs/billing.md "Grace"): a real nats-server, the
 * stand-in with a 3 s grace and an agent as real processes. Two twins deploy, then cannot pay their
 * first bill: both are in grace (status shows their grace ends, new deployments get twin_in_debt).
 * The one funded in time keeps its deployment; the other loses its deployment when the grace ends
 * (capacity released, a decision with reason grace_expired, a warn log), exactly once, also across
 * a restart of the agent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { natsBus } from "../../agent/bus/nats";
import { ChainClient } from "../../agent/chain/client";
import { cryptoReady, type Signer } from "../../agent/identity/keys";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually } from "../utils/grid";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { chainTwins, ssdConfig } from "../utils/setup";

const GRACE_S = 3;
let nats: NatsServerHandle;
let chainProc: AgentProcess;
let agent: AgentProcess;
let nc: NatsConnection;
let chain: ChainClient;
let client: NodeClient;
let dir: string;
let agentArgs: string[];
const twins: Array<{ id: number; signer: Signer }> = [];

function deployment(id: number, twinId: number) {
  const spec = parseDeployment({ id, twinId, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "2GiB", rootfs: "2GiB" }] });
  if (!spec.ok) throw new Error(spec.refusal.message);
  return spec.value;
}

beforeAll(async () => {
  await cryptoReady();
  nats = await startNats();
  dir = tmpDir("billing-grace-");
  chainProc = await startChain(["--nats", nats.url, "--data", path.join(dir, "chain"), "--grace-period", String(GRACE_S)]);
  // a VM's root filesystem needs SSD capacity: every disk of this machine counts as one
  const config = await ssdConfig(dir);
  agentArgs = ["--nats", nats.url, "--data", path.join(dir, "node"), "--farm-id", "1", "--period", "1", "--config", config];
  agent = await startAgent(agentArgs);
  nc = await connect({ servers: nats.url });
  chain = new ChainClient(natsBus(nc), new Subjects());
  client = new NodeClient(natsBus(nc), new Subjects());
  await eventually(async () => await chain.node(1), 15_000, "node 1 registered");
  twins.push(...(await chainTwins(dir, chain, 2)));
  // never funded: the first bill puts both in debt
  for (const [i, t] of twins.entries()) {
    await eventually(async () => {
      const d = await client.deploy(1, buildDeployRequest(deployment(100 + i, t.id), [{ twinId: t.id, signer: t.signer }]));
      return d.accepted ? d : null;
    }, 15_000, `twin ${t.id}'s deployment`);
  }
}, 90_000);

afterAll(async () => {
  await nc?.close();
  await agent?.stop();
  await chainProc?.stop();
  await nats?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("a twin in debt loses its deployments when its grace ends; one funded in time keeps them", async () => {
  const [late, paying] = twins;
  // both in grace: the node shows the chain's grace ends
  const status = await eventually(async () => {
    const s = await client.status(1);
    return s.usage?.grace?.length === 2 ? s : null;
  }, 15_000, "both twins in grace on the node");
  const chainBalance = await chain.bills(late.id, { limit: 1 });
  expect(chainBalance!.balance.inDebt).toBe(true);
  expect(chainBalance!.balance.graceEndMs).toBe(chainBalance!.balance.inDebtSinceMs! + GRACE_S * 1000);
  const lateGrace = status.usage!.grace!.find((g) => g.twinId === late.id)!;
  expect(lateGrace).toEqual({ twinId: late.id, graceEndMs: chainBalance!.balance.graceEndMs, expired: false });
  expect(status.usage!.twinsInGrace).toEqual([late.id, paying.id].sort((a, b) => a - b));
  // a new deployment of a twin in grace is refused
  const refused = await client.deploy(1, buildDeployRequest(deployment(200, late.id), [{ twinId: late.id, signer: late.signer }]));
  expect(refused.accepted).toBe(false);
  expect(refused.rejection?.code).toBe("twin_in_debt");

  // the paying twin is funded in time
  const funded = await cli(["chain", "fund", "--twin", String(paying.id), "--amount", String(10n ** 12n), "--nats", nats.url, "--json"]);
  expect(funded.code).toBe(0);
  expect(Date.now()).toBeLessThan(lateGrace.graceEndMs);

  // the late twin's grace ends: its deployment is deleted, the paying twin's stays
  const gone = await agent.waitForEvent("grace_expired", 20_000, (l) => l.twinId === late.id);
  expect(gone).toMatchObject({ level: 40, twinId: late.id, deploymentId: 100 });
  // not before the grace end, and soon after it: the node looks at every alive tick (250 ms here)
  const lagMs = Date.parse(gone.time as string) - lateGrace.graceEndMs;
  expect(lagMs).toBeGreaterThanOrEqual(0);
  expect(lagMs).toBeLessThan(3000);
  expect(await client.get(1, 100)).toMatchObject({ found: false });
  expect(await client.get(1, 101)).toMatchObject({ found: true, twinId: paying.id });
  const after = await eventually(async () => {
    const s = await client.status(1);
    return s.usage?.grace?.find((g) => g.twinId === late.id)?.expired ? s : null;
  }, 10_000, "the late twin's grace marked expired");
  expect(after.deployments.map((d) => d.id)).toEqual([101]);
  expect(after.usage!.grace!.some((g) => g.twinId === paying.id)).toBe(false);
  const decisions = (await client.decisions(1)).decisions.filter((d) => d.reason === "grace_expired");
  expect(decisions).toEqual([expect.objectContaining({ op: "delete", result: "delete", deploymentId: 100, twinId: late.id, reason: "grace_expired" })]);

  // exactly once, also after a restart: the list is in the store
  await agent.stop();
  agent = await startAgent(agentArgs);
  const restarted = await client.status(1);
  expect(restarted.usage!.grace!.find((g) => g.twinId === late.id)).toMatchObject({ expired: true });
  await eventually(async () => ((await client.status(1)).usage!.deliveredSequence > restarted.usage!.deliveredSequence + 1 ? true : null), 15_000, "two more proofs after the restart");
  expect(agent.logs.filter((l) => l.event === "grace_expired")).toEqual([]);
  expect(await client.get(1, 101)).toMatchObject({ found: true });
}, 90_000);
