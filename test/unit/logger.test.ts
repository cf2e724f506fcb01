import { Writable } from "node:stream";
import { createLogger } from "../../agent/log/logger";

function capture(): { lines: string[]; dest: Writable } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  return { lines, dest };
}

const count = (line: string, key: string): number => line.split(`"${key}":`).length - 1;

test("a module logger made from another module's logger writes the module key once", () => {
  const { lines, dest } = capture();
  const root = createLogger({ level: "info", pretty: false }, dest);
  const agent = root.child({ module: "agent" });
  agent.info({ event: "a" }, "a");
  agent.child({ module: "api" }).info({ event: "b" }, "b");
  agent.child({ nodeId: 3 }).child({ module: "gossip" }).child({ peer: 9 }).info({ event: "c" }, "c");
  expect(lines).toHaveLength(3);
  for (const l of lines) expect(count(l, "module")).toBe(1);
  expect(lines.map((l) => JSON.parse(l))).toEqual([
    expect.objectContaining({ module: "agent", event: "a" }),
    expect.objectContaining({ module: "api", event: "b" }),
    expect.objectContaining({ module: "gossip", nodeId: 3, peer: 9, event: "c" }),
  ]);
  for (const l of lines) expect(count(l, "pid")).toBe(1);
});

test("a module child keeps its parent's level", () => {
  const { lines, dest } = capture();
  const agent = createLogger({ level: "info", pretty: false }, dest).child({ module: "agent" });
  agent.level = "warn";
  const api = agent.child({ module: "api" });
  api.info({ event: "quiet" }, "dropped");
  api.warn({ event: "loud" }, "kept");
  expect(lines.map((l) => JSON.parse(l).event)).toEqual(["loud"]);
});

test("--pretty shows sizes in GiB and times as ISO; JSON keeps the raw numbers", () => {
  const { PRETTIFIERS } = require("../../agent/log/logger") as typeof import("../../agent/log/logger");
  const pretty = require("pino-pretty") as (o: Record<string, unknown>) => NodeJS.WritableStream;
  const { lines, dest } = capture();
  const pino = (require("pino") as { default: (o: object, d: NodeJS.WritableStream) => import("pino").Logger }).default;
  const GiB = 1024 ** 3;
  const log = pino({ level: "info" }, pretty({ destination: dest, colorize: false, sync: true, customPrettifiers: PRETTIFIERS }));
  log.info({ event: "deployment_rejected", code: "insufficient_capacity", unit: "sru", requested: 60 * GiB, free: 8 * GiB }, "deployment rejected");
  log.info({ event: "usage_proof_built", periodStartMs: Date.UTC(2026, 11, 2, 5, 0, 0), sequence: 3 }, "built");
  log.info({ event: "capacity_known", total: { cru: 4, mru: 16 * GiB, sru: 0, hru: 2048 * GiB, ipv4u: 0, gpu: 0 } }, "capacity known");
  log.info({ event: "hardware_probed", disks: [{ name: "vda", class: "hdd", sizeBytes: 256 * GiB }] }, "hardware probed");
  const text = lines.join("\n");
  expect(text).toContain("requested: 60 GiB");
  expect(text).toContain("free: 8 GiB");
  expect(text).toContain("periodStartMs: 2026-12-02T05:00:00.000Z");
  expect(text).toContain("total: cru 4  mru 16 GiB  sru 0 B  hru 2 TiB  ipv4u 0  gpu 0");
  expect(text).toContain("sequence: 3");
  expect(text).toContain("disks: vda HDD 256 GiB");
  expect(text).not.toContain(String(60 * GiB));

  const json = capture();
  createLogger({ level: "info", pretty: false }, json.dest).info({ event: "deployment_rejected", unit: "sru", requested: 60 * GiB }, "deployment rejected");
  expect(JSON.parse(json.lines[0])).toMatchObject({ requested: 60 * GiB });
});
