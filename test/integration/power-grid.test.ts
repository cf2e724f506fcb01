/**
 * Power management by the nodes themselves on a real local grid (scripts/local-grid --power dev
 * --power-fast: a real nats-server, the chain stand-in, three real agents with the policy in
 * seconds, dev nodes "boot" for 10 s when woken): idle nodes go to standby one by one and the farm
 * always keeps an up node; the farm's twin can wake a node and put one to standby (not the last up
 * one); another twin cannot; a woken node is `waking` for every observer (power status, from the
 * signed announcements of the node that woke it and its own) until it is up; and deploy --auto
 * wakes a sleeping node that fits when no awake node does.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connect } from "@nats-io/transport-node";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { cryptoReady, loadKeyFile } from "../../agent/identity/keys";
import { cli, tmpDir } from "../utils/agent";
import { farmAnnouncements, powerRows } from "../../agent/power/client";
import { openPowerReply, sealPowerMessage } from "../../agent/power/wire";
import { eventually, startLocalGrid, type LocalGrid } from "../utils/grid";
import { natsBus } from "../../agent/bus/nats";

let grid: LocalGrid;
let dir: string;
let stopWatch = false;
let minUp = Infinity;
let samples = 0;
let zeroRows: Row[] | null = null;
let watcher: Promise<void>;

type Row = { nodeId: number; state: string; since: string | null; reason: string };

async function status(): Promise<Row[]> {
  const r = await cli(["power", "status", "--farm", "1", "--registry", grid.info.registry, "--nats", grid.info.nats, "--json", "--expect", grid.info.nodes.map((n) => n.nodeId).join(",")]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Row[];
}

beforeAll(async () => {
  await cryptoReady();
  // woken dev nodes boot for 10 s: long enough for a CLI started on a busy machine to see them waking
  grid = await startLocalGrid(["--nodes", "3", "--ipv4", "2", "--power", "dev", "--power-fast", "--power-boot", "10"]);
  dir = tmpDir("power-grid-");
  // watch the farm all along: it must never be without an up node
  watcher = (async () => {
    while (!stopWatch) {
      const rows = await status().catch(() => null);
      // a sample counts when every node answered (a reply lost to a busy machine is not a state)
      if (rows && rows.length === 3 && !rows.some((r) => r.state === "down")) {
        samples++;
        const up = rows.filter((r) => r.state === "up").length;
        if (up < minUp) zeroRows = up === 0 ? rows : zeroRows;
        minUp = Math.min(minUp, up);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
}, 120_000);

afterAll(async () => {
  stopWatch = true;
  await watcher;
  await grid?.stop();
});

const twin = (): string[] => ["--key", grid.info.twin.key, "--twin", String(grid.info.twin.id), "--registry", grid.info.registry, "--nats", grid.info.nats, "--json"];

test("an idle farm puts nodes to standby one by one, keeping one up", async () => {
  const rows = await eventually(async () => {
    const r = await status();
    return r.filter((x) => x.state === "standby").length === 2 ? r : null;
  }, 60_000, "two of three nodes in standby", 500);
  expect(rows.filter((r) => r.state === "up")).toHaveLength(1);
  for (const r of rows.filter((x) => x.state === "standby")) expect(r.reason).toBe("idle");
  // the chain stand-in keeps the power each node reported (node.power, signed by the node)
  const nc = await connect({ servers: grid.info.nats });
  try {
    const chain = new ChainClient(natsBus(nc), new Subjects());
    for (const r of rows) {
      const n = await eventually(async () => {
        const got = await chain.node(r.nodeId);
        return got?.powerState === r.state ? got : null;
      }, 10_000, `the chain to hold node ${r.nodeId} as ${r.state}`, 200);
      expect(n.powerTarget).toBe(r.state);
    }
    // only the node's own key may report its power
    const other = await chain.setPower(await loadKeyFile(grid.info.twin.key), rows[0]!.nodeId, "up");
    expect(other).toMatchObject({ ok: false, code: "unauthorized" });
  } finally {
    await nc.close();
  }
  // find reports the sleepers as wakeable; its JSON lists only awake nodes
  const found = await cli(["find", "--cru", "1", "--farm", "1", "--registry", grid.info.registry, "--nats", grid.info.nats]);
  for (const r of rows.filter((x) => x.state === "standby")) expect(found.stdout).toMatch(new RegExp(`wakeable.*node ${r.nodeId} `));
  const foundJson = JSON.parse((await cli(["find", "--cru", "1", "--farm", "1", "--nats", grid.info.nats, "--json"])).stdout) as Array<{ nodeId: number }>;
  expect(foundJson.map((f) => f.nodeId)).toEqual(rows.filter((x) => x.state === "up").map((x) => x.nodeId));
  // stays so: the last up node never goes
  await new Promise((r) => setTimeout(r, 5000));
  expect((await status()).filter((r) => r.state === "up").length).toBeGreaterThanOrEqual(1);
}, 90_000);

test("the farm's twin: standby of the last up node is refused; wake works; another twin cannot put a node to standby", async () => {
  const rows = await status();
  const up = rows.find((r) => r.state === "up")!;
  const asleep = rows.find((r) => r.state === "standby")!;
  const last = await cli(["power", "standby", "--node", String(up.nodeId), ...twin()]);
  expect(last.code).toBe(1);
  expect(JSON.parse(last.stdout)).toMatchObject({ ok: false, code: "last_node", power: "up" });
  const other = path.join(dir, "other.json");
  expect((await cli(["keys", "new", "--out", other])).code).toBe(0);
  const reg = await cli(["registry", "add", "--chain", "--key", other, "--nats", grid.info.nats]);
  expect(reg.code).toBe(0);
  const otherId = (JSON.parse(reg.stdout) as { twin: number }).twin;
  const regFile = JSON.parse(fs.readFileSync(grid.info.registry, "utf8")) as { twins: unknown[] };
  expect(regFile.twins.length).toBeGreaterThan(0);
  const refused = await cli(["power", "standby", "--node", String(up.nodeId), "--key", other, "--twin", String(otherId), "--nats", grid.info.nats, "--json"]);
  expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, code: "unauthorized" });
  const woke = await cli(["power", "wake", "--node", String(asleep.nodeId), ...twin()]);
  // the dev node boots for 10 s: waking meanwhile, for every observer
  expect(JSON.parse(woke.stdout)).toMatchObject({ ok: true, code: "waking", power: "standby" });
  // the waker announces the wake with its next signed announcement: on a loaded machine that can
  // come a little after the command's answer, well inside the 10 s boot
  const { waking, human } = await eventually(async () => {
    const [rowsNow, human] = await Promise.all([status(), cli(["power", "status", "--farm", "1", "--registry", grid.info.registry, "--nats", grid.info.nats])]);
    const waking = rowsNow.find((r) => r.nodeId === asleep.nodeId)!;
    return waking.state === "waking" ? { waking, human } : null;
  }, 5_000, `node ${asleep.nodeId} waking for every observer`, 100);
  expect(waking).toMatchObject({ state: "waking", reason: "requested" });
  expect(Date.now() - Date.parse(waking.since!)).toBeLessThan(20_000);
  expect(human.stdout).toMatch(new RegExp(`node ${asleep.nodeId}  waking\\s+since \\S+ \\(requested\\)`));
  const upNow = await eventually(async () => {
    const r = (await status()).find((x) => x.nodeId === asleep.nodeId)!;
    return r.state === "up" ? r : null;
  }, 25_000, `node ${asleep.nodeId} up after its boot`, 200);
  expect(upNow.reason).toBe("requested");
  expect(Date.parse(upNow.since!)).toBeGreaterThanOrEqual(Date.parse(waking.since!));
}, 60_000);

test("a wake relayed by an up node: the waker announces the sleeper as waking until it is up", async () => {
  const rows = await eventually(async () => {
    const r = await status();
    return r.some((x) => x.state === "standby") ? r : null;
  }, 60_000, "a node in standby again", 500);
  const asleep = rows.find((r) => r.state === "standby")!;
  const relay = rows.find((r) => r.state === "up")!;
  const nc = await connect({ servers: grid.info.nats });
  try {
    const subjects = new Subjects();
    const signer = await loadKeyFile(grid.info.twin.key);
    // the farm's twin asks the up node to wake the sleeper (what deploy --auto does when the sleeper does not listen)
    const req = sealPowerMessage(signer, { farmId: 1, fromNodeId: 0, fromTwinId: grid.info.twin.id, kind: "wake", targetNodeId: asleep.nodeId, timestampMs: Date.now() });
    const reply = openPowerReply((await nc.request(subjects.nodePower(relay.nodeId), req, { timeout: 5000 })).data);
    expect(reply).toMatchObject({ ok: true, reply: { nodeId: relay.nodeId, code: "wake_sent" } });
    // both sign it: the waker's announcement lists the sleeper, and so does the booting node's own
    const { announcements } = await farmAnnouncements(natsBus(nc), subjects, 1, { registry: null, timeoutMs: 1500 });
    const byId = new Map(announcements.map((a) => [a.nodeId, a]));
    expect(byId.get(relay.nodeId)!.waking?.map((w) => [w.nodeId, w.reason])).toEqual([[asleep.nodeId, "requested"]]);
    expect(byId.get(asleep.nodeId)!.power).toBe("standby");
    expect(powerRows(announcements).find((r) => r.nodeId === asleep.nodeId)).toMatchObject({ state: "waking", reason: "requested" });
    // the waker's list alone makes it waking (a powered-off zos node announces nothing)
    const silent = announcements.filter((a) => a.nodeId !== asleep.nodeId);
    expect(powerRows(silent, [asleep.nodeId]).find((r) => r.nodeId === asleep.nodeId)).toMatchObject({ state: "waking", reason: "requested" });
    await eventually(async () => (await status()).find((x) => x.nodeId === asleep.nodeId)!.state === "up" || null, 25_000, `node ${asleep.nodeId} up`, 200);
    // up: the waker drops it from its announcement
    await eventually(async () => {
      const { announcements: again } = await farmAnnouncements(natsBus(nc), subjects, 1, { registry: null, timeoutMs: 1000 });
      return again.find((a) => a.nodeId === relay.nodeId)?.waking === undefined || null;
    }, 15_000, `node ${relay.nodeId} to stop announcing the wake`, 300);
  } finally {
    await nc.close();
  }
}, 90_000);

test("deploy --auto wakes a standby node that fits when no awake node does", async () => {
  // back to one up node
  await eventually(async () => (await status()).filter((x) => x.state === "standby").length === 2, 60_000, "two nodes in standby again", 500);
  const write = (name: string, d: Record<string, unknown>): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, JSON.stringify({ twinId: grid.info.twin.id, version: 1, ...d }));
    return f;
  };
  const common = ["--key", grid.info.twin.key, "--registry", grid.info.registry, "--nats", grid.info.nats, "--json"];
  // fill the up node's public IPv4s (2)
  const first = await cli(["deploy", "--auto", "--file", write("a.json", { id: 7001, workloads: [{ name: "a", type: "ipv4" }, { name: "b", type: "ipv4" }] }), ...common]);
  expect(JSON.parse(first.stdout)).toMatchObject({ accepted: true });
  const onNode = (JSON.parse(first.stdout) as { nodeId: number }).nodeId;
  expect((await status()).find((r) => r.nodeId === onNode)!.state).toBe("up");
  const second = await cli(["deploy", "--auto", "--file", write("b.json", { id: 7002, workloads: [{ name: "c", type: "ipv4" }] }), ...common]);
  expect(second.stderr).toMatch(/waking node \d+/);
  const out = JSON.parse(second.stdout) as { accepted: boolean; nodeId: number };
  expect(out).toMatchObject({ accepted: true });
  expect(out.nodeId).not.toBe(onNode);
  const rows = await status();
  expect(rows.find((r) => r.nodeId === out.nodeId)!.state).toBe("up");
}, 120_000);

test("the farm was never without an up node", () => {
  expect(samples).toBeGreaterThan(10);
  expect(zeroRows).toBeNull();
  expect(minUp).toBeGreaterThanOrEqual(1);
});
