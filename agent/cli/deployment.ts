/** Reading, signing and printing a deployment: shared by `deploy` and `deploy --auto`. */
import * as fs from "node:fs";
import { parseDeployment, type DeploymentSpec } from "../admission/spec";
import { loadKeyFile, type Signer } from "../identity/keys";
import { EXIT_FAIL, EXIT_OK, UsageError, req, type Io } from "./framework";
import type { Decided } from "../api/messages";

export interface DecisionOutput {
  accepted: boolean;
  code: string;
  message: string;
  nodeId?: number;
  id?: number;
  version?: number;
  unit?: string;
  requested?: number;
  free?: number;
  path?: string;
  /** already_deployed: every node find saw holding the id */
  nodes?: number[];
}

export function decisionOutput(d: Decided, nodeId: number): DecisionOutput {
  const o: DecisionOutput = { accepted: d.accepted, code: d.code, message: d.message, nodeId, id: d.id, version: d.version };
  if (d.rejection?.unit) Object.assign(o, { unit: d.rejection.unit, requested: d.rejection.requested, free: d.rejection.free });
  if (d.rejection?.path) o.path = d.rejection.path;
  return o;
}

export function printDecision(io: Io, o: DecisionOutput, json: boolean): number {
  if (json) io.out(JSON.stringify(o));
  else if (o.accepted) io.out(`accepted (${o.code}) by node ${o.nodeId ?? "?"}: ${o.message}`);
  else io.out(`refused [${o.code}]: ${o.message}`);
  return o.accepted ? EXIT_OK : EXIT_FAIL;
}

/** Read and validate a deployment file; a bad file is a refusal with code invalid_spec. */
export function readDeploymentFile(file: string): { ok: true; spec: DeploymentSpec } | { ok: false; out: DecisionOutput } {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    return { ok: false, out: { accepted: false, code: "invalid_spec", message: `cannot read ${file} as JSON: ${(err as Error).message}` } };
  }
  const p = parseDeployment(raw);
  if (!p.ok) return { ok: false, out: { accepted: false, code: "invalid_spec", message: p.error.message, path: p.error.path } };
  return { ok: true, spec: p.spec };
}

/** The owner's key plus co-signers given as --sign TWIN=FILE. */
export async function signersFor(spec: DeploymentSpec, values: Record<string, unknown>): Promise<Array<{ twinId: number; signer: Signer }>> {
  const signers = [{ twinId: spec.twinId, signer: await loadKeyFile(req(values, "key")) }];
  for (const s of (values.sign as string[] | undefined) ?? []) {
    const m = /^(\d+)=(.+)$/.exec(s);
    if (!m) throw new UsageError(`--sign expects TWIN=KEYFILE, got ${JSON.stringify(s)}`);
    signers.push({ twinId: Number(m[1]), signer: await loadKeyFile(m[2]) });
  }
  return signers;
}
