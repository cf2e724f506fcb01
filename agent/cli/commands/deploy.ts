import * as fs from "node:fs";
import { buildDeployRequest } from "../../api/messages";
import { parseDeployment, type DeploymentSpec } from "../../admission/spec";
import { loadKeyFile, type Signer } from "../../identity/keys";
import { withNodeClient } from "../client";
import { EXIT_FAIL, EXIT_OK, JSON_OPTION, NATS_OPTION, UsageError, intFlag, req, type Command, type Io } from "../framework";
import type { Decided } from "../../api/messages";
import { deployAuto } from "./deploy-auto";

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
  if (!p.ok) return { ok: false, out: { accepted: false, code: "invalid_spec", message: p.refusal.message, path: p.refusal.path } };
  return { ok: true, spec: p.value };
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

export const deployCommand: Command = {
  name: "deploy",
  help: `usage: capacity-agent deploy --node N --file FILE --key FILE [--sign TWIN=KEYFILE ...] [--nats URL] [--json]
       capacity-agent deploy --auto --file FILE --key FILE [--farm F] [--registry FILE] [--sign ...] [--nats URL] [--json]

Validates the deployment file, signs it with the owner's key (and any co-signers), sends it to
node N and prints the node's answer. JSON: {"accepted","code","message",...}; with a capacity
refusal also "unit", "requested" and "free"; with an invalid file "path".
Exit 0 when accepted, 1 when refused or failed, 2 on a usage error.
  --node N            the node to deploy on
  --auto              instead of --node: find the nodes that fit (capacity-agent find), deploy on the
                      best, and when it answers insufficient_capacity (another deployer won the
                      race) or node_standby, try the next; "nodeId" in the answer says where it landed
  --farm F            with --auto: only nodes of farm F
  --registry FILE     with --auto: verify find answers against this registry ($CAPACITY_AGENT_REGISTRY)
  --file FILE         the deployment (JSON; see README)
  --key FILE          the owning twin's key file
  --sign TWIN=FILE    a co-signer for a multi-signature requirement (repeatable)
  --nats URL          NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json              print JSON`,
  options: { node: { type: "string" }, file: { type: "string" }, key: { type: "string" }, sign: { type: "string", multiple: true }, auto: { type: "boolean" }, farm: { type: "string" }, registry: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values }, io) {
    if (values.auto === true) {
      if (values.node !== undefined) throw new UsageError("give either --node N or --auto, not both");
      return deployAuto(values, io);
    }
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const file = req(values, "file");
    req(values, "key");
    const read = readDeploymentFile(file);
    if (!read.ok) return printDecision(io, read.out, values.json === true);
    const request = buildDeployRequest(read.spec, await signersFor(read.spec, values));
    const d = await withNodeClient(values, io, (client) => client.deploy(node, request));
    return printDecision(io, decisionOutput(d, node), values.json === true);
  },
};
