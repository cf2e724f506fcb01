/**
 * The announcer and its sequence numbers: a real store on disk, real keys, real timers, a
 * capacity source and a publisher implemented in the test (interfaces, not module mocks). Every
 * wait polls for a condition with a deadline.
 */
import { EventEmitter } from "node:events";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Subjects } from "../../agent/bus/subjects";
import { capacityOf, DEFAULT_POLICY } from "../../agent/capacity/model";
import { GiB, subUnits, zeroUnits, type Units } from "../../agent/capacity/units";
import { Announcer, type CapacitySource, type Timers } from "../../agent/gossip/announcer";
import { clockFloor, SequenceSource, SEQUENCE_COUNTER } from "../../agent/gossip/sequence";
import { checkOrigin, readAnnouncement } from "../../agent/gossip/view";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { Store } from "../../agent/store/store";

const dirs: string[] = [];
function store(): Store {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "gossip-seq-"));
  dirs.push(d);
  return Store.open(d);
}
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("SequenceSource: only grows, across restarts, one durable write per block", () => {
  const T = 1_700_000_000_000;

  test("numbers grow by one; the store always holds the end of the block in use", () => {
    const s = store();
    const seq = new SequenceSource(s, 10, T);
    const got = Array.from({ length: 25 }, () => seq.take());
    expect(got[0]).toBe(clockFloor(T) + 1);
    expect(got.every((v, i) => i === 0 || v === got[i - 1] + 1)).toBe(true);
    expect(s.counter(SEQUENCE_COUNTER)).toBeGreaterThanOrEqual(got[24]);
    expect(s.counter(SEQUENCE_COUNTER)).toBe(clockFloor(T) + 30);
    s.close();
  });

  test.each([
    ["a restart at the same clock", 0],
    ["a restart with the clock gone back an hour", -3_600_000],
    ["a restart a day later", 86_400_000],
  ])("%s never reuses a number", (_n, clockShift) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "gossip-seq-"));
    dirs.push(d);
    let s = Store.open(d);
    const first = new SequenceSource(s, 100, T);
    const used = Array.from({ length: 150 }, () => first.take());
    s.close(); // "crash": whatever was not taken from the block is skipped
    s = Store.open(d);
    const second = new SequenceSource(s, 100, T + clockShift);
    expect(second.take()).toBeGreaterThan(Math.max(...used));
    s.close();
  });

  test("a wiped store still starts above the old numbers, from the clock", () => {
    const old = new SequenceSource(store(), 1000, T);
    let last = 0;
    for (let i = 0; i < 5000; i++) last = old.take();
    const fresh = new SequenceSource(store(), 1000, T + 60_000);
    expect(fresh.take()).toBeGreaterThan(last);
  });
});

/** A capacity source the test drives: the Ledger's read side and its change events. */
class TestSource implements CapacitySource {
  private readonly ev = new EventEmitter();
  usedUnits: Units = zeroUnits();
  private readonly cap = capacityOf({ cru: 8, mru: 32 * GiB, sru: 500 * GiB, hru: 0, ipv4u: 2, gpu: 0 }, DEFAULT_POLICY);
  count = 0;
  capacity() {
    return this.cap;
  }
  used() {
    return this.usedUnits;
  }
  free() {
    return subUnits(this.cap.reservable, this.usedUnits);
  }
  deployments() {
    return new Array(this.count);
  }
  powerState() {
    return "up" as const;
  }
  state() {
    return { rented: false };
  }
  onChange(fn: () => void) {
    this.ev.on("change", fn);
    return () => this.ev.off("change", fn);
  }
  change(): void {
    this.count++;
    this.usedUnits = { ...this.usedUnits, cru: this.usedUnits.cru + 1 };
    this.ev.emit("change");
  }
}

describe("Announcer", () => {
  let signer: Signer;
  beforeAll(async () => {
    await cryptoReady();
    signer = signerFromSeed("ed25519", crypto.randomBytes(32));
  });

  function make(heartbeatMs: number) {
    const source = new TestSource();
    const sent: Array<{ subject: string; data: Uint8Array }> = [];
    const a = new Announcer(
      { nodeId: 5, farmId: 2, twinId: 5, heartbeatMs, debounceMs: 75, sequenceBlock: 1000 },
      { source, bus: { publish: (subject, data) => sent.push({ subject, data }) }, subjects: new Subjects(), signer, store: store(), logger: silentLogger(), metrics: null, now: Date.now },
    );
    const read = (i: number) => {
      const r = readAnnouncement(sent[i].data, 4096);
      if (!r.ok) throw new Error(r.refusal.reason);
      expect(checkOrigin(r.value, { id: 5, farmId: 2, twinId: 5, publicKey: signer.publicKey, scheme: "ed25519" })).toBeNull();
      return r.value.announcement;
    };
    return { source, sent, a, read };
  }

  test("publishes on start, signed, on its own subject, with what the node has", () => {
    const { sent, a, read, source } = make(60_000);
    a.start();
    try {
      expect(sent).toHaveLength(1);
      expect(sent[0].subject).toBe("tfgrid.v1.capacity.2.5");
      expect(read(0)).toMatchObject({ nodeId: 5, farmId: 2, twinId: 5, heartbeatMs: 60_000, power: "up", free: source.free(), reservable: source.capacity().reservable, deployments: 0 });
    } finally {
      a.close();
    }
  });

  test("a burst of 50 changes is one message, with the state after the burst", async () => {
    const { sent, a, read, source } = make(60_000);
    a.start();
    try {
      for (let i = 0; i < 50; i++) source.change();
      expect(a.changePending).toBe(true);
      await until(() => sent.length >= 2);
      expect(sent).toHaveLength(2);
      expect(a.changePending).toBe(false); // nothing else is scheduled but the heartbeat, a minute away
      expect(read(1)).toMatchObject({ deployments: 50, used: { cru: 50 } });
      expect(read(1).sequence).toBeGreaterThan(read(0).sequence);
    } finally {
      a.close();
    }
  });

  test("heartbeats keep coming with fresh sequence numbers and timestamps; current() is stable until a change", async () => {
    const { sent, a, read, source } = make(100);
    a.start();
    try {
      await until(() => sent.length >= 4);
      const seqs = [0, 1, 2, 3].map((i) => read(i).sequence);
      expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
      expect(new Set(seqs).size).toBe(4);
      const c1 = a.current();
      expect(a.current()).toBe(c1);
      source.change();
      expect(a.current().announcement.sequence).toBeGreaterThan(c1.announcement.sequence);
    } finally {
      a.close();
    }
    const n = sent.length;
    await new Promise((r) => setTimeout(r, 250));
    expect(sent.length).toBe(n); // closed: no more heartbeats
  });
});

/**
 * A virtual clock: `soon` runs at the current instant, `after` at now + ms, in order, when the test
 * advances time. The announcer's decisions (when to publish) are checked without real waiting.
 */
class VirtualTimers implements Timers {
  t = 0;
  private seq = 0;
  private queue: Array<{ at: number; seq: number; fn: () => void; live: boolean }> = [];
  private add(at: number, fn: () => void) {
    const e = { at, seq: this.seq++, fn, live: true };
    this.queue.push(e);
    return { cancel: () => void (e.live = false) };
  }
  after(ms: number, fn: () => void) {
    return this.add(this.t + ms, fn);
  }
  soon(fn: () => void) {
    return this.add(this.t, fn);
  }
  /** run everything due up to `to`, in time order */
  advanceTo(to: number): void {
    for (;;) {
      const due = this.queue.filter((e) => e.live && e.at <= to).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.t = due.at;
      due.live = false;
      due.fn();
    }
    this.queue = this.queue.filter((e) => e.live);
    this.t = to;
  }
}

describe("Announcer on the leading edge (virtual clock)", () => {
  let signer: Signer;
  beforeAll(async () => {
    await cryptoReady();
    signer = signerFromSeed("ed25519", crypto.randomBytes(32));
  });

  function make(debounceMs = 75) {
    const clock = new VirtualTimers();
    const source = new TestSource();
    const sent: Array<{ at: number; data: Uint8Array }> = [];
    const a = new Announcer(
      { nodeId: 5, farmId: 2, twinId: 5, heartbeatMs: 3_600_000, debounceMs, sequenceBlock: 1000 },
      { source, bus: { publish: (_s, data) => sent.push({ at: clock.t, data }) }, subjects: new Subjects(), signer, store: store(), logger: silentLogger(), metrics: null, now: () => 1_700_000_000_000 + clock.t, timers: clock },
    );
    const read = (i: number) => {
      const r = readAnnouncement(sent[i].data, 4096);
      if (!r.ok) throw new Error(r.refusal.reason);
      return r.value.announcement;
    };
    a.start();
    sent.length = 0; // the start announcement is not what these tests look at
    return { clock, source, sent, a, read };
  }

  test("the first change after a quiet period goes out at once, not after the window", () => {
    const { clock, source, sent, a, read } = make();
    clock.advanceTo(10_000);
    source.change();
    expect(a.changePending).toBe(true);
    clock.advanceTo(10_000); // the next turn of the event loop, no time passed
    expect(sent).toHaveLength(1);
    expect(sent[0].at).toBe(10_000);
    expect(read(0)).toMatchObject({ deployments: 1 });
    expect(a.changePending).toBe(false);
    clock.advanceTo(20_000); // the window ends with nothing in it: no trailing message
    expect(sent).toHaveLength(1);
    a.close();
  });

  test("changes inside the window are one trailing message at its end, with the latest state", () => {
    const { clock, source, sent, a, read } = make(75);
    clock.advanceTo(1000);
    source.change();
    clock.advanceTo(1000);
    clock.advanceTo(1010);
    source.change();
    clock.advanceTo(1040);
    source.change();
    source.change();
    expect(sent).toHaveLength(1);
    expect(a.changePending).toBe(true);
    clock.advanceTo(1074);
    expect(sent).toHaveLength(1);
    clock.advanceTo(1075);
    expect(sent).toHaveLength(2);
    expect(sent[1].at).toBe(1075);
    expect(read(1)).toMatchObject({ deployments: 4 });
    expect(read(1).sequence).toBeGreaterThan(read(0).sequence);
    // quiet for a whole window after the trailing message: the next change is immediate again
    clock.advanceTo(1075 + 75);
    expect(sent).toHaveLength(2);
    clock.advanceTo(2000);
    source.change();
    clock.advanceTo(2000);
    expect(sent).toHaveLength(3);
    expect(sent[2].at).toBe(2000);
    a.close();
  });

  test("1,000 changes spread over one second are at most 1 + 1000/75 messages, none later than the window", () => {
    const { clock, source, sent, a, read } = make(75);
    const changedAt: number[] = [];
    for (let i = 0; i < 1000; i++) {
      clock.advanceTo(5000 + i); // one change per ms
      source.change();
      changedAt.push(clock.t);
    }
    clock.advanceTo(7000);
    expect(sent.length).toBeLessThanOrEqual(1 + Math.ceil(1000 / 75));
    expect(sent.length).toBeGreaterThanOrEqual(1000 / 75);
    // every change is on the wire within the window: the first message at or after it carries it
    for (let i = 0; i < 1000; i++) {
      const carrier = sent.find((m) => m.at >= changedAt[i]);
      expect(carrier).toBeDefined();
      expect(carrier!.at - changedAt[i]).toBeLessThanOrEqual(75);
    }
    expect(read(sent.length - 1)).toMatchObject({ deployments: 1000 });
    a.close();
  });

  test("a heartbeat inside the window carries the pending change: no extra trailing message", () => {
    const { clock, source, sent, a, read } = make(75);
    clock.advanceTo(100);
    source.change();
    clock.advanceTo(100);
    clock.advanceTo(110);
    source.change();
    a.publish("reconnect");
    expect(sent).toHaveLength(2);
    expect(read(1)).toMatchObject({ deployments: 2 });
    expect(a.changePending).toBe(false);
    clock.advanceTo(1000);
    expect(sent).toHaveLength(2);
    a.close();
  });

  test("close cancels a queued change", () => {
    const { clock, source, sent, a } = make(75);
    source.change();
    a.close();
    clock.advanceTo(1000);
    expect(sent).toHaveLength(0);
  });
});
