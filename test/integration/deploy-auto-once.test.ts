/**
 * Issue 8.2 on a real local grid (scripts/local-grid: a real nats-server, the chain stand-in and
 * three real agents): `deploy --auto` run twice with one file must not place one contract id on a
 * second node. Find carries the id, the node holding it says so, and --auto sends the request
 * there (duplicate, update, stale_version) or refuses with already_deployed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cli, tmpDir } from "../utils/agent";
import { startLocalGrid, type LocalGrid } from "../utils/grid";

let grid: LocalGrid;
let dir: string;

beforeAll(async () => {
  grid = await startLocalGrid(["--nodes", "3", "--ssd", "--ipv4", "2"]);
  dir = tmpDir("auto-once-");
});

afterAll(async () => {
  await grid?.stop();
});

const common = (): string[] => ["--key", grid.info.twin.key, "--registry", grid.info.registry, "--nats", grid.info.nats, "--json"];

function file(name: string, d: Record<string, unknown>): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify({ twinId: grid.info.twin.id, ...d }));
  return f;
}

async function auto(f: string, extra: string[] = []): Promise<{ code: number; out: Record<string, unknown>; stderr: string }> {
  const r = await cli(["deploy", "--auto", "--file", f, ...common(), ...extra]);
  return { code: r.code, out: JSON.parse(r.stdout) as Record<string, unknown>, stderr: r.stderr };
}

/** Which nodes hold deployment `id`, and at which version, from each node's own status. */
async function holders(id: number): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  for (const n of grid.info.nodes) {
    const r = await cli(["status", "--node", String(n.nodeId), "--nats", grid.info.nats, "--json"]);
    const st = JSON.parse(r.stdout) as { deployments: Array<{ id: number; version: number }> };
    const d = st.deployments.find((x) => Number(x.id) === id);
    if (d) out.push([n.nodeId, d.version]);
  }
  return out;
}

test("deploy --auto twice with one file: the second is a duplicate on the same node, an update goes there too", async () => {
  const workloads = [{ name: "pub", type: "ipv4" }];
  const v1 = file("v1.json", { id: 500, version: 1, workloads });
  const first = await auto(v1);
  expect(first.code).toBe(0);
  expect(first.out).toMatchObject({ accepted: true, code: "ok", id: 500, version: 1 });
  const home = first.out.nodeId as number;

  // the node that took it now has less room than the others, so find alone would rank another first
  const again = await auto(v1);
  expect(again.out).toMatchObject({ accepted: true, code: "duplicate", nodeId: home });
  expect(again.stderr).toContain(`deployment 500 is already on node ${home} at version 1`);
  expect(await holders(500)).toEqual([[home, 1]]);

  // version 2: an update, on the same node
  const v2 = file("v2.json", { id: 500, version: 2, workloads: [...workloads, { name: "pub2", type: "ipv4" }] });
  const upd = await auto(v2);
  expect(upd.out).toMatchObject({ accepted: true, code: "ok", nodeId: home, version: 2 });
  expect(await holders(500)).toEqual([[home, 2]]);

  // an older version than the node holds: the node's own answer, nothing placed elsewhere
  const old = await auto(file("v1b.json", { id: 500, version: 1, workloads: [{ name: "other", type: "ipv4" }] }));
  expect(old.code).toBe(1);
  expect(old.out).toMatchObject({ accepted: false, code: "stale_version", nodeId: home });
  expect(await holders(500)).toEqual([[home, 2]]);
});

test("an id some deployer placed on two nodes by hand: --auto refuses with already_deployed naming both", async () => {
  const workloads = [{ name: "n", type: "network" }];
  const f = file("w1.json", { id: 600, version: 1, workloads });
  for (const n of [1, 3]) {
    const r = await cli(["deploy", "--node", String(n), "--file", f, ...common()]);
    expect(JSON.parse(r.stdout)).toMatchObject({ accepted: true });
  }
  const r = await auto(file("w2.json", { id: 600, version: 2, workloads }));
  expect(r.code).toBe(1);
  expect(r.out).toMatchObject({ accepted: false, code: "already_deployed", id: 600, nodes: [1, 3] });
  expect(r.out.message).toContain("node 1 (farm 1, version 1), node 3 (farm 1, version 1)");
  expect(await holders(600)).toEqual([[1, 1], [3, 1]]);
});

test("a deployment id held under another twin is refused, not placed next to it", async () => {
  const other = path.join(dir, "other.json");
  expect((await cli(["keys", "new", "--out", other])).code).toBe(0);
  expect((await cli(["registry", "add", "--file", grid.info.registry, "--twin", "77", "--key", other])).code).toBe(0);
  const f = path.join(dir, "t.json");
  fs.writeFileSync(f, JSON.stringify({ id: 700, twinId: 77, version: 1, workloads: [{ name: "n", type: "network" }] }));
  const placed = await cli(["deploy", "--auto", "--file", f, "--key", other, "--registry", grid.info.registry, "--nats", grid.info.nats, "--json"]);
  expect(JSON.parse(placed.stdout)).toMatchObject({ accepted: true });
  const mine = await auto(file("t2.json", { id: 700, version: 2, workloads: [{ name: "n", type: "network" }] }));
  expect(mine.out).toMatchObject({ accepted: false, code: "already_deployed" });
  expect(mine.out.message).toContain(`belongs to twin 77, not twin ${grid.info.twin.id}`);
  expect((await holders(700)).length).toBe(1);
});
