import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MemoryBus } from "../../agent/bus/memory";
import type { Reservation } from "../../agent/admission/admit";
import { Subjects } from "../../agent/bus/subjects";
import { GiB, type Units } from "../../agent/capacity/units";
import { DOMAIN } from "../../agent/identity/domains";
import { open } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { buildProof } from "../../agent/proofs/build";
import { addAmounts, decodeProofHeader, decodeRecord, proofHash, ZERO_HASH, zeroAmounts, type ProofHeader, type UsageRecord } from "../../agent/proofs/proof";
import { Store } from "../../agent/store/store";
import { checkAudit, checkListing } from "../../agent/usage/audit";
import { meterPeriod } from "../../agent/usage/meter";
import type { ChainHead } from "../../agent/usage/outbox";
import { UsageService, type ProofSink, type UsageOptions } from "../../agent/usage/service";
import { decodeTwinSubtotal, twinsTree } from "../../agent/billing/twins";
import { decode, encode } from "../../agent/wire/codec";

/**
 * UsageService is the I/O shell around meterPeriod (usage-meter.test.ts) and buildProof
 * (proof-build.test.ts), whose tests own what a proof says. Here: what the shell does with them.
 * When periods are closed and with what from the store, the outbox (a proof is on disk before it
 * is sent, in sequence order, until acknowledged), retries, delivery order across restarts,
 * downtime between runs, the chain head at a first start, the twins in debt, and audits.
 *
 * In-process: a real SQLite store on disk, a real ed25519 key, an injected clock (time moves only
 * when a test sets `clock.t`; periods are closed by calling closeDuePeriods()), a scripted proof
 * sink, and a NATS stand-in with only what the service calls (subscribe, status). The alive and
 * retry timers are set far beyond a test (OPTIONS) so only the test moves things, except in the
 * retry test, which runs the real retry timer. Sends the service starts on its own run in
 * microtasks and are over once the sink has nothing in flight and one macrotask turn has passed (`settle`).
 */

const HOUR = 3_600_000;
const S = 472_222 * HOUR; // 2023-11-14T22:00:00Z, an hour boundary
const NODE = 17;
const FARM = 3;
const subjects = new Subjects();

const u = (p: Partial<Units>): Units => ({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...p });
/** CU 1, SU 0.5 */
const A = u({ cru: 2, mru: 4 * GiB, sru: 100 * GiB, ipv4u: 1 });
/** CU 2, SU 1 */
const B = u({ cru: 4, mru: 8 * GiB, sru: 200 * GiB, ipv4u: 1 });

// ---- the modules ---------------------------------------------------------------------------------

const SEED = new Uint8Array(32).map((_, i) => i + 1);
let signer: Signer;
beforeAll(async () => {
  await cryptoReady();
  signer = signerFromSeed("ed25519", SEED);
});

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "usage-service-test-"));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

type Outcome = "ok" | "duplicate" | "refuse" | "throw";

/** A proof sink answering per a script (a queue of outcomes; "ok" once it is empty), recording every submission. */
class ScriptedSink implements ProofSink {
  plan: Outcome[] = [];
  /** every submission: its sequence and the outcome it got */
  readonly calls: Array<{ sequence: number; outcome: Outcome; envelope: Uint8Array }> = [];
  inFlight = 0;
  /** called inside submitProof, before it answers */
  onSubmit: ((sequence: number, envelope: Uint8Array) => void) | null = null;
  headAnswer: (() => Promise<ChainHead | undefined>) | null = null;
  headAskedFor: number[] = [];

  constructor(plan: Outcome[] = []) {
    this.plan = [...plan];
  }

  /** the twin subtotals sent with each submission, by sequence */
  readonly twinsSent = new Map<number, Uint8Array[]>();
  /** what an accepted ("ok") answer says of twins in debt */
  debt: number[] = [];

  async submitProof(envelope: Uint8Array, twins: Uint8Array[] = []): Promise<{ ok: true; code: string; debts?: Array<{ twinId: number; graceEndMs: number }> } | { ok: false; code: string; message: string }> {
    this.inFlight++;
    try {
      const o = open(envelope, DOMAIN.UsageProof);
      if (!o.ok) throw new Error(`the sink got an envelope that does not open: ${o.refusal.message}`);
      const sequence = decodeProofHeader(o.value.payload).sequence;
      this.onSubmit?.(sequence, envelope);
      const outcome = this.plan.shift() ?? "ok";
      this.calls.push({ sequence, outcome, envelope });
      this.twinsSent.set(sequence, twins);
      switch (outcome) {
        case "ok":
          return { ok: true, code: "ok", debts: this.debt.map((twinId) => ({ twinId, graceEndMs: 0 })) };
        case "duplicate":
          return { ok: true, code: "duplicate" };
        case "refuse":
          return { ok: false, code: "gap", message: "scripted refusal" };
        case "throw":
          throw new Error("chain unavailable (scripted)");
      }
    } finally {
      this.inFlight--;
    }
  }

  sequences(): number[] {
    return this.calls.map((c) => c.sequence);
  }
}

/** A sink with a head() for the head adoption cases. */
class HeadSink extends ScriptedSink {
  async head(nodeId: number): Promise<ChainHead | undefined> {
    this.headAskedFor.push(nodeId);
    return this.headAnswer ? this.headAnswer() : undefined;
  }
}

const OPTIONS: UsageOptions = { nodeId: NODE, farmId: FARM, periodMs: HOUR, aliveMs: 900_000_000, retryMinMs: 900_000_000, retryMaxMs: 900_000_000 };

interface Harness {
  dir: string;
  store: Store;
  clock: { t: number };
  svc: UsageService;
  sink: ScriptedSink | null;
}

const open_: Harness[] = [];
afterEach(() => {
  for (const h of open_.splice(0)) {
    h.svc.close();
    h.store.close();
  }
});

function harness(t0: number, sink: ScriptedSink | null, dir = tmpDir(), options = OPTIONS): Harness {
  const store = Store.open(dir);
  const clock = { t: t0 };
  const svc = new UsageService(options, { bus: new MemoryBus(), subjects, store, signer, logger: silentLogger(), metrics: null, now: () => clock.t, sink });
  const h = { dir, store, clock, svc, sink };
  open_.push(h);
  return h;
}

/** Close a harness now (the agent stops), keeping the directory for a restart. */
function stop(h: Harness): void {
  h.svc.close();
  h.store.close();
  open_.splice(open_.indexOf(h), 1);
}

/** Poll (one macrotask turn at a time) until `cond` holds; fail after a deadline. */
async function until(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** Wait until a send the service started on its own is over (see the header comment). */
async function settle(sink: ScriptedSink): Promise<void> {
  await until(() => sink.inFlight === 0, "the sink to answer");
  await new Promise<void>((r) => setImmediate(r));
}

let nextHash = 0;
function reservation(id: number, units: Units, atMs: number, version = 1, twinId = 7): Reservation {
  return { id, twinId, version, units, hash: `h${nextHash++}`, createdMs: atMs, updatedMs: atMs };
}
const create = (store: Store, id: number, units: Units, atMs: number, version = 1) => store.putDeployment(reservation(id, units, atMs, version), new Uint8Array([1]), "create");
const remove = (store: Store, id: number, units: Units, atMs: number, version = 1) => store.deleteDeployment(reservation(id, units, atMs, version), atMs);

/** A stored proof, decoded (what a proof says is buildProof's, checked in proof-build.test.ts). */
function proofAt(svc: UsageService, sequence: number): { header: ProofHeader; headerBytes: Uint8Array; envelope: Uint8Array; records: UsageRecord[]; state: string } {
  const p = svc.outbox.proof(sequence);
  if (!p) throw new Error(`no proof ${sequence} in the outbox`);
  return { header: decodeProofHeader(p.header), headerBytes: p.header, envelope: p.envelope, records: svc.outbox.records(sequence).map((r) => decodeRecord(r.bytes)), state: p.state };
}

/** [deploymentId, servedMs] of a stored proof's records */
const served = (svc: UsageService, sequence: number): Array<[number, number]> => proofAt(svc, sequence).records.map((r) => [r.deploymentId, r.servedMs]);

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Sequences, contiguity and the hash chain of proofs first..last. */
function expectChain(svc: UsageService, first: number, last: number, previousOfFirst: Uint8Array): void {
  let prevHash = previousOfFirst;
  let prevEnd: number | undefined;
  for (let s = first; s <= last; s++) {
    const { header, headerBytes } = proofAt(svc, s);
    expect(header.sequence).toBe(s);
    expect(header.nodeId).toBe(NODE);
    expect(header.farmId).toBe(FARM);
    expect(hex(header.previousHash)).toBe(hex(prevHash));
    if (prevEnd !== undefined) expect(header.periodStartMs).toBe(prevEnd);
    expect(header.periodEndMs % HOUR).toBe(0);
    expect(header.periodEndMs).toBeGreaterThan(header.periodStartMs);
    prevHash = proofHash(headerBytes);
    prevEnd = header.periodEndMs;
  }
  expect(svc.outbox.proof(last + 1)).toBeUndefined();
}

// ---- 1. first start and the proof chain ---------------------------------------------------------

describe("UsageService: first start and the chain of proofs", () => {
  const cases: Array<[string, number]> = [
    ["start on a boundary", S],
    ["start mid-period", S + 1_234_567],
    ["start two minutes before a boundary", S + HOUR - 120_000],
  ];
  test.each(cases)("%s: head at start, first proof to the next boundary, then aligned, contiguous and hash-chained", async (_name, t0) => {
    const h = harness(t0, null);
    await h.svc.start();
    expect(h.svc.outbox.head()).toEqual({ sequence: 0, periodEndMs: t0, hash: ZERO_HASH });
    expect(h.svc.outbox.proof(1)).toBeUndefined();

    const firstEnd = (Math.floor(t0 / HOUR) + 1) * HOUR;
    h.clock.t = firstEnd - 1;
    expect(h.svc.closeDuePeriods()).toBe(0);
    h.clock.t = firstEnd;
    expect(h.svc.closeDuePeriods()).toBe(1);
    const p1 = proofAt(h.svc, 1).header;
    expect([p1.periodStartMs, p1.periodEndMs, p1.downtimeMs, p1.recordCount]).toEqual([t0, firstEnd, 0, 0]);
    expect(hex(p1.recordsRoot)).toBe(hex(ZERO_HASH));

    h.clock.t = firstEnd + 3 * HOUR + 17;
    expect(h.svc.closeDuePeriods()).toBe(3);
    expect(h.svc.closeDuePeriods()).toBe(0);
    expectChain(h.svc, 1, 4, ZERO_HASH);
    for (let s = 2; s <= 4; s++) {
      const p = proofAt(h.svc, s).header;
      expect([p.periodStartMs, p.periodEndMs, p.downtimeMs]).toEqual([firstEnd + (s - 2) * HOUR, firstEnd + (s - 1) * HOUR, 0]);
    }
    const head = h.svc.outbox.head()!;
    expect(head.sequence).toBe(4);
    expect(head.periodEndMs).toBe(firstEnd + 3 * HOUR);
    expect(hex(head.hash)).toBe(hex(proofHash(proofAt(h.svc, 4).headerBytes)));
  });
});

// ---- 2. metering through the service --------------------------------------------------------------

describe("UsageService: what it meters from", () => {
  test("each proof is buildProof of meterPeriod over the store's reservations and events and the up-time log, stored as built", async () => {
    const t0 = S + 600_000;
    const h = harness(t0, null);
    await h.svc.start();
    // deployment 10 first, then 3 (ids out of order); 10 is created mid-period 1 and deleted mid-period 2
    create(h.store, 10, A, S + 1_800_000);
    create(h.store, 3, B, S + 2_400_000);
    h.clock.t = S + HOUR + 900_000;
    remove(h.store, 10, A, S + HOUR + 900_000);
    h.clock.t = S + 3 * HOUR + 5;
    expect(h.svc.closeDuePeriods()).toBe(3);
    expect(served(h.svc, 1)).toEqual([[3, 1_200_000], [10, 1_800_000]]);
    expect(served(h.svc, 2)).toEqual([[3, HOUR], [10, 900_000]]);
    expect(served(h.svc, 3)).toEqual([[3, HOUR]]);

    let head: ChainHead = { sequence: 0, periodEndMs: t0, hash: ZERO_HASH };
    for (const seq of [1, 2, 3]) {
      const end = proofAt(h.svc, seq).header.periodEndMs;
      const metered = meterPeriod({ periodStartMs: head.periodEndMs, periodEndMs: end, initial: h.store.reservationsAt(head.periodEndMs), events: h.store.reservationEvents(head.periodEndMs, end), uptime: h.svc.uptime.intervals(head.periodEndMs, end) });
      const want = buildProof(head, { nodeId: NODE, farmId: FARM, periodEndMs: end, ...metered }, signer);
      const p = h.svc.outbox.proof(seq)!;
      expect(hex(p.header)).toBe(hex(want.headerBytes));
      expect(hex(p.envelope)).toBe(hex(want.envelope));
      expect(hex(p.hash)).toBe(hex(want.hash));
      expect(h.svc.outbox.records(seq).map((r) => [r.deploymentId, hex(r.bytes)])).toEqual(want.records.map((r) => [r.deploymentId, hex(r.bytes)]));
      head = { sequence: seq, periodEndMs: end, hash: want.hash };
    }
  });

  test("a reservation made before the first start is served from the first start only", async () => {
    const h = harness(S + 600_000, null);
    create(h.store, 4, A, S + 100);
    await h.svc.start();
    h.clock.t = S + HOUR;
    expect(h.svc.closeDuePeriods()).toBe(1);
    expect(served(h.svc, 1)).toEqual([[4, HOUR - 600_000]]);
  });
});

// ---- 3. downtime across a restart -----------------------------------------------------------------

describe("UsageService: downtime between close and the next start", () => {
  /** the part of [a, b) inside [x, y) */
  const overlap = (a: number, b: number, x: number, y: number): number => Math.max(0, Math.min(b, y) - Math.max(a, x));

  const cases: Array<[string, { t1: number; t2: number; t3: number }]> = [
    ["down within one period", { t1: S + HOUR + 600_000, t2: S + HOUR + 2_000_000, t3: S + 3 * HOUR }],
    ["down across one boundary", { t1: S + HOUR + 1_000_000, t2: S + 2 * HOUR + 700_000, t3: S + 3 * HOUR }],
    ["down for several whole periods", { t1: S + HOUR + 1_000_000, t2: S + 4 * HOUR + 500_000, t3: S + 5 * HOUR + 10 }],
    ["stopped exactly on a boundary, started exactly on a later one", { t1: S + 2 * HOUR, t2: S + 5 * HOUR, t3: S + 6 * HOUR }],
  ];

  test.each(cases)("%s: whole periods state the full period as downtime and bill nothing; partial ones state the exact downtime; sequences go on", async (_name, { t1, t2, t3 }) => {
    const t0 = S + 600_000;
    const first = harness(t0, null);
    await first.svc.start();
    create(first.store, 5, A, S + 700_000); // reserved from before period 1 ends, never deleted
    first.clock.t = t1;
    first.svc.closeDuePeriods();
    const before = first.svc.outbox.head()!;
    stop(first); // marks the agent alive until t1

    const second = harness(t2, null, first.dir);
    await second.svc.start(); // closes every period that ended while the agent was down
    second.clock.t = t3;
    second.svc.closeDuePeriods();
    const last = second.svc.outbox.head()!.sequence;
    expect(second.svc.outbox.head()!.periodEndMs).toBe(Math.floor(t3 / HOUR) * HOUR);
    expectChain(second.svc, 1, last, ZERO_HASH);
    expect(before.sequence).toBeLessThan(last);

    const reserved = (a: number, b: number): number => b - Math.max(a, S + 700_000);
    let wholeDown = 0;
    for (let s = 1; s <= last; s++) {
      const { header, records } = proofAt(second.svc, s);
      const { periodStartMs: a, periodEndMs: b } = header;
      const down = overlap(a, b, t1, t2);
      expect({ s, downtimeMs: header.downtimeMs }).toEqual({ s, downtimeMs: down });
      const billed = reserved(a, b) - down;
      if (billed > 0) {
        expect(records.map((r) => [r.deploymentId, r.servedMs])).toEqual([[5, billed]]);
      } else {
        expect(records).toEqual([]);
        expect(header.totals).toEqual(zeroAmounts());
      }
      if (down === HOUR) wholeDown++;
    }
    // the periods fully inside (t1, t2)
    const expectedWhole = Math.max(0, Math.floor(t2 / HOUR) - Math.ceil(t1 / HOUR));
    expect(wholeDown).toBe(expectedWhole);
  });

})

// ---- 4 and 5. the outbox and delivery ---------------------------------------------------------------

describe("UsageService: outbox delivery", () => {
  interface DeliveryCase {
    /** outcomes of the first round (3 proofs built at once; the service sends on its own) */
    plan: Outcome[];
    /** sequences the sink saw in the first round */
    sent: number[];
    pendingAfter: number;
    /** lastCode of proofs 1..3 after the first round (null: never tried) */
    codes: Array<string | null>;
  }
  const cases: Array<[string, DeliveryCase]> = [
    ["all ok", { plan: [], sent: [1, 2, 3], pendingAfter: 0, codes: ["ok", "ok", "ok"] }],
    ["duplicate counts as delivered", { plan: ["duplicate", "ok", "duplicate"], sent: [1, 2, 3], pendingAfter: 0, codes: ["duplicate", "ok", "duplicate"] }],
    ["chain unavailable at the second", { plan: ["ok", "throw"], sent: [1, 2], pendingAfter: 2, codes: ["ok", "chain_unavailable", null] }],
    ["chain unavailable at once", { plan: ["throw"], sent: [1], pendingAfter: 3, codes: ["chain_unavailable", null, null] }],
    ["refused at the third", { plan: ["ok", "ok", "refuse"], sent: [1, 2, 3], pendingAfter: 1, codes: ["ok", "ok", "gap"] }],
    ["refused at the first", { plan: ["refuse"], sent: [1], pendingAfter: 3, codes: ["gap", null, null] }],
  ];

  test.each(cases)("%s", async (_name, c) => {
    const sink = new ScriptedSink(c.plan);
    const h = harness(S + 600_000, sink);
    await h.svc.start();
    await settle(sink);
    expect(sink.calls).toEqual([]); // nothing to send yet
    h.clock.t = S + 3 * HOUR + 1;
    expect(h.svc.closeDuePeriods()).toBe(3);
    await settle(sink);
    expect(sink.sequences()).toEqual(c.sent);
    expect(h.svc.outbox.pendingCount()).toBe(c.pendingAfter);
    expect([1, 2, 3].map((s) => h.svc.outbox.proof(s)!.lastCode)).toEqual(c.codes);
    expect([1, 2, 3].map((s) => h.svc.outbox.proof(s)!.attempts)).toEqual(c.codes.map((x) => (x === null ? 0 : 1)));
    const firstPending = h.svc.outbox.nextPending()?.sequence;

    // the chain is back and takes everything: the first pending proof goes first, then the rest in order
    await h.svc.send();
    const later = sink.sequences().slice(c.sent.length);
    expect(later).toEqual(firstPending === undefined ? [] : Array.from({ length: 3 - firstPending + 1 }, (_, i) => firstPending + i));
    expect(h.svc.outbox.pendingCount()).toBe(0);

    // nothing is sent twice once delivered
    await h.svc.send();
    expect(sink.sequences().length).toBe(c.sent.length + later.length);
    const deliveredAt = new Map<number, number>();
    sink.calls.forEach((call, i) => {
      expect(deliveredAt.has(call.sequence)).toBe(false);
      if (call.outcome === "ok" || call.outcome === "duplicate") deliveredAt.set(call.sequence, i);
    });
    expect([...deliveredAt.keys()].sort()).toEqual([1, 2, 3]);
    // every submission of a sequence carried the same bytes as the outbox holds
    for (const call of sink.calls) expect(hex(call.envelope)).toBe(hex(h.svc.outbox.proof(call.sequence)!.envelope));
    for (const s of [1, 2, 3]) expect(h.svc.outbox.proof(s)!.state).toBe("delivered");
  });

  test("billing: each proof commits to its twin subtotals and is sent with them; the chain's twins in debt reach the callback and status", async () => {
    const sink = new ScriptedSink();
    const debtSeen: Array<readonly number[]> = [];
    const dir = tmpDir();
    const store = Store.open(dir);
    const clock = { t: S + 600_000 };
    const svc = new UsageService(OPTIONS, { bus: new MemoryBus(), subjects, store, signer, logger: silentLogger(), metrics: null, now: () => clock.t, sink, onTwinsInDebt: (ids) => debtSeen.push(ids) });
    await svc.start();
    store.putDeployment({ ...reservation(1, A, S + 700_000, 1), twinId: 9 }, new Uint8Array([1]), "create");
    create(store, 2, B, S + 700_000);
    sink.debt = [9];
    clock.t = S + 2 * HOUR + 1;
    expect(svc.closeDuePeriods()).toBe(2);
    await settle(sink);
    for (const seq of [1, 2]) {
      const p = proofAt(svc, seq);
      const twins = sink.twinsSent.get(seq)!;
      expect(twins.map((t) => decodeTwinSubtotal(t).twinId)).toEqual([7, 9]);
      expect(hex(twinsTree(twins).root)).toBe(hex(p.header.twinsRoot!));
      expect(p.header.twinCount).toBe(2);
      expect(twins.map(decodeTwinSubtotal).reduce((a, t) => addAmounts(a, t.amounts), zeroAmounts())).toEqual(p.header.totals);
    }
    expect(debtSeen.at(-1)).toEqual([9]);
    expect(svc.status().twinsInGrace).toEqual([9]);
    // funded: the next accepted proof names nobody
    sink.debt = [];
    clock.t = S + 3 * HOUR + 1;
    expect(svc.closeDuePeriods()).toBe(1);
    await settle(sink);
    expect(svc.status().twinsInGrace).toEqual([]);
    await svc.close();
    store.close();
  });

  test("a thrown error and a refusal leave proofs pending; later sends resume in sequence order; pendingCount follows", async () => {
    const sink = new ScriptedSink(["ok", "throw"]);
    const h = harness(S + 600_000, sink);
    await h.svc.start();
    h.clock.t = S + 2 * HOUR;
    expect(h.svc.closeDuePeriods()).toBe(2); // proofs 1, 2
    await settle(sink);
    expect(sink.sequences()).toEqual([1, 2]);
    expect(h.svc.outbox.pendingCount()).toBe(1);
    expect(h.svc.outbox.proof(2)).toMatchObject({ state: "pending", attempts: 1, lastCode: "chain_unavailable" });

    // still away: retried, still pending
    sink.plan = ["throw"];
    await h.svc.send();
    expect(sink.sequences()).toEqual([1, 2, 2]);
    expect(h.svc.outbox.proof(2)).toMatchObject({ state: "pending", attempts: 2 });

    // a new proof is built while 2 is pending: 2 is still sent first; it is refused, so 3 is not sent
    sink.plan = ["refuse"];
    h.clock.t = S + 3 * HOUR;
    expect(h.svc.closeDuePeriods()).toBe(1);
    await settle(sink);
    expect(sink.sequences()).toEqual([1, 2, 2, 2]);
    expect(h.svc.outbox.pendingCount()).toBe(2);
    expect(h.svc.outbox.proof(2)).toMatchObject({ state: "pending", attempts: 3, lastCode: "gap" });
    expect(h.svc.outbox.proof(3)).toMatchObject({ state: "pending", attempts: 0, lastCode: null });

    // the chain says it has 2 already (duplicate), then takes 3
    sink.plan = ["duplicate", "ok"];
    await h.svc.send();
    expect(sink.sequences()).toEqual([1, 2, 2, 2, 2, 3]);
    expect(h.svc.outbox.pendingCount()).toBe(0);
    expect(h.svc.outbox.proof(2)).toMatchObject({ state: "delivered", attempts: 4, lastCode: "duplicate" });
    expect(h.svc.outbox.proof(3)).toMatchObject({ state: "delivered", attempts: 1, lastCode: "ok" });
    await h.svc.send();
    expect(sink.calls.length).toBe(6);
  });

  test("the retry timer sends again on its own, backing off, until the chain takes the proof; then the next one goes", async () => {
    const sink = new ScriptedSink(["throw", "refuse", "throw"]);
    const sentAt: number[] = [];
    sink.onSubmit = () => sentAt.push(performance.now());
    const h = harness(S + 600_000, sink, tmpDir(), { ...OPTIONS, retryMinMs: 40, retryMaxMs: 160 });
    await h.svc.start();
    h.clock.t = S + 2 * HOUR;
    expect(h.svc.closeDuePeriods()).toBe(2);
    await until(() => h.svc.outbox.pendingCount() === 0, "the retries to deliver both proofs");
    expect(sink.sequences()).toEqual([1, 1, 1, 1, 2]);
    expect(h.svc.outbox.proof(1)).toMatchObject({ state: "delivered", attempts: 4, lastCode: "ok" });
    // backoff 40, 80, 160 ms (each +-20% jitter): the gaps grow
    const gaps = sentAt.slice(1, 4).map((t, i) => t - sentAt[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(40 * 0.8 - 5);
    expect(gaps[2]).toBeGreaterThan(gaps[0]);
  });

  test("pending proofs survive a restart and are sent first, in order, by the next start", async () => {
    const sink = new ScriptedSink(["throw"]);
    const first = harness(S + 600_000, sink);
    await first.svc.start();
    first.clock.t = S + 2 * HOUR + 100;
    first.svc.closeDuePeriods();
    await settle(sink);
    expect(first.svc.outbox.pendingCount()).toBe(2);
    stop(first);

    const sink2 = new ScriptedSink();
    const second = harness(S + 3 * HOUR + 600_000, sink2, first.dir);
    await second.svc.start(); // builds proof 3, sends 1, 2, 3
    await settle(sink2);
    expect(sink2.sequences()).toEqual([1, 2, 3]);
    expect(second.svc.outbox.pendingCount()).toBe(0);
  });

  test("a proof is in the outbox, pending, before the sink ever sees it", async () => {
    const sink = new ScriptedSink(["ok", "throw"]);
    const h = harness(S + 600_000, sink);
    const seen: Array<{ sequence: number; inOutbox: boolean; state: string | undefined; sameBytes: boolean; head: number | undefined }> = [];
    sink.onSubmit = (sequence, envelope) => {
      const p = h.svc.outbox.proof(sequence);
      seen.push({ sequence, inOutbox: p !== undefined, state: p?.state, sameBytes: p !== undefined && hex(p.envelope) === hex(envelope), head: h.svc.outbox.head()?.sequence });
    };
    await h.svc.start();
    h.clock.t = S + 2 * HOUR;
    h.svc.closeDuePeriods();
    await settle(sink);
    sink.plan = [];
    await h.svc.send();
    h.clock.t = S + 3 * HOUR;
    h.svc.closeDuePeriods();
    await settle(sink);
    expect(seen.map((x) => x.sequence)).toEqual([1, 2, 2, 3]);
    for (const x of seen) {
      expect(x).toMatchObject({ inOutbox: true, state: "pending", sameBytes: true });
      expect(x.head).toBeGreaterThanOrEqual(x.sequence);
    }
  });
});

// ---- 6. audit -------------------------------------------------------------------------------------

interface WireAuditReply {
  found: boolean;
  rejection: { code: string; message: string } | null;
  proof: Uint8Array;
}

function auditReply(reply: Uint8Array): WireAuditReply {
  const o = open(reply, DOMAIN.UsageAuditReply);
  if (!o.ok) throw new Error(`the audit reply does not open: ${o.refusal.message}`);
  expect(hex(o.value.signer)).toBe(hex(signer.publicKey));
  return decode("UsageAuditReply", o.value.payload);
}

const auditRequest = (deploymentId: number): Uint8Array => encode("UsageAuditRequest", { deploymentId });

describe("UsageService: audit", () => {
  /** a proof 1 with n records (ids 100, 107, 114, ... created at different times, alternating units) */
  async function withRecords(n: number): Promise<{ h: Harness; ids: number[] }> {
    const h = harness(S + 60_000, null);
    await h.svc.start();
    const ids = Array.from({ length: n }, (_, i) => 100 + 7 * (n - 1 - i)); // created in descending id order
    ids.forEach((id, i) => create(h.store, id, i % 2 ? A : B, S + 120_000 + i * 1_000));
    h.clock.t = S + HOUR;
    expect(h.svc.closeDuePeriods()).toBe(1);
    return { h, ids };
  }

  test.each([1, 5])("a proof with %i record(s): every record holds against the proof, with the node's key", async (n) => {
    const { h, ids } = await withRecords(n);
    const { envelope, records } = proofAt(h.svc, 1);
    expect(records.map((r) => r.deploymentId)).toEqual([...ids].sort((a, b) => a - b));
    for (const [i, r] of records.entries()) {
      const reply = h.svc.audit(subjects.nodeUsage(NODE, 1), auditRequest(r.deploymentId));
      const result = checkAudit({ sequence: 1, deploymentId: r.deploymentId, chainProof: envelope, nodeKey: signer.publicKey, reply });
      expect({ i, code: result.code }).toEqual({ i, code: "holds" });
      expect(result.record).toEqual(r);
    }
    // a deployment that is not in the proof
    const reply = h.svc.audit(subjects.nodeUsage(NODE, 1), auditRequest(99));
    expect(checkAudit({ sequence: 1, deploymentId: 99, chainProof: envelope, nodeKey: signer.publicKey, reply }).code).toBe("not_found");
    const w = auditReply(reply);
    expect(w.found).toBe(false);
    expect(w.rejection?.code).toBe("not_found");
    expect(hex(w.proof)).toBe(hex(envelope));
  });

  test("records of later proofs hold too (sequence 3, after a deployment left)", async () => {
    const h = harness(S + 60_000, null);
    await h.svc.start();
    create(h.store, 1, A, S + 120_000);
    create(h.store, 2, B, S + 180_000);
    create(h.store, 3, A, S + 240_000);
    remove(h.store, 2, B, S + HOUR + 100);
    h.clock.t = S + 3 * HOUR;
    expect(h.svc.closeDuePeriods()).toBe(3);
    const { envelope, records } = proofAt(h.svc, 3);
    expect(records.map((r) => r.deploymentId)).toEqual([1, 3]);
    for (const r of records) {
      const reply = h.svc.audit(subjects.nodeUsage(NODE, 3), auditRequest(r.deploymentId));
      expect(checkAudit({ sequence: 3, deploymentId: r.deploymentId, chainProof: envelope, nodeKey: signer.publicKey, reply }).code).toBe("holds");
    }
    // deployment 2's record in proof 3 does not exist; against proof 2 it holds
    expect(auditReply(h.svc.audit(subjects.nodeUsage(NODE, 3), auditRequest(2))).rejection?.code).toBe("not_found");
    const reply2 = h.svc.audit(subjects.nodeUsage(NODE, 2), auditRequest(2));
    expect(checkAudit({ sequence: 2, deploymentId: 2, chainProof: proofAt(h.svc, 2).envelope, nodeKey: signer.publicKey, reply: reply2 }).code).toBe("holds");
  });

  const rejections: Array<[string, string, string, Uint8Array]> = [
    ["a token that is not a number", "abc", "malformed", auditRequest(100)],
    ["sequence 0", "0", "malformed", auditRequest(100)],
    ["a leading zero", "01", "malformed", auditRequest(100)],
    ["a negative number", "-1", "malformed", auditRequest(100)],
    ["a truncated request body", "1", "malformed", new Uint8Array([0x08, 0xff])],
    ["a request body that is not protobuf", "1", "malformed", new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])],
    ["a deployment id beyond 2^53", "1", "malformed", encode("UsageAuditRequest", { deploymentId: "18446744073709551615" })],
    ["a request body over 64 bytes", "1", "too_large", new Uint8Array(65)],
    ["an unknown sequence", "2", "not_found", auditRequest(100)],
    ["a sequence far beyond any proof", "9007199254740991", "not_found", auditRequest(100)],
  ];
  test.each(rejections)("%s (token %p) -> %s", async (_name, token, code, body) => {
    const { h } = await withRecords(1);
    const w = auditReply(h.svc.audit(`${subjects.prefix}.node.${NODE}.usage.${token}`, body));
    expect(w.found).toBe(false);
    expect(w.rejection?.code).toBe(code);
    expect(w.rejection?.message).toBeTruthy();
  });

  const listRequest = (startIndex: number, maxRecords: number): Uint8Array => encode("UsageAuditRequest", { listRecords: true, startIndex, maxRecords });
  function listPage(reply: Uint8Array): { found: boolean; rejection: { code: string } | null; recordCount: number; startIndex: number; records: Uint8Array[]; nextIndex: number } {
    const o = open(reply, DOMAIN.UsageRecordsReply);
    if (!o.ok) throw new Error(`the listing page does not open: ${o.refusal.message}`);
    expect(hex(o.value.signer)).toBe(hex(signer.publicKey));
    return decode("UsageRecordsReply", o.value.payload);
  }

  test.each([1, 3, 7])("the listing in pages of %i holds the proof's records in leaf order and passes the completeness audit", async (size) => {
    const { h } = await withRecords(7);
    const { envelope, records } = proofAt(h.svc, 1);
    const pages: Uint8Array[] = [];
    for (let start = 0; ; ) {
      pages.push(h.svc.audit(subjects.nodeUsage(NODE, 1), listRequest(start, size)));
      const p = listPage(pages[pages.length - 1]);
      expect(p).toMatchObject({ found: true, recordCount: 7, startIndex: start, nextIndex: Math.min(7, start + size) });
      if (p.nextIndex >= p.recordCount) break;
      start = p.nextIndex;
    }
    expect(pages).toHaveLength(Math.ceil(7 / size));
    const result = checkListing({ sequence: 1, chainProof: envelope, nodeKey: signer.publicKey, pages });
    expect(result.code).toBe("holds");
    expect(result.records!.map((r) => r.record)).toEqual(records);
  });

  test("listing: no size means the default page; a start at the end gives an empty page; a start past the end and an unknown proof are refused", async () => {
    const { h } = await withRecords(3);
    expect(listPage(h.svc.audit(subjects.nodeUsage(NODE, 1), listRequest(0, 0))).records).toHaveLength(3);
    expect(listPage(h.svc.audit(subjects.nodeUsage(NODE, 1), listRequest(3, 5))).records).toHaveLength(0);
    expect(listPage(h.svc.audit(subjects.nodeUsage(NODE, 1), listRequest(4, 5))).rejection?.code).toBe("malformed");
    expect(listPage(h.svc.audit(subjects.nodeUsage(NODE, 2), listRequest(0, 5))).rejection?.code).toBe("not_found");
  });
});

// ---- 7. head adoption -----------------------------------------------------------------------------

describe("UsageService: the first start with a fresh store asks the chain for its head", () => {
  const H = new Uint8Array(32).fill(0xab);
  const X = S + 2 * HOUR;
  interface HeadCase {
    head: () => Promise<ChainHead | undefined>;
    startAt: number;
    /** what the first proof must be */
    sequence: number;
    periodStartMs: number;
    previousHash: Uint8Array;
    downtimeMs: number;
  }
  const cases: Array<[string, HeadCase]> = [
    ["the chain knows proof 41 ending at X", { head: async () => ({ sequence: 41, periodEndMs: X, hash: H }), startAt: X + 500_000, sequence: 42, periodStartMs: X, previousHash: H, downtimeMs: 500_000 }],
    ["the chain's head ends mid-period", { head: async () => ({ sequence: 41, periodEndMs: X + 1_000, hash: H }), startAt: X + 500_000, sequence: 42, periodStartMs: X + 1_000, previousHash: H, downtimeMs: 499_000 }],
    ["the chain knows no proof of the node", { head: async () => undefined, startAt: X + 500_000, sequence: 1, periodStartMs: X + 500_000, previousHash: ZERO_HASH, downtimeMs: 0 }],
    ["the chain's head is sequence 0", { head: async () => ({ sequence: 0, periodEndMs: X - 5 * HOUR, hash: H }), startAt: X + 500_000, sequence: 1, periodStartMs: X + 500_000, previousHash: ZERO_HASH, downtimeMs: 0 }],
    [
      "the chain does not answer",
      {
        head: async () => {
          throw new Error("no chain");
        },
        startAt: X + 500_000,
        sequence: 1,
        periodStartMs: X + 500_000,
        previousHash: ZERO_HASH,
        downtimeMs: 0,
      },
    ],
  ];

  test.each(cases)("%s", async (_name, c) => {
    const sink = new HeadSink(["throw"]); // keep the proof pending; delivery is not under test here
    sink.headAnswer = c.head;
    const h = harness(c.startAt, sink);
    await h.svc.start();
    expect(sink.headAskedFor).toEqual([NODE]);
    h.clock.t = X + HOUR + 1;
    expect(h.svc.closeDuePeriods()).toBe(1);
    await settle(sink);
    const { header } = proofAt(h.svc, c.sequence);
    expect(header.sequence).toBe(c.sequence);
    expect(header.periodStartMs).toBe(c.periodStartMs);
    expect(header.periodEndMs).toBe(X + HOUR);
    expect(hex(header.previousHash)).toBe(hex(c.previousHash));
    expect(header.downtimeMs).toBe(c.downtimeMs);
    expect(sink.sequences()).toEqual([c.sequence]);
  });

  test("a store that has a head does not ask the chain again", async () => {
    const first = harness(S + 600_000, null);
    await first.svc.start();
    stop(first);
    const sink = new HeadSink();
    sink.headAnswer = async () => ({ sequence: 41, periodEndMs: S, hash: H });
    const second = harness(S + 900_000, sink, first.dir);
    await second.svc.start();
    expect(sink.headAskedFor).toEqual([]);
    expect(second.svc.outbox.head()).toEqual({ sequence: 0, periodEndMs: S + 600_000, hash: ZERO_HASH });
  });
});

// ---- 8. a clock that steps back ---------------------------------------------------------------------

describe("UsageService: its clock stepped back (the store keeps event times from going back: store.test.ts)", () => {
  test("the service's own clock stepping back builds nothing and breaks nothing; going forward again closes the periods", async () => {
    const h = harness(S + 60_000, null);
    await h.svc.start();
    h.clock.t = S + 2 * HOUR;
    expect(h.svc.closeDuePeriods()).toBe(2);
    h.clock.t = S + HOUR - 5_000;
    expect(h.svc.closeDuePeriods()).toBe(0);
    create(h.store, 5, A, h.clock.t);
    h.clock.t = S + 3 * HOUR;
    expect(h.svc.closeDuePeriods()).toBe(1);
    expectChain(h.svc, 1, 3, ZERO_HASH);
  });
});
