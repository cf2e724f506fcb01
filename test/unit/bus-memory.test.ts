import { isNoResponders } from "../../agent/bus/bus";
import { MemoryBus, subjectMatches } from "../../agent/bus/memory";

test.each([
  ["a.b.c", "a.b.c", true],
  ["a.*.c", "a.b.c", true],
  ["a.*", "a.b.c", false],
  ["a.>", "a.b.c", true],
  ["a.>", "a", false],
  ["a.b", "a.b.c", false],
  ["a.b.c", "a.b", false],
  ["tfgrid.v1.capacity.*.*", "tfgrid.v1.capacity.sync.1", true],
])("subjectMatches(%s, %s) = %s", (pattern, subject, want) => {
  expect(subjectMatches(pattern, subject)).toBe(want);
});

test("publish reaches matching subscribers after publish returns, not others", async () => {
  const bus = new MemoryBus();
  const seen: string[] = [];
  bus.subscribe("x.*", { callback: (_e, m) => void seen.push(`star ${m.subject}`) });
  bus.subscribe("y.>", { callback: (_e, m) => void seen.push(`other ${m.subject}`) });
  bus.publish("x.1", new Uint8Array([1]));
  expect(seen).toEqual([]);
  await bus.flush();
  expect(seen).toEqual(["star x.1"]);
});

test("request gets the first answer; nobody listening is no-responders; an unanswered request times out", async () => {
  const bus = new MemoryBus();
  bus.subscribe("echo", { callback: (_e, m) => void m.respond(new Uint8Array([...m.data, 9])) });
  expect(Array.from((await bus.request("echo", new Uint8Array([1, 2]), { timeout: 1000 })).data)).toEqual([1, 2, 9]);
  const none = await bus.request("nobody", new Uint8Array(0), { timeout: 1000 }).catch((e: unknown) => e);
  expect(isNoResponders(none)).toBe(true);
  bus.subscribe("silent", { callback: () => undefined });
  const late = await bus.request("silent", new Uint8Array(0), { timeout: 20 }).catch((e: unknown) => e);
  expect(isNoResponders(late)).toBe(false);
  expect(String(late)).toMatch(/timed out/);
});

test("unsubscribe stops delivery; reconnect watchers run until stopped; close refuses publishes", async () => {
  const bus = new MemoryBus(4096);
  let got = 0;
  const sub = bus.subscribe("a", { callback: () => void got++ });
  bus.publish("a", new Uint8Array(0));
  sub.unsubscribe();
  await bus.flush();
  expect(got).toBe(0);
  let reconnects = 0;
  const stop = bus.onReconnect(() => void reconnects++);
  await bus.reconnected();
  stop();
  await bus.reconnected();
  expect(reconnects).toBe(1);
  expect(bus.maxPayload()).toBe(4096);
  bus.close();
  expect(bus.isClosed()).toBe(true);
  expect(() => bus.publish("a", new Uint8Array(0))).toThrow(/closed/);
});
