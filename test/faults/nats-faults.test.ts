/**
 * Fault suite, "nats-stop" and "nats-kill": the nats-server under a real agent and chain stand-in
 * is frozen (SIGSTOP for some seconds, then SIGCONT) and killed (SIGKILL, then a new server on the
 * same port). The agent must stay up, answer again within a bound, keep its deployments, and
 * gossip again with a higher sequence. (A lost member of a 3-server cluster is
 * test/integration/gossip-failover.test.ts, run by the same suite.)
 */
import { spawn } from "node:child_process";
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { decodeAnnouncementPayload } from "../../agent/gossip/wire";
import { natsAnswers } from "../../agent/bus/nats";
import { natsBin, waitFor } from "../utils/nats";
import { faultMode } from "./mode";
import { deployBytes, startFaultNode, type FaultNode } from "./node";
import { recordFigures } from "./report";

const ROUNDS = faultMode() === "full" ? 5 : 1;
const STOP_MS = faultMode() === "full" ? 15_000 : 4_000;
/** the agent answers within this after the server is back */
const ANSWER_BOUND_MS = 10_000;

let n: FaultNode;
const seqs: number[] = [];
/** deployment ids the node accepted, in order */
const deployed: number[] = [];
jest.setTimeout(ROUNDS * (STOP_MS + 40_000) + 60_000);

beforeAll(async () => {
  n = await startFaultNode({ prefix: "nats-faults-" });
  n.nc.subscribe(n.subjects.capacity(1, 1), {
    callback: (err, msg) => {
      if (err) return;
      const o = open(msg.data, DOMAIN.CapacityAnnouncement);
      if (o.ok) seqs.push(decodeAnnouncementPayload(o.value.payload, 64 * 1024).sequence);
    },
  });
  expect(await n.client.deploy(1, deployBytes(n, 1, 1, 0))).toMatchObject({ accepted: true });
  deployed.push(1);
});
afterAll(async () => {
  await n?.close();
});

/** ms until the agent answers status again (polling every 50 ms), and a deploy is accepted */
async function timeToAnswer(from: number, id: number): Promise<number> {
  let answeredAt = 0;
  await waitFor(async () => {
    try {
      await n.client.statusPage(1, 0, 1);
      answeredAt = Date.now();
      return true;
    } catch {
      return false;
    }
  }, 60_000, "the agent to answer again");
  // a 1 GiB volume (kind 0): the node has room for hundreds; VMs would hit its 4 CPUs
  expect(await n.client.deploy(1, deployBytes(n, id, 1, 0))).toMatchObject({ accepted: true, code: "ok" });
  deployed.push(id);
  return answeredAt - from;
}

test("nats-server frozen with SIGSTOP: after SIGCONT the agent answers within the bound and keeps its deployments", async () => {
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const seqBefore = seqs[seqs.length - 1] ?? 0;
    n.nats.child.kill("SIGSTOP");
    await new Promise((res) => setTimeout(res, STOP_MS));
    n.nats.child.kill("SIGCONT");
    const t = await timeToAnswer(Date.now(), 100 + r);
    times.push(t);
    await waitFor(() => (seqs[seqs.length - 1] ?? 0) > seqBefore, 10_000, "an announcement after the freeze");
  }
  expect(n.agent.child.exitCode).toBeNull();
  const st = await n.client.status(1);
  expect(st.deployments.map((d) => d.id)).toEqual(deployed);
  recordFigures("nats-stop", { rounds: ROUNDS, frozenMs: STOP_MS, answerAfterContMaxMs: Math.max(...times), boundMs: ANSWER_BOUND_MS, agentUp: true });
  expect(Math.max(...times)).toBeLessThan(ANSWER_BOUND_MS);
});

test("nats-server killed and started again on its port: the agent reconnects and answers within the bound", async () => {
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const seqBefore = seqs[seqs.length - 1] ?? 0;
    const old = n.nats.child;
    await new Promise<void>((res) => {
      old.once("exit", () => res());
      old.kill("SIGKILL");
    });
    await new Promise((res) => setTimeout(res, 2000));
    const child = spawn(natsBin(), ["-a", "127.0.0.1", "-p", String(n.nats.port)], { stdio: "ignore" });
    n.nats.child = child;
    n.nats.stop = () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once("exit", () => res());
        child.kill("SIGTERM");
      });
    const up = Date.now();
    await waitFor(() => natsAnswers(n.nats.url, 300), 10_000, "the new nats-server");
    times.push(await timeToAnswer(up, 200 + r));
    await waitFor(() => (seqs[seqs.length - 1] ?? 0) > seqBefore, 40_000, "an announcement after the restart");
  }
  expect(n.agent.child.exitCode).toBeNull();
  expect(n.agent.logs.some((l) => l.event === "nats_reconnected")).toBe(true);
  const st = await n.client.status(1);
  expect(st.deployments.map((d) => d.id)).toEqual(deployed);
  recordFigures("nats-kill", { rounds: ROUNDS, answerAfterRestartMaxMs: Math.max(...times), boundMs: ANSWER_BOUND_MS, agentUp: true, deploymentsKept: st.deployments.length });
  expect(Math.max(...times)).toBeLessThan(ANSWER_BOUND_MS);
});
