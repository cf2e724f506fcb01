import { parseSize } from "../capacity/size";
import { ok, refused, type Result } from "../result";
import { GiB, MiB, addUnits, zeroUnits, type Units } from "../capacity/units";
import { AgentError } from "../errors";
import type { WireDeploymentInput } from "../wire/generated";
import { intInRange } from "../util/ints";

/** Workload types (GRID.md) and what each consumes. */
export const WORKLOAD_TYPES = [
  "zmachine",
  "zmount",
  "volume",
  "zdb",
  "qsfs",
  "ipv4",
  "ip",
  "network",
  "gateway-name-proxy",
  "gateway-fqdn-proxy",
  "zlogs",
] as const;
export type WorkloadType = (typeof WORKLOAD_TYPES)[number];

export interface WorkloadSpec {
  name: string;
  type: WorkloadType;
  cpu: number;
  memory: number;
  rootfs: number;
  size: number;
  mode: string;
  gpus: string[];
  cache: number;
  v4: boolean;
}

export interface SignatureRequestSpec {
  twinId: number;
  weight: number;
  required: boolean;
}

export interface DeploymentSpec {
  id: number;
  twinId: number;
  version: number;
  workloads: WorkloadSpec[];
  signatureRequirement: { weightRequired: number; requests: SignatureRequestSpec[] };
  description: string;
  metadata: string;
}

export interface SpecError {
  code: "invalid_spec";
  path: string;
  message: string;
}

export type SpecResult = Result<DeploymentSpec, SpecError>;

export const LIMITS = {
  maxWorkloads: 256,
  maxSignatureRequests: 64,
  maxNameLength: 64,
  maxDescription: 4096,
  maxMetadata: 16384,
  maxGpusPerMachine: 16,
  maxCpu: 1024,
};

/** zos: a zmachine needs cpu >= 1 and memory >= 250 MB (zos MB = MiB). */
export const MIN_MACHINE_MEMORY = 250 * MiB;

/** zos rootfs minimum: 500 MB when floor(cpu x memory / 8 GiB) == 0, else 2 GiB (zos MB = MiB). */
export function rootfsMinimum(cpu: number, memory: number): number {
  return Math.floor((cpu * memory) / (8 * GiB)) === 0 ? 500 * MiB : 2 * GiB;
}

export function workloadUnits(w: WorkloadSpec): Units {
  const u = zeroUnits();
  switch (w.type) {
    case "zmachine":
      u.cru = w.cpu;
      u.mru = w.memory;
      u.sru = Math.max(w.rootfs, rootfsMinimum(w.cpu, w.memory));
      u.gpu = w.gpus.length;
      break;
    case "zmount":
    case "volume":
      u.sru = w.size;
      break;
    case "zdb":
      u.hru = w.size;
      break;
    case "qsfs":
      u.cru = 1;
      u.mru = 1 * GiB;
      u.sru = w.cache;
      break;
    case "ipv4":
      u.ipv4u = 1;
      break;
    case "ip":
      u.ipv4u = w.v4 ? 1 : 0;
      break;
    case "network":
    case "gateway-name-proxy":
    case "gateway-fqdn-proxy":
    case "zlogs":
      break;
  }
  return u;
}

export function deploymentUnits(spec: DeploymentSpec): Units {
  return spec.workloads.reduce((total, w) => addUnits(total, workloadUnits(w)), zeroUnits());
}

class Invalid extends AgentError<"invalid_spec"> {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super("invalid_spec", message);
  }
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Invalid(path, "expected an object");
  return v as Record<string, unknown>;
}

/**
 * The fields each level may carry: those of the wire messages (proto/.../node.proto, camelCase),
 * which is also what a decoded wire message holds. Anything else is a typo or a field this agent
 * does not know, and is refused rather than silently ignored ("memroy" would deploy no memory).
 */
const FIELDS = {
  deployment: ["id", "twinId", "version", "workloads", "signatureRequirement", "description", "metadata"],
  workload: ["name", "type", "cpu", "memory", "rootfs", "size", "mode", "gpus", "cache", "v4"],
  signatureRequirement: ["requests", "weightRequired"],
  signatureRequest: ["twinId", "weight", "required"],
} as const;

/** The sizing fields each workload type takes (besides name and type); GRID.md says what they mean. */
const TYPE_FIELDS: Record<WorkloadType, readonly string[]> = {
  zmachine: ["cpu", "memory", "rootfs", "gpus"],
  zmount: ["size"],
  volume: ["size"],
  zdb: ["size", "mode"],
  qsfs: ["cache"],
  ipv4: [],
  ip: ["v4"],
  network: [],
  "gateway-name-proxy": [],
  "gateway-fqdn-proxy": [],
  zlogs: [],
};

/** A field left at its default, as a file omits it or a decoded wire message holds it. */
function isDefault(v: unknown): boolean {
  return v === undefined || v === null || v === 0 || v === "0" || v === "" || v === false || (Array.isArray(v) && v.length === 0);
}

function known(o: Record<string, unknown>, fields: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!fields.includes(k)) {
      const p = path === "$" ? k : `${path}.${k}`;
      throw new Invalid(p, `unknown field (known here: ${fields.join(", ")})`);
    }
  }
}

function int(v: unknown, path: string, min: number, max: number): number {
  const r = intInRange(v, min, max, { digits: true });
  if (!r.ok) throw new Invalid(path, r.problem);
  return r.value;
}

function size(v: unknown, path: string): number {
  const r = parseSize(v);
  if (!r.ok) throw new Invalid(path, r.refusal);
  return r.value;
}

function str(v: unknown, path: string, max: number): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new Invalid(path, "expected a string");
  if (v.length > max) throw new Invalid(path, `longer than ${max} characters`);
  return v;
}

const NAME_RE = /^[A-Za-z0-9_-]+$/;
const U32 = 0xffffffff;

function workload(raw: unknown, path: string): WorkloadSpec {
  const o = obj(raw, path);
  known(o, FIELDS.workload, path);
  const name = str(o.name, `${path}.name`, LIMITS.maxNameLength);
  if (!name || !NAME_RE.test(name)) throw new Invalid(`${path}.name`, "expected a name of letters, digits, _ or -");
  if (typeof o.type !== "string" || !(WORKLOAD_TYPES as readonly string[]).includes(o.type)) {
    throw new Invalid(`${path}.type`, `unknown workload type ${JSON.stringify(o.type)} (known: ${WORKLOAD_TYPES.join(", ")})`);
  }
  const type = o.type as WorkloadType;
  // a field another type takes is not ignored ("memory" on a zmount would reserve nothing)
  for (const k of FIELDS.workload) {
    if (k === "name" || k === "type" || TYPE_FIELDS[type].includes(k) || isDefault(o[k])) continue;
    const takes = TYPE_FIELDS[type].length ? `takes ${TYPE_FIELDS[type].join(", ")}` : "takes no sizing fields";
    throw new Invalid(`${path}.${k}`, `not a field of a ${type} workload (a ${type} ${takes})`);
  }
  const w: WorkloadSpec = { name, type, cpu: 0, memory: 0, rootfs: 0, size: 0, mode: "", gpus: [], cache: 0, v4: false };
  const positiveSize = (field: string): number => {
    const s = size(o[field], `${path}.${field}`);
    if (s <= 0) throw new Invalid(`${path}.${field}`, "must be greater than zero");
    return s;
  };
  switch (type) {
    case "zmachine": {
      w.cpu = int(o.cpu, `${path}.cpu`, 1, LIMITS.maxCpu);
      w.memory = size(o.memory, `${path}.memory`);
      if (w.memory < MIN_MACHINE_MEMORY) throw new Invalid(`${path}.memory`, `a zmachine needs at least 250 MiB of memory, got ${w.memory} bytes`);
      w.rootfs = o.rootfs === undefined || o.rootfs === 0 ? 0 : size(o.rootfs, `${path}.rootfs`);
      if (o.gpus !== undefined) {
        if (!Array.isArray(o.gpus)) throw new Invalid(`${path}.gpus`, "expected a list of GPU ids");
        if (o.gpus.length > LIMITS.maxGpusPerMachine) throw new Invalid(`${path}.gpus`, `at most ${LIMITS.maxGpusPerMachine} GPUs`);
        const seen = new Set<string>();
        o.gpus.forEach((g, i) => {
          if (typeof g !== "string" || g.length === 0 || g.length > 128) throw new Invalid(`${path}.gpus[${i}]`, "expected a GPU id");
          if (seen.has(g)) throw new Invalid(`${path}.gpus[${i}]`, `GPU ${g} is listed twice`);
          seen.add(g);
        });
        w.gpus = o.gpus as string[];
      }
      break;
    }
    case "zmount":
    case "volume":
      w.size = positiveSize("size");
      break;
    case "zdb":
      w.size = positiveSize("size");
      w.mode = o.mode === undefined || o.mode === "" ? "user" : String(o.mode);
      if (w.mode !== "user" && w.mode !== "seq") throw new Invalid(`${path}.mode`, 'expected "user" or "seq"');
      break;
    case "qsfs":
      w.cache = positiveSize("cache");
      break;
    case "ip":
      if (o.v4 !== undefined && typeof o.v4 !== "boolean") throw new Invalid(`${path}.v4`, "expected true or false");
      w.v4 = o.v4 === true;
      break;
    default:
      break;
  }
  return w;
}

/**
 * Validate a deployment, from the JSON file a deployer writes or from a decoded wire message
 * (both have the same camelCase shape). Sizes are bytes or strings with units. The first problem
 * found is reported with the path of the bad field.
 */
export function parseDeployment(raw: unknown): SpecResult {
  try {
    const o = obj(raw, "$");
    known(o, FIELDS.deployment, "$");
    const id = int(o.id, "id", 1, Number.MAX_SAFE_INTEGER);
    const twinId = int(o.twinId, "twinId", 1, U32);
    const version = int(o.version ?? 0, "version", 0, U32);
    if (!Array.isArray(o.workloads)) throw new Invalid("workloads", "expected a list of workloads");
    if (o.workloads.length === 0) throw new Invalid("workloads", "a deployment needs at least one workload (to remove a deployment, delete it)");
    if (o.workloads.length > LIMITS.maxWorkloads) throw new Invalid("workloads", `at most ${LIMITS.maxWorkloads} workloads`);
    const workloads = o.workloads.map((w, i) => workload(w, `workloads[${i}]`));
    const names = new Set<string>();
    workloads.forEach((w, i) => {
      if (names.has(w.name)) throw new Invalid(`workloads[${i}].name`, `workload name ${w.name} is used twice`);
      names.add(w.name);
    });
    let requirement: DeploymentSpec["signatureRequirement"];
    const sr = o.signatureRequirement;
    if (sr !== null && typeof sr === "object" && !Array.isArray(sr)) known(sr as Record<string, unknown>, FIELDS.signatureRequirement, "signatureRequirement");
    const srEmpty = sr === undefined || sr === null || (typeof sr === "object" && !Array.isArray(sr) && ((sr as { requests?: unknown[] }).requests ?? []).length === 0 && !(sr as { weightRequired?: number }).weightRequired);
    if (srEmpty) {
      requirement = { weightRequired: 1, requests: [{ twinId, weight: 1, required: true }] };
    } else {
      const so = obj(sr, "signatureRequirement");
      if (!Array.isArray(so.requests) || so.requests.length === 0) throw new Invalid("signatureRequirement.requests", "expected a non-empty list");
      if (so.requests.length > LIMITS.maxSignatureRequests) throw new Invalid("signatureRequirement.requests", `at most ${LIMITS.maxSignatureRequests} requests`);
      const requests = so.requests.map((r, i) => {
        const p = `signatureRequirement.requests[${i}]`;
        const ro = obj(r, p);
        known(ro, FIELDS.signatureRequest, p);
        if (ro.required !== undefined && typeof ro.required !== "boolean") throw new Invalid(`${p}.required`, "expected true or false");
        return { twinId: int(ro.twinId, `${p}.twinId`, 1, U32), weight: int(ro.weight, `${p}.weight`, 1, 1_000_000), required: ro.required === true };
      });
      const twins = new Set<number>();
      requests.forEach((r, i) => {
        if (twins.has(r.twinId)) throw new Invalid(`signatureRequirement.requests[${i}].twinId`, `twin ${r.twinId} is listed twice`);
        twins.add(r.twinId);
      });
      const owner = requests.find((r) => r.twinId === twinId);
      if (!owner || !owner.required) throw new Invalid("signatureRequirement.requests", `the owning twin ${twinId} must be listed as required`);
      const weightRequired = int(so.weightRequired, "signatureRequirement.weightRequired", 1, 64_000_000);
      const reachable = requests.reduce((s, r) => s + r.weight, 0);
      if (weightRequired > reachable) throw new Invalid("signatureRequirement.weightRequired", `${weightRequired} is more than all listed weights together (${reachable})`);
      requirement = { weightRequired, requests };
    }
    return ok({
      id,
      twinId,
      version,
      workloads,
      signatureRequirement: requirement,
      description: str(o.description, "description", LIMITS.maxDescription),
      metadata: str(o.metadata, "metadata", LIMITS.maxMetadata),
    });
  } catch (err) {
    if (err instanceof Invalid) return refused({ code: "invalid_spec", path: err.path, message: `${err.path}: ${err.message}` });
    throw err;
  }
}

/** The spec as the wire Deployment message wants it (sizes as bytes). */
export function specToWire(spec: DeploymentSpec): WireDeploymentInput {
  return {
    id: spec.id,
    twinId: spec.twinId,
    version: spec.version,
    workloads: spec.workloads.map((w) => ({ ...w })),
    signatureRequirement: spec.signatureRequirement,
    description: spec.description,
    metadata: spec.metadata,
  };
}
