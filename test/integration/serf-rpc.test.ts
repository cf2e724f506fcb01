/**
 * The Serf baseline's RPC client (scripts/bench/serf.ts) against a real `serf agent`: the msgpack
 * it writes is understood, and the replies it reads (member lists with bytes, maps, integers) are
 * decoded to what the agent holds. Skipped, with a warning, where serf is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { freePort } from "../../agent/bus/nats";
import { SerfRpc } from "../../scripts/bench/serf";

const SERF = spawnSync("sh", ["-c", "command -v serf"], { encoding: "utf8" }).stdout.trim();
let agent: ChildProcess | undefined;
let rpc: SerfRpc | undefined;

afterEach(() => {
  rpc?.close();
  agent?.kill("SIGKILL");
});

async function openWithin(port: number, ms: number): Promise<SerfRpc> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await SerfRpc.open(port);
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test("members, members-filtered and tags over Serf's RPC", async () => {
  if (!SERF) {
    console.warn("serf not found: skipping the Serf RPC test (apt-get install -y serf)");
    return;
  }
  const bind = await freePort();
  const rpcPort = await freePort();
  agent = spawn(SERF, ["agent", "-node", "only", "-bind", `127.0.0.1:${bind}`, "-rpc-addr", `127.0.0.1:${rpcPort}`, "-tag", "free=0", "-tag", "long=" + "x".repeat(300), "-log-level", "err"], { stdio: "ignore" });
  rpc = await openWithin(rpcPort, 10_000);

  const all = await rpc.members();
  expect(all.map((m) => [m.Name, m.Status, m.Tags.free, m.Tags.long])).toEqual([["only", "alive", "0", "x".repeat(300)]]);

  await rpc.setTags({ free: "r1" });
  expect((await rpc.members({ Name: "only", Tags: { free: "r1" } })).map((m) => m.Tags.free)).toEqual(["r1"]);
  expect(await rpc.members({ Name: "only", Tags: { free: "r2" } })).toEqual([]);
  // requests in flight at once are answered each to its own caller
  const [a, b] = await Promise.all([rpc.members({ Tags: { free: "r1" } }), rpc.members({ Tags: { free: "0" } })]);
  expect([a.length, b.length]).toEqual([1, 0]);
  await expect(rpc.call("no-such-command", undefined, false)).rejects.toThrow(/serf rpc: /);
}, 30_000);
