import { admitDelete, admitDeploy, type NodeState, type Reservation } from "../../agent/admission/admit";
import { parseDeployment, deploymentUnits, type DeploymentSpec } from "../../agent/admission/spec";
import { GiB, type Units } from "../../agent/capacity/units";

const u = (p: Partial<Units>): Units => ({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...p });

function spec(p: { id?: number; twinId?: number; version?: number; cpu?: number; memory?: string; rootfs?: string; gpus?: string[]; ipv4?: boolean; zdb?: string }): DeploymentSpec {
  const workloads: unknown[] = [{ name: "vm", type: "zmachine", cpu: p.cpu ?? 1, memory: p.memory ?? "1GiB", rootfs: p.rootfs ?? "1GiB", ...(p.gpus ? { gpus: p.gpus } : {}) }];
  if (p.ipv4) workloads.push({ name: "ip", type: "ipv4" });
  if (p.zdb) workloads.push({ name: "db", type: "zdb", size: p.zdb });
  const r = parseDeployment({ id: p.id ?? 1, twinId: p.twinId ?? 7, version: p.version ?? 1, workloads });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}

const res = (id: number, version: number, units: Units, twinId = 7, hash = `h${id}v${version}`): Reservation => ({ id, twinId, version, units, hash, createdMs: 1, updatedMs: 1 });

function state(p: Partial<NodeState> & { deployments?: Map<number, Reservation> } = {}): NodeState {
  const deployments = p.deployments ?? new Map();
  const used = [...deployments.values()].reduce((a, r) => u({ cru: a.cru + r.units.cru, mru: a.mru + r.units.mru, sru: a.sru + r.units.sru, hru: a.hru + r.units.hru, ipv4u: a.ipv4u + r.units.ipv4u, gpu: a.gpu + r.units.gpu }), u({}));
  return { reservable: u({ cru: 4, mru: 8 * GiB, sru: 10 * GiB, hru: 100 * GiB, ipv4u: 1, gpu: 1 }), used, deployments, tombstones: new Map(), power: "up", rented: false, ...p };
}

const input = (s: DeploymentSpec, hash = `h${s.id}v${s.version}`) => ({ spec: s, units: deploymentUnits(s), hash });

describe("admitDeploy", () => {
  test("a twin in debt on the chain gets twin_in_debt for a new deployment; its existing ones may still be updated; other twins are not affected", () => {
    const debt = new Set([7]);
    expect(admitDeploy(input(spec({})), state({ twinsInDebt: debt }), 0)).toMatchObject({ ok: false, refusal: { code: "twin_in_debt", message: expect.stringContaining("twin 7 is in debt") } });
    expect(admitDeploy(input(spec({ twinId: 8 })), state({ twinsInDebt: debt }), 0)).toMatchObject({ ok: true, value: { kind: "create" } });
    const s = state({ twinsInDebt: debt, deployments: new Map([[1, res(1, 1, u({ cru: 1, mru: GiB, sru: GiB }))]]) });
    expect(admitDeploy(input(spec({ version: 2, cpu: 2 })), s, 0)).toMatchObject({ ok: true, value: { kind: "update" } });
  });

  test("a deployment that fits is created", () => {
    const d = admitDeploy(input(spec({})), state(), 1000);
    expect(d).toMatchObject({ ok: true, value: { kind: "create", reservation: { id: 1, version: 1, createdMs: 1000, updatedMs: 1000 } } });
  });

  test.each([
    // [what, spec, expected unit, requested, free, message]
    ["cpu", spec({ cpu: 5 }), "cru", 5, 4, "deployment 1 needs 5 cru but only 4 is free"],
    ["memory", spec({ memory: "9GiB" }), "mru", 9 * GiB, 8 * GiB, "deployment 1 needs 9 GiB mru but only 8 GiB is free"],
    ["ssd", spec({ rootfs: "11GiB" }), "sru", 11 * GiB, 10 * GiB, "deployment 1 needs 11 GiB sru but only 10 GiB is free"],
    ["hdd", spec({ zdb: "101GiB" }), "hru", 101 * GiB, 100 * GiB, "deployment 1 needs 101 GiB hru but only 100 GiB is free"],
  ])("too much %s is insufficient_capacity with unit, requested and free (raw) and a message in GiB", (_what, s, unit, requested, free, message) => {
    const d = admitDeploy(input(s), state(), 0);
    expect(d).toMatchObject({ ok: false, refusal: { code: "insufficient_capacity", unit, requested, free, message } });
  });

  test("exactly the free amount fits (boundary), one more byte does not", () => {
    const s = state({ deployments: new Map([[9, res(9, 1, u({ mru: 6 * GiB }))]]) });
    expect(admitDeploy(input(spec({ memory: "2GiB" })), s, 0).ok).toBe(true);
    const over = admitDeploy(input(spec({ memory: String(2 * GiB + 1) })), s, 0);
    expect(over).toMatchObject({ ok: false, refusal: { code: "insufficient_capacity", unit: "mru", requested: 2 * GiB + 1, free: 2 * GiB, message: `deployment 1 needs 2 GiB (${2 * GiB + 1} bytes) mru but only 2 GiB is free` } });
  });

  test("ipv4 is checked like every other unit", () => {
    const s = state({ deployments: new Map([[9, res(9, 1, u({ ipv4u: 1 }))]]) });
    expect(admitDeploy(input(spec({ ipv4: true })), s, 0)).toMatchObject({ ok: false, refusal: { unit: "ipv4u", requested: 1, free: 0 } });
  });

  test("an update checks only its delta", () => {
    // node has 4 cru; deployment 1 holds 3; an update to 4 needs 1 more, which is free
    const s = state({ deployments: new Map([[1, res(1, 1, deploymentUnits(spec({ cpu: 3 })))]]) });
    const d = admitDeploy(input(spec({ cpu: 4, version: 2 })), s, 50);
    expect(d).toMatchObject({ ok: true, value: { kind: "update", reservation: { version: 2, createdMs: 1, updatedMs: 50 } } });
    // with another deployment holding 1 cru the delta no longer fits
    const s2 = state({ deployments: new Map([[1, res(1, 1, deploymentUnits(spec({ cpu: 3 })))], [2, res(2, 1, u({ cru: 1 }))]]) });
    expect(admitDeploy(input(spec({ cpu: 4, version: 2 })), s2, 0)).toMatchObject({ ok: false, refusal: { code: "insufficient_capacity", unit: "cru", requested: 1, free: 0 } });
  });

  test("an update that shrinks always fits, even on a full node", () => {
    const full = state({ deployments: new Map([[1, res(1, 1, deploymentUnits(spec({ cpu: 4, memory: "8GiB" })))]]) });
    expect(admitDeploy(input(spec({ cpu: 2, memory: "4GiB", version: 2 })), full, 0)).toMatchObject({ ok: true, value: { kind: "update" } });
  });

  test("the same id + version + contents is one answer: duplicate, nothing changes", () => {
    const s = state({ deployments: new Map([[1, res(1, 1, deploymentUnits(spec({})), 7, "same")]]) });
    expect(admitDeploy(input(spec({}), "same"), s, 0)).toMatchObject({ ok: true, value: { kind: "duplicate" } });
    // even when the node is now in standby or full
    expect(admitDeploy(input(spec({}), "same"), { ...s, power: "standby" }, 0)).toMatchObject({ ok: true, value: { kind: "duplicate" } });
  });

  test.each([
    ["same version, other contents", 1, 1, "other"],
    ["older version", 3, 2, "h1v2"],
  ])("stale_version: %s", (_w, have, send, hash) => {
    const s = state({ deployments: new Map([[1, res(1, have, u({ cru: 1 }), 7, "h-existing")]]) });
    expect(admitDeploy(input(spec({ version: send }), hash), s, 0)).toMatchObject({ ok: false, refusal: { code: "stale_version" } });
  });

  test("a deleted deployment never comes back at its old version or below", () => {
    const s = state({ tombstones: new Map([[1, 2]]) });
    expect(admitDeploy(input(spec({ version: 2 })), s, 0)).toMatchObject({ ok: false, refusal: { code: "stale_version" } });
    expect(admitDeploy(input(spec({ version: 3 })), s, 0)).toMatchObject({ ok: true, value: { kind: "create" } });
  });

  test("another twin cannot update someone's deployment", () => {
    const s = state({ deployments: new Map([[1, res(1, 1, u({ cru: 1 }), 8)]]) });
    expect(admitDeploy(input(spec({ version: 2 })), s, 0)).toMatchObject({ ok: false, refusal: { code: "unauthorized" } });
  });

  test("a node in standby refuses new work with node_standby", () => {
    expect(admitDeploy(input(spec({})), state({ power: "standby" }), 0)).toMatchObject({ ok: false, refusal: { code: "node_standby" } });
  });

  test("GPUs only on a rented node", () => {
    const s = spec({ gpus: ["0000:01:00.0"] });
    expect(admitDeploy(input(s), state(), 0)).toMatchObject({ ok: false, refusal: { code: "gpu_requires_rent", unit: "gpu" } });
    expect(admitDeploy(input(s), state({ rented: true }), 0)).toMatchObject({ ok: true });
    expect(admitDeploy(input(spec({ gpus: ["a", "b"] })), state({ rented: true }), 0)).toMatchObject({ ok: false, refusal: { code: "insufficient_capacity", unit: "gpu", requested: 2, free: 1 } });
  });
});

describe("admitDelete", () => {
  const s = state({ deployments: new Map([[1, res(1, 3, u({ cru: 1 }))]]), tombstones: new Map([[2, 5]]) });
  test.each([
    [{ id: 1, twinId: 7 }, { ok: true, value: { kind: "delete" } }],
    [{ id: 1, twinId: 8 }, { ok: false, refusal: { code: "unauthorized" } }],
    [{ id: 2, twinId: 7 }, { ok: true, value: { kind: "already_deleted", version: 5 } }],
    [{ id: 3, twinId: 7 }, { ok: false, refusal: { code: "not_found" } }],
  ])("%o -> %o", (req, want) => {
    expect(admitDelete(req, s)).toMatchObject(want);
  });
});
