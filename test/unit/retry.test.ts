import { RetryTimer } from "../../agent/util/retry";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("RetryTimer: jittered exponential backoff, one retry pending at a time", () => {
  test("each failure doubles the delay up to maxMs; jitter stays within its band", async () => {
    const delays: number[] = [];
    let t: RetryTimer;
    const done = new Promise<void>((resolve) => {
      // every run fails again: it schedules the next retry, as the chain link and the usage sender do
      t = new RetryTimer({ minMs: 2, maxMs: 16, random: () => 0.5 }, () => {
        if (delays.length === 6) return resolve();
        delays.push(t.schedule()!);
        expect(t.schedule()).toBeUndefined(); // one pending retry at a time
      });
      delays.push(t.schedule()!);
    });
    await done;
    expect(delays).toEqual([2, 4, 8, 16, 16, 16]);
    const low = new RetryTimer({ minMs: 100, maxMs: 1000, random: () => 0 }, () => undefined);
    const high = new RetryTimer({ minMs: 100, maxMs: 1000, random: () => 0.999999 }, () => undefined);
    expect(low.schedule()).toBe(80);
    expect(high.schedule()).toBe(120);
    low.close();
    high.close();
  });

  test("runs once per schedule, after the delay; reset brings the next delay back to minMs", async () => {
    let runs = 0;
    const t = new RetryTimer({ minMs: 20, maxMs: 200, jitter: 0 }, () => runs++);
    expect(t.schedule()).toBe(20);
    expect(t.pending).toBe(true);
    await sleep(60);
    expect(runs).toBe(1);
    expect(t.pending).toBe(false);
    expect(t.schedule()).toBe(40);
    await sleep(90);
    expect(runs).toBe(2);
    t.reset();
    expect(t.schedule()).toBe(20);
    t.close();
  });

  test("cancel drops a pending retry; after close nothing is scheduled", async () => {
    let runs = 0;
    const t = new RetryTimer({ minMs: 10, maxMs: 100, jitter: 0 }, () => runs++);
    t.schedule();
    t.cancel();
    expect(t.pending).toBe(false);
    t.schedule();
    t.close();
    expect(t.schedule()).toBeUndefined();
    await sleep(40);
    expect(runs).toBe(0);
  });

  test("refuses a bad range", () => {
    expect(() => new RetryTimer({ minMs: 0, maxMs: 10 }, () => undefined)).toThrow(RangeError);
    expect(() => new RetryTimer({ minMs: 20, maxMs: 10 }, () => undefined)).toThrow(RangeError);
  });
});
