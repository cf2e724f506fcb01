import { chainHealthOf, healthOf } from "../../agent/metrics/health";

const nats = (connected: boolean) => ({ connected, server: "127.0.0.1:4222", sinceMs: 0, disconnects: connected ? 0 : 1 });
const usage = (pending: number, lastCode: string) => ({ periodMs: 3_600_000, lastSequence: 3, deliveredSequence: 3 - pending, pending, meteredUntilMs: 0, lastCode, chain: true });

test.each([
  ["NATS connected, chain disabled", nats(true), null, "ok"],
  ["NATS connected, no proof waits", nats(true), chainHealthOf(usage(0, "")), "ok"],
  ["NATS connected, a proof waits, not tried yet", nats(true), chainHealthOf(usage(1, "")), "ok"],
  ["NATS connected, the chain did not answer", nats(true), chainHealthOf(usage(2, "chain_unavailable")), "degraded"],
  ["NATS connected, the chain refused a proof", nats(true), chainHealthOf(usage(1, "gap")), "degraded"],
  ["NATS down, chain disabled", nats(false), null, "down"],
  ["NATS down, chain fine", nats(false), chainHealthOf(usage(0, "")), "down"],
  ["NATS connected, usage not started", nats(true), chainHealthOf(undefined), "ok"],
])("%s: %s", (_what, n, chain, status) => {
  expect(healthOf(n, chain)).toEqual({ status, nats: n, chain });
});
