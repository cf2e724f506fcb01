/**
 * Fault suite, "fuzz-subjects": every NATS subject the agent and the chain stand-in serve gets
 * random bytes, mutations of real messages (captured from the wire while a client deploys,
 * deletes, reads status, audits, asks peers, finds, syncs and the agent submits proofs), huge
 * repeated fields, payloads re-signed under the wrong domain tag or by an unregistered key, and
 * exact replays. Afterwards every process is up, the node still answers, its deployments are what
 * they were, and the chain's proofs are the ones the node made (1..n in order, the earlier ones
 * unchanged). Quick: 1,000 inputs per subject; FAULT_MODE=full: 100,000.
 */
import * as crypto from "node:crypto";
import { createInbox } from "@nats-io/transport-node";
import { natsAnswers, natsBus } from "../../agent/bus/nats";
import { findCapacity } from "../../agent/gossip/find";
import { queryPeers } from "../../agent/gossip/client";
import { encodeSyncRequest } from "../../agent/gossip/wire";
import { DOMAIN, type Domain } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { signerFromSeed } from "../../agent/identity/keys";
import { decode, encode } from "../../agent/wire/codec";
import { eventually } from "../utils/grid";
import { waitFor } from "../utils/nats";
import { faultMode } from "./mode";
import { deleteBytes, deployBytes, startFaultNode, type FaultNode } from "./node";
import { recordFigures } from "./report";

const PER_SUBJECT = Number(process.env.FAULT_FUZZ ?? (faultMode() === "full" ? 100_000 : 1_000));
const PERIOD_S = 2;
let n: FaultNode;
const afterFuzz: Array<() => void> = [];
// ~1.2 ms a message when the machine is quiet (20,000 per subject took 276 s); room for a shared machine
jest.setTimeout(120_000 + PER_SUBJECT * 40);

beforeAll(async () => {
  n = await startFaultNode({ periodSeconds: PERIOD_S, prefix: "fuzz-" });
});
afterAll(async () => {
  for (const f of afterFuzz) f();
  await n?.close();
});

/** A payload's domain by subject, for re-signing under a wrong one. */
function domainOf(subject: string): Domain | undefined {
  if (subject.endsWith(".deploy")) return DOMAIN.Deployment;
  if (subject.endsWith(".delete")) return DOMAIN.DeleteRequest;
  if (subject.includes(".capacity.") && !subject.includes("sync") && !subject.endsWith("find")) return DOMAIN.CapacityAnnouncement;
  if (subject.includes(".chain.")) return subject.endsWith("proof.submit") || subject.endsWith("proof.settle") ? DOMAIN.UsageProof : DOMAIN.ChainCall;
  return undefined;
}

function mutate(b: Uint8Array): Uint8Array {
  const r = Math.random();
  if (b.length === 0 || r < 0.5) {
    const out = Uint8Array.from(b.length ? b : [0]);
    const flips = 1 + Math.floor(Math.random() * 4);
    for (let i = 0; i < flips; i++) out[Math.floor(Math.random() * out.length)] ^= 1 << Math.floor(Math.random() * 8);
    return out;
  }
  if (r < 0.7) return b.slice(0, Math.floor(Math.random() * b.length));
  if (r < 0.85) return Buffer.concat([b, crypto.randomBytes(1 + Math.floor(Math.random() * 64))]);
  // a slice written again and again (a repeated or last-wins field many times over), up to 512 KiB
  const at = Math.floor(Math.random() * b.length);
  const slice = b.slice(at, at + 1 + Math.floor(Math.random() * 16));
  const times = Math.min(Math.floor((512 * 1024) / slice.length), 10 + Math.floor(Math.random() * 20_000));
  return Buffer.concat([b.slice(0, at), ...Array.from({ length: times }, () => slice), b.slice(at)]);
}

test(`fuzz: ${PER_SUBJECT} hostile inputs on every subject change nothing and stop nothing`, async () => {
  // 1. capture one or more real requests per subject from the wire (requests, not replies: inboxes are elsewhere)
  const seeds = new Map<string, Uint8Array[]>();
  const cap = n.nc.subscribe(`${n.subjects.prefix}.>`, {
    callback: (err, msg) => {
      if (err) return;
      const list = seeds.get(msg.subject) ?? [];
      if (list.length < 8) list.push(Uint8Array.from(msg.data));
      seeds.set(msg.subject, list);
    },
  });
  expect(await n.client.deploy(1, deployBytes(n, 1, 1, 1))).toMatchObject({ accepted: true });
  expect(await n.client.deploy(1, deployBytes(n, 1, 2, 1))).toMatchObject({ accepted: true });
  expect(await n.client.deploy(1, deployBytes(n, 2, 1, 2))).toMatchObject({ accepted: true });
  expect(await n.client.deploy(1, deployBytes(n, 3, 1, 2))).toMatchObject({ accepted: true });
  expect(await n.client.delete(1, deleteBytes(n, 3))).toMatchObject({ accepted: true });
  await n.client.status(1);
  await n.client.get(1, 1);
  await n.nc.request(n.subjects.nodeUsage(1, 1), encode("UsageAuditRequest", { deploymentId: 1 }), { timeout: 3000 });
  await queryPeers(natsBus(n.nc), n.subjects, 1, { registry: null, timeoutMs: 2000 });
  await findCapacity(natsBus(n.nc), n.subjects, { want: { cru: 1, mru: 1 << 20, sru: 0, hru: 0, ipv4u: 0, gpu: 0 }, farmId: 0, limit: 5 }, { registry: null, deadlineMs: 800 });
  await n.nc.request(n.subjects.capacitySync(1), encodeSyncRequest(1, 99), { timeout: 2000 }).catch(() => undefined);
  const forger = signerFromSeed("ed25519", crypto.randomBytes(32));
  await n.chainClient.registerTwin(forger);
  await n.chainClient.proofs(1, 1, 10);
  // the agent submits proofs every period (with billing's per-twin subtotals, on proof.settle): wait
  // for them, so the proof subject has real seeds
  await eventually(async () => (await n.chainClient.proofs(1, 1, 100)).length >= 2, PERIOD_S * 4000 + 10_000, "two proofs");
  await waitFor(() => (seeds.has(n.subjects.chain("proof.settle")) || seeds.has(n.subjects.chain("proof.submit"))) && seeds.has(n.subjects.capacity(1, 1)), 10_000, "proof and announcement seeds");
  cap.unsubscribe();
  // subjects served but maybe not seen: fuzz them with the seeds of the others
  for (const s of [n.subjects.chain("node.register"), n.subjects.chain("farm.register"), n.subjects.chain("proof.submit"), n.subjects.chain("proof.settle"), n.subjects.chain("fund"), n.subjects.chain("node.power"), n.subjects.nodeUsage(1, 2)]) if (!seeds.has(s)) seeds.set(s, []);
  const allSeeds = [...seeds.values()].flat();

  const before = await n.client.status(1);
  const proofsBefore = await n.chainClient.proofs(1, 1, 10_000);

  // 2. the inputs
  const kinds = { random: 0, mutated: 0, huge: 0, wrongDomain: 0, wrongKey: 0, replay: 0, crossSubject: 0 };
  const input = (subject: string, i: number): Uint8Array => {
    const own = seeds.get(subject)!;
    const seed = own.length ? own[i % own.length] : allSeeds[i % allSeeds.length];
    const k = i % 10;
    if (k === 0) return kinds.random++, crypto.randomBytes(Math.floor(Math.random() * 2048));
    if (k === 1 && own.length) return kinds.replay++, seed;
    if (k === 2) return kinds.crossSubject++, allSeeds[Math.floor(Math.random() * allSeeds.length)];
    if (k === 3 || k === 4) {
      let payload: Uint8Array;
      try {
        payload = decode("Signed", seed, { maxBytes: 1 << 20 }).payload;
      } catch {
        payload = seed;
      }
      const right = domainOf(subject);
      if (k === 3) {
        const wrong = (Object.values(DOMAIN) as Domain[]).filter((d) => d !== right);
        return kinds.wrongDomain++, seal(n.owner, wrong[Math.floor(Math.random() * wrong.length)], payload);
      }
      return kinds.wrongKey++, seal(forger, right ?? DOMAIN.Deployment, payload);
    }
    const m = mutate(seed);
    if (m.length > 64 * 1024) kinds.huge++;
    else kinds.mutated++;
    return m;
  };

  const subjects = [...seeds.keys()].sort();
  const inbox = createInbox();
  let replies = 0;
  const rsub = n.nc.subscribe(`${inbox}.>`, { callback: () => void replies++ });
  afterFuzz.push(() => rsub.unsubscribe());
  const t0 = Date.now();
  let sent = 0;
  for (const subject of subjects) {
    for (let i = 0; i < PER_SUBJECT; i++) {
      n.nc.publish(subject, input(subject, i), { reply: `${inbox}.${sent++}` });
      if (sent % 200 === 0) await n.nc.flush();
    }
  }
  await n.nc.flush();
  const sendS = (Date.now() - t0) / 1000;
  // let the processes work through what they took in
  let last = -1;
  await waitFor(() => {
    const settled = replies === last;
    last = replies;
    return settled;
  }, 120_000, "replies to settle");

  // 3. nothing stopped, nothing changed
  expect(n.agent.child.exitCode).toBeNull();
  expect(n.chain.child.exitCode).toBeNull();
  expect(await natsAnswers(n.nats.url, 1000)).toBe(true);
  const after = await eventually(() => n.client.status(1), 10_000, "status after the fuzz");
  const was = new Map(before.deployments.map((d) => [d.id, d.version]));
  const now = new Map(after.deployments.map((d) => [d.id, d.version]));
  const changed = [...new Set([...was.keys(), ...now.keys()])].filter((id) => was.get(id) !== now.get(id)).length;
  expect(after.deployments.map((d) => [d.id, d.version])).toEqual(before.deployments.map((d) => [d.id, d.version]));
  expect(after.used).toEqual(before.used);
  const proofsAfter = await n.chainClient.proofs(1, 1, 10_000);
  proofsAfter.forEach((p, i) => expect(p.header.sequence).toBe(i + 1));
  proofsBefore.forEach((p, i) => expect(Buffer.from(proofsAfter[i].proof).equals(Buffer.from(p.proof))).toBe(true));
  // the node still decides new work
  expect(await n.client.deploy(1, deployBytes(n, 50, 1, 1))).toMatchObject({ accepted: true });
  const crashes = [...n.agent.logs, ...n.chain.logs].filter((l) => l.level === 50 || l.level === 60).length;
  recordFigures("fuzz-subjects", {
    subjects: subjects.length,
    subjectList: subjects.map((s) => s.slice(n.subjects.prefix.length + 1)).join(" "),
    perSubject: PER_SUBJECT,
    inputs: sent,
    ...kinds,
    replies,
    sendSeconds: +sendS.toFixed(1),
    deploymentsChanged: changed,
    errorLogs: crashes,
    processesUp: true,
  });
  expect(subjects.length).toBeGreaterThanOrEqual(13);
  expect(crashes).toBe(0);
});
