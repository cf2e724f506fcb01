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
