import { deploymentUnits, parseDeployment, rootfsMinimum, workloadUnits, type WorkloadSpec } from "../../agent/admission/spec";
import { GiB, MiB } from "../../agent/capacity/units";
import { ISSUE_EXAMPLE } from "../utils/deployments";

const w = (p: Partial<WorkloadSpec>): WorkloadSpec => ({ name: "w", type: "zmachine", cpu: 0, memory: 0, rootfs: 0, size: 0, mode: "", gpus: [], cache: 0, v4: false, ...p });

describe("deployment spec", () => {
  test("the issue's example file parses and consumes what GRID.md says", () => {
    const r = parseDeployment(ISSUE_EXAMPLE);
    if (!r.ok) throw new Error(r.refusal.message);
    expect(deploymentUnits(r.value)).toEqual({ cru: 2, mru: 4 * GiB, sru: 60 * GiB, hru: 100 * GiB, ipv4u: 1, gpu: 0 });
  });

  test("a missing signature requirement means the owner alone, weight 1", () => {
    const { signatureRequirement: _s, ...rest } = ISSUE_EXAMPLE;
    const r = parseDeployment(rest);
    expect(r.ok && r.value.signatureRequirement).toEqual({ weightRequired: 1, requests: [{ twinId: 7, weight: 1, required: true }] });
  });

  test.each([
    // cpu, memory, minimum rootfs: floor(cpu x memory / 8 GiB) == 0 -> 500 MiB, else 2 GiB
    [1, 4 * GiB, 500 * MiB],
    [1, 8 * GiB - 1, 500 * MiB],
    [1, 8 * GiB, 2 * GiB],
    [2, 4 * GiB, 2 * GiB],
    [4, 1 * GiB, 500 * MiB],
    [8, 1 * GiB, 2 * GiB],
  ])("rootfs minimum for cpu %p memory %p is %p", (cpu, memory, min) => {
    expect(rootfsMinimum(cpu, memory)).toBe(min);
    expect(workloadUnits(w({ cpu, memory, rootfs: 0 })).sru).toBe(min);
    expect(workloadUnits(w({ cpu, memory, rootfs: 100 * GiB })).sru).toBe(100 * GiB);
  });

  test.each([
    [w({ type: "zmount", size: 5 }), { sru: 5 }],
    [w({ type: "volume", size: 7 }), { sru: 7 }],
    [w({ type: "zdb", size: 9, mode: "seq" }), { hru: 9 }],
    [w({ type: "qsfs", cache: 3 * GiB }), { cru: 1, mru: 1 * GiB, sru: 3 * GiB }],
    [w({ type: "ipv4" }), { ipv4u: 1 }],
    [w({ type: "ip", v4: true }), { ipv4u: 1 }],
    [w({ type: "ip", v4: false }), {}],
    [w({ type: "network" }), {}],
    [w({ type: "gateway-name-proxy" }), {}],
    [w({ type: "gateway-fqdn-proxy" }), {}],
    [w({ type: "zlogs" }), {}],
    [w({ type: "zmachine", cpu: 1, memory: 1 * GiB, rootfs: 1 * GiB, gpus: ["a", "b"] }), { cru: 1, mru: 1 * GiB, sru: 1 * GiB, gpu: 2 }],
  ])("workload %o consumes %o", (workload, units) => {
    expect(workloadUnits(workload)).toEqual({ cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0, ...units });
  });

  const bad = (patch: (d: Record<string, unknown>) => void): unknown => {
    const d = JSON.parse(JSON.stringify(ISSUE_EXAMPLE)) as Record<string, unknown>;
    patch(d);
    return d;
  };
  const wl = (d: Record<string, unknown>, i: number): Record<string, unknown> => (d.workloads as Array<Record<string, unknown>>)[i];

  test.each([
    ["id", bad((d) => (d.id = 0))],
    ["id", bad((d) => (d.id = "x"))],
    ["twinId", bad((d) => delete d.twinId)],
    ["version", bad((d) => (d.version = -1))],
    ["workloads", bad((d) => (d.workloads = {}))],
    ["workloads[0].cpu", bad((d) => (wl(d, 0).cpu = 0))],
    ["workloads[0].cpu", bad((d) => (wl(d, 0).cpu = 1.5))],
    ["workloads[0].memory", bad((d) => (wl(d, 0).memory = "200MiB"))],
    ["workloads[0].memory", bad((d) => (wl(d, 0).memory = "4 XB"))],
    ["workloads[0].rootfs", bad((d) => (wl(d, 0).rootfs = "lots"))],
    ["workloads[0].gpus[1]", bad((d) => (wl(d, 0).gpus = ["g0", "g0"]))],
    ["workloads[1].size", bad((d) => (wl(d, 1).size = 0))],
    ["workloads[2].mode", bad((d) => (wl(d, 2).mode = "fast"))],
    ["workloads[3].type", bad((d) => (wl(d, 3).type = "kubernetes"))],
    ["workloads[3].name", bad((d) => (wl(d, 3).name = "vm1"))],
    ["workloads[3].name", bad((d) => (wl(d, 3).name = "has space"))],
    ["signatureRequirement.requests", bad((d) => ((d.signatureRequirement as Record<string, unknown>).requests = [{ twinId: 8, weight: 1, required: true }]))],
    ["signatureRequirement.weightRequired", bad((d) => ((d.signatureRequirement as Record<string, unknown>).weightRequired = 5))],
    ["signatureRequirement.requests[0].weight", bad((d) => ((d.signatureRequirement as { requests: Array<Record<string, unknown>> }).requests[0].weight = 0))],
    ["$", 42],
    // issue 8: unknown fields at every level, empty deployments, sizes spelled otherwise than README says
    ["memroy", bad((d) => (d.memroy = "4GiB"))],
    ["workloads[0].memroy", bad((d) => (wl(d, 0).memroy = "4GiB"))],
    ["signatureRequirement.weight", bad((d) => ((d.signatureRequirement as Record<string, unknown>).weight = 1))],
    ["signatureRequirement.extra", bad((d) => (d.signatureRequirement = { requests: [], extra: 1 }))],
    ["signatureRequirement.requests[0].twin", bad((d) => ((d.signatureRequirement as { requests: Array<Record<string, unknown>> }).requests[0].twin = 7))],
    ["workloads", bad((d) => (d.workloads = []))],
    ["workloads[0].memory", bad((d) => (wl(d, 0).memory = "4 gb"))],
    ["workloads[0].memory", bad((d) => (wl(d, 0).memory = "4gib"))],
    ["workloads[0].memory", bad((d) => (wl(d, 0).memory = "4 GiB"))],
    ["workloads[1].size", bad((d) => (wl(d, 1).size = "50KB"))],
    ["workloads[1].memory", bad((d) => (wl(d, 1).memory = "4GiB"))],
    ["workloads[3].size", bad((d) => (wl(d, 3).size = "1GiB"))],
    ["workloads[0].size", bad((d) => (wl(d, 0).size = "10GiB"))],
  ])("invalid_spec names %s", (path, input) => {
    const r = parseDeployment(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.refusal.code).toBe("invalid_spec");
      expect(r.refusal.path).toBe(path);
      expect(r.refusal.message.startsWith(`${path}: `)).toBe(true);
    }
  });

  test("an unknown field's message says so and lists the known ones", () => {
    const r = parseDeployment(bad((d) => (wl(d, 0).memroy = "4GiB")));
    expect(!r.ok && r.refusal.message).toBe("workloads[0].memroy: unknown field (known here: name, type, cpu, memory, rootfs, size, mode, gpus, cache, v4)");
  });

  test("a decoded wire Deployment (every field present with its default) still parses", () => {
    const wire = {
      id: "42", twinId: 7, version: 1, description: "", metadata: "",
      workloads: [{ name: "vm1", type: "zmachine", cpu: 2, memory: String(4 * GiB), rootfs: "0", size: "0", mode: "", gpus: [], cache: "0", v4: false }],
      signatureRequirement: { requests: [], weightRequired: 0 },
    };
    const r = parseDeployment(wire);
    if (!r.ok) throw new Error(r.refusal.message);
    expect(r.value.workloads[0].memory).toBe(4 * GiB);
  });
});
