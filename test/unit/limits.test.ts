/**
 * The request limits, pure: token buckets over an injected clock, the bounded per-requester
 * table, the bounded queue, requester ids from reply subjects, and the node API's gate.
 */
import type { BusMessage } from "../../agent/bus/bus";
import { API_LIMITS_DEFAULTS, ApiGate, parseApiLimits, type ApiLimits, type ApiOp, type Charge } from "../../agent/api/limits";
import { BoundedQueue, KeyedBuckets, RequestLimiter, requesterOf, take, type BucketState } from "../../agent/bus/limits";
import { applyFile, defaultConfig } from "../../agent/config/options";
import { silentLogger } from "../../agent/log/logger";
import { createMetrics } from "../../agent/metrics/metrics";

describe("take (token bucket)", () => {
  const rule = { rate: 10, burst: 5 };
  test.each<[string, BucketState | undefined, number, number, boolean, number]>([
    ["a new bucket is full", undefined, 1, 0, true, 4],
    ["the whole burst at once", undefined, 5, 0, true, 0],
    ["more than the burst", undefined, 6, 0, false, 5],
    ["empty, no time passed", { tokens: 0, atMs: 0 }, 1, 0, false, 0],
    ["empty, 100 ms refill one token at 10/s", { tokens: 0, atMs: 0 }, 1, 100, true, 0],
    ["refill stops at the burst", { tokens: 0, atMs: 0 }, 1, 60_000, true, 4],
    ["a clock going back refills nothing", { tokens: 2, atMs: 1000 }, 1, 500, true, 1],
  ])("%s", (_name, state, cost, now, ok, left) => {
    const r = take(state, rule, cost, now);
    expect(r.ok).toBe(ok);
    expect(r.state.tokens).toBeCloseTo(left, 9);
  });
});

describe("KeyedBuckets", () => {
  test("each key has its own bucket; a refused take takes nothing", () => {
    let now = 0;
    const b = new KeyedBuckets({ rate: 1, burst: 2 }, 100, () => now);
    expect([b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, false]);
    expect(b.take("b")).toBe(true);
    now = 1000;
    expect([b.take("a"), b.take("a")]).toEqual([true, false]);
    expect(b.take("a", 3)).toBe(false);
  });

  test("the table never holds more than maxKeys; the least recently used key is forgotten", () => {
    const b = new KeyedBuckets({ rate: 1, burst: 1 }, 3, () => 0);
    for (let i = 0; i < 10_000; i++) b.take(`k${i}`);
    expect(b.size).toBe(3);
    // k9997..k9999 are kept and empty; k0 was forgotten, so it starts full again
    expect(b.take("k9999")).toBe(false);
    expect(b.take("k0")).toBe(true);
  });
});

test("BoundedQueue refuses beyond its length and keeps FIFO order", () => {
  const q = new BoundedQueue<number>(3);
  expect([q.push(1), q.push(2), q.push(3), q.push(4)]).toEqual([true, true, true, false]);
  expect(q.shift()).toBe(1);
  expect(q.push(5)).toBe(true);
  expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([2, 3, 5, undefined]);
  for (let i = 0; i < 1000; i++) {
    q.push(i);
    expect(q.shift()).toBe(i);
  }
  expect(q.length).toBe(0);
});

test.each<[string | undefined, string]>([
  ["_INBOX.abc123.7", "_INBOX.abc123"],
  ["_INBOX.abc123", "_INBOX.abc123"],
  ["_INBOX.abc123.x.y", "_INBOX.abc123"],
  ["my.reply.subject.42", "my.reply.subject"],
  ["single", "single"],
  [undefined, "-"],
  ["", "-"],
  [`a.${"x".repeat(500)}.1`, `a.${"x".repeat(126)}`],
])("requesterOf, case %#", (reply, want) => {
  expect(requesterOf(reply)).toBe(want);
});

/** A request as the gate sees it: a reply subject and respond(). */
function msg(reply: string | undefined, out: Uint8Array[]): BusMessage {
  return { subject: "tfgrid.v1.node.1.deploy", data: new Uint8Array(0), reply, respond: (d: Uint8Array) => out.push(d) > 0 };
}

function gate(limits: Partial<ApiLimits>, now: () => number) {
  const metrics = createMetrics();
  const g = new ApiGate({ ...API_LIMITS_DEFAULTS, ...limits }, { now, logger: silentLogger(), metrics, refusal: (op: ApiOp, reason) => new TextEncoder().encode(`${op}:${reason}`) });
  return { g, metrics };
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("ApiGate", () => {
  test("a requester over its read rate is refused with rate_limited; another requester is not", async () => {
    const now = 0;
    const { g, metrics } = gate({ readRate: 1, readBurst: 3 }, () => now);
    const out: Uint8Array[] = [];
    let ran = 0;
    const job = async (): Promise<void> => void ran++;
    for (let i = 0; i < 5; i++) g.offer("get", msg(`_INBOX.flood.${i}`, out), job);
    g.offer("status", msg("_INBOX.other.1", out), job);
    for (let i = 0; i < 10; i++) await tick();
    expect(ran).toBe(4);
    expect(out.map(text)).toEqual(["get:requester_rate", "get:requester_rate"]);
    expect(metrics.shed.get({ subject: "get", reason: "requester_rate" })).toBe(2);
  });

  test("a full lane sheds with queue_full; writes have their own lane and go first", async () => {
    const { g, metrics } = gate({ readQueue: 2, readBurst: 100 }, () => 0);
    const out: Uint8Array[] = [];
    const order: string[] = [];
    for (let i = 0; i < 4; i++) g.offer("get", msg(`_INBOX.r${i}.1`, out), async () => void order.push(`get${i}`));
    g.offer("deploy", msg("_INBOX.w.1", out), async () => void order.push("deploy"));
    for (let i = 0; i < 10; i++) await tick();
    expect(order).toEqual(["deploy", "get0", "get1"]);
    expect(out.map(text)).toEqual(["get:queue_full", "get:queue_full"]);
    expect(metrics.shed.get({ subject: "get", reason: "queue_full" })).toBe(2);
  });

  test("reads are charged by reply size: per requester (16 KiB a token) and against the global bytes budget", async () => {
    const { g, metrics } = gate({ readBurst: 10, readRate: 1, replyBytesPerSecond: 64 * 1024 }, () => 0);
    const answers: Array<string | null> = [];
    const job = (bytes: number) => async (charge: Charge): Promise<void> => void answers.push(charge(bytes));
    // requester a: 1 token on arrival + 3 more for a 64 KiB reply = 4 of 10
    g.offer("get", msg("_INBOX.a.1", []), job(64 * 1024));
    // requester b: fits its own bucket, and the global budget (128 KiB burst) still has 64 KiB
    g.offer("get", msg("_INBOX.b.1", []), job(64 * 1024));
    // requester c: the global budget is spent
    g.offer("get", msg("_INBOX.c.1", []), job(1024));
    // requester a again: 1 + 9 tokens needed for 160 KiB, only 5 left (8 after both offers, 3 taken by a.1)
    g.offer("get", msg("_INBOX.a.2", []), job(160 * 1024));
    for (let i = 0; i < 10; i++) await tick();
    expect(answers).toEqual([null, null, "reply_bytes", "requester_rate"]);
    expect(metrics.shed.get({ subject: "get", reason: "reply_bytes" })).toBe(1);
    expect(metrics.shed.get({ subject: "get", reason: "requester_rate" })).toBe(1);
  });

  test("refusals beyond refusalsPerSecond get no reply and are counted as unanswered", () => {
    const { g, metrics } = gate({ readRate: 1, readBurst: 1, refusalsPerSecond: 2 }, () => 0);
    const out: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) g.offer("get", msg(`_INBOX.f.${i}`, out), async () => undefined);
    expect(out.length).toBe(2);
    expect(metrics.shed.get({ subject: "get", reason: "requester_rate" })).toBe(5);
    expect(metrics.shedDropped.get({ subject: "get" })).toBe(3);
  });

  test("a twin over its write rate is refused, whatever connection it uses", () => {
    const { g, metrics } = gate({ writeRate: 1, writeBurst: 2 }, () => 0);
    expect([g.twinAllowed("deploy", 7), g.twinAllowed("delete", 7), g.twinAllowed("deploy", 7), g.twinAllowed("deploy", 8)]).toEqual([true, true, false, true]);
    expect(metrics.shed.get({ subject: "deploy", reason: "twin_rate" })).toBe(1);
  });
});

describe("api.limits options", () => {
  test("defaults, and a partial object over them", () => {
    expect(parseApiLimits(undefined, (f, m) => new Error(`${f}: ${m}`))).toEqual(API_LIMITS_DEFAULTS);
    const c = defaultConfig();
    applyFile(c, { api: { limits: { readRate: 5, writeQueue: 10 } } }, "/tmp/x.json");
    expect(c.api.limits).toEqual({ ...API_LIMITS_DEFAULTS, readRate: 5, writeQueue: 10 });
  });

  test.each<[unknown, string]>([
    [{ readRate: 0 }, "api.limits.readRate: expected an integer from 1 to 1000000, got 0"],
    [{ readQueue: "64" }, 'api.limits.readQueue: expected an integer from 1 to 100000, got "64"'],
    [{ burst: 1 }, "api.limits.burst: unknown field"],
    [[], "api.limits: expected an object"],
  ])("%j is refused naming the field", (limits, message) => {
    expect(() => applyFile(defaultConfig(), { api: { limits } }, "/tmp/x.json")).toThrow(message);
  });
});

test("RequestLimiter: per requester, then a global budget of answers", () => {
  let now = 0;
  const l = new RequestLimiter({ rate: 1, burst: 2 }, 3, 100, () => now);
  expect([l.check("_INBOX.a.1"), l.check("_INBOX.a.2"), l.check("_INBOX.a.3")]).toEqual([null, null, "requester_rate"]);
  expect([l.check("_INBOX.b.1"), l.check("_INBOX.c.1")]).toEqual([null, "global_rate"]);
  now += 1000;
  expect(l.check("_INBOX.c.2")).toBeNull();
});

test("ApiGate: a reply larger than a full bucket still goes out (it costs the whole bucket)", async () => {
  const { g } = gate({ readBurst: 4, readRate: 1, replyBytesPerSecond: 64 * 1024 }, () => 0);
  const answers: Array<string | null> = [];
  const job = (bytes: number) => async (charge: Charge): Promise<void> => void answers.push(charge(bytes));
  g.offer("get", msg("_INBOX.a.1", []), job(8 * 1024 * 1024));
  g.offer("get", msg("_INBOX.b.1", []), job(1024));
  for (let i = 0; i < 10; i++) await tick();
  expect(answers).toEqual([null, "reply_bytes"]);
});
