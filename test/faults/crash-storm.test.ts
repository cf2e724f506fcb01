/**
 * Fault suite, "crash-storm": N SIGKILLs of a real agent process under concurrent deploys and
 * deletes (quick: 50 kills, FAULT_MODE=full: 500). A client records every request and its answer.
 * After each restart, status must show: acknowledged lost = 0 (every accepted change is there),
 * phantoms only for requests that got no answer (nothing never requested or refused), used = the
 * sum of the reservations. Across all restarts a raw subscriber checks that announcement sequences
 * only grow, and the chain's proofs have sequences 1..n, each once, in order.
 */
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { decodeAnnouncementPayload } from "../../agent/gossip/wire";
import { UNIT_NAMES } from "../../agent/capacity/units";
import { eventually } from "../utils/grid";
import { faultMode } from "./mode";
import { deleteBytes, deployBytes, startFaultNode, type FaultNode } from "./node";
import { recordFigures } from "./report";

const KILLS = Number(process.env.FAULT_KILLS ?? (faultMode() === "full" ? 500 : 50));
const IDS = 40;
const WORKERS = 4;
const PERIOD_S = 2;

/** What a deployment id can be: absent, or present at a version. */
type State = number | "absent";

interface IdLog {
  /** the state after the last answered request (what the node acknowledged) */
  acked: State;
  /** states requested since then that got no answer (the node may or may not have applied them) */
  unanswered: State[];
  nextVersion: number;
}

let n: FaultNode;
jest.setTimeout(KILLS * 4000 + 120_000);

beforeAll(async () => {
  n = await startFaultNode({ periodSeconds: PERIOD_S, prefix: "crash-storm-" });
});
afterAll(async () => {
  await n?.close();
});

test(`crash storm: ${KILLS} SIGKILLs under load lose no acknowledged change and make no phantom`, async () => {
  const ids = new Map<number, IdLog>();
  for (let id = 1; id <= IDS; id++) ids.set(id, { acked: "absent", unanswered: [], nextVersion: 1 });
  const counts = { requests: 0, accepted: 0, rejected: 0, unanswered: 0, ackLost: 0, phantomsUnanswered: 0, phantomsBad: 0, usedMismatch: 0, seqBackwards: 0 };
  const rejectCodes = new Map<string, number>();
  const problems: string[] = [];

  // a raw subscriber: every announcement node 1 publishes, in arrival order
  const seqs: number[] = [];
  const sub = n.nc.subscribe(n.subjects.capacity(1, 1), {
    callback: (err, msg) => {
      if (err) return;
      const o = open(msg.data, DOMAIN.CapacityAnnouncement);
      if (!o.ok) return void problems.push(`announcement does not open: ${o.refusal.message}`);
      const a = decodeAnnouncementPayload(o.value.payload, 64 * 1024);
      if (seqs.length && a.sequence <= seqs[seqs.length - 1]) counts.seqBackwards++;
      seqs.push(a.sequence);
    },
  });

  // workers: each owns the ids = w (mod WORKERS), so one id has one request in flight at a time
  let stop = false;
  const busy = new Set<number>();
  /** while a status is being fetched: ids whose request started or ended meanwhile (their state in it is a race) */
  let touched: Set<number> | null = null;
  const worker = async (w: number): Promise<void> => {
    let i = 0;
    while (!stop) {
      const id = 1 + ((w + WORKERS * Math.floor(Math.random() * (IDS / WORKERS))) % IDS);
      const log = ids.get(id)!;
      const current = log.unanswered.length ? log.unanswered[log.unanswered.length - 1] : log.acked;
      const del = current !== "absent" && Math.random() < 0.3;
      const want: State = del ? "absent" : log.nextVersion++;
      busy.add(id);
      touched?.add(id);
      counts.requests++;
      try {
        const d = del ? await n.client.delete(1, deleteBytes(n, id)) : await n.client.deploy(1, deployBytes(n, id, want as number, id + i));
        if (d.accepted) {
          counts.accepted++;
          log.acked = want;
          log.unanswered = [];
        } else {
          counts.rejected++;
          rejectCodes.set(d.code, (rejectCodes.get(d.code) ?? 0) + 1);
          // a refusal changes nothing; a request without answer before it may still have been applied
        }
      } catch {
        counts.unanswered++;
        log.unanswered.push(want);
        await new Promise((r) => setTimeout(r, 20));
      } finally {
        busy.delete(id);
        touched?.add(id);
      }
      i++;
    }
  };

  const check = async (round: number): Promise<void> => {
    touched = new Set(busy);
    const st = await eventually(() => n.client.status(1), 10_000, "status after restart");
    const racing = touched;
    touched = null;
    const present = new Map(st.deployments.map((d) => [d.id, d]));
    for (const [id, log] of ids) {
      if (busy.has(id) || racing.has(id)) continue; // a request for it was in flight while status was read: checked next round
      const d = present.get(id);
      const actual: State = d ? d.version : "absent";
      if (actual === log.acked) {
        log.unanswered = [];
        continue;
      }
      if (log.unanswered.includes(actual)) {
        if (actual !== "absent") counts.phantomsUnanswered++;
        log.acked = actual; // the node applied a request it never answered: that is now the truth
        log.unanswered = [];
        continue;
      }
      if (actual === "absent" || (log.acked !== "absent" && actual < log.acked)) {
        counts.ackLost++;
        problems.push(`round ${round}: deployment ${id} acknowledged at ${log.acked}, node has ${actual}`);
      } else {
        counts.phantomsBad++;
        problems.push(`round ${round}: deployment ${id} at ${actual} was never requested without answer (acked ${log.acked}, unanswered ${log.unanswered})`);
      }
      log.acked = actual;
      log.unanswered = [];
    }
    for (const u of UNIT_NAMES) {
      const sum = st.deployments.reduce((s, d) => s + d.units[u], 0);
      if (sum !== st.used[u]) {
        counts.usedMismatch++;
        problems.push(`round ${round}: used.${u} ${st.used[u]} != sum of reservations ${sum}`);
      }
    }
  };

  const t0 = Date.now();
  const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
  const startMs: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    // let the load run 50..400 ms on the running agent, then SIGKILL it mid-flight
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 350));
    await n.agent.kill();
    const s = Date.now();
    await n.restart();
    startMs.push(Date.now() - s);
    await check(k + 1);
  }
  stop = true;
  await Promise.all(workers);
  await check(KILLS + 1);
  const elapsedS = (Date.now() - t0) / 1000;

  // proofs: wait for one more period to be delivered, then the chain's list is 1..n, each once
  const before = (await n.chainClient.proofs(1, 1, 10_000)).length;
  const proofs = await eventually(async () => {
    const p = await n.chainClient.proofs(1, 1, 10_000);
    return p.length > before ? p : null;
  }, PERIOD_S * 1000 * 4 + 10_000, "a proof after the storm");
  const proofSeqOk = proofs.every((p, i) => p.header.sequence === i + 1 && (i === 0 || p.header.periodStartMs === proofs[i - 1].header.periodEndMs));
  sub.unsubscribe();

  startMs.sort((a, b) => a - b);
  recordFigures("crash-storm", {
    kills: KILLS,
    elapsedS: +elapsedS.toFixed(1),
    requests: counts.requests,
    accepted: counts.accepted,
    rejected: counts.rejected,
    rejectCodes: JSON.stringify(Object.fromEntries(rejectCodes)),
    unanswered: counts.unanswered,
    acknowledgedLost: counts.ackLost,
    phantomsOfUnanswered: counts.phantomsUnanswered,
    phantomsOther: counts.phantomsBad,
    usedMismatches: counts.usedMismatch,
    announcements: seqs.length,
    announcementSeqBackwards: counts.seqBackwards,
    proofs: proofs.length,
    proofSequencesInOrder: proofSeqOk,
    restartMedianMs: startMs[Math.floor(startMs.length / 2)],
    restartMaxMs: startMs[startMs.length - 1],
  });
  expect(problems.slice(0, 10)).toEqual([]);
  expect(counts.ackLost).toBe(0);
  expect(counts.phantomsBad).toBe(0);
  expect(counts.usedMismatch).toBe(0);
  expect(counts.seqBackwards).toBe(0);
  expect(proofSeqOk).toBe(true);
  // the storm was a storm: work was acknowledged and work was cut off
  expect(counts.accepted).toBeGreaterThan(KILLS);
  expect(seqs.length).toBeGreaterThan(KILLS);
});
