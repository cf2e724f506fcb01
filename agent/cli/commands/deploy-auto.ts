import { deploymentUnits } from "../../admission/spec";
import { NodeClient, NodeUnreachable } from "../../api/client";
import { buildDeployRequest, type Decided } from "../../api/messages";
import { formatBytes } from "../../capacity/size";
import { UNIT_NAMES, type Units } from "../../capacity/units";
import type { DeploymentSpec } from "../../admission/spec";
import { findCapacity } from "../../gossip/find";
import { loadKeyFile } from "../../identity/keys";
import type { Announcement } from "../../gossip/wire";
import { withNats } from "../client";
import { intFlag, req, type Io } from "../framework";
import { decisionOutput, printDecision, readDeploymentFile, signersFor, type DecisionOutput } from "../deployment";
import { NO_REGISTRY_NOTE, registryFrom } from "./find";

/** How long deploy --auto waits for a node it woke (a real machine boots in a few minutes). */
const WAKE_WAIT_MS = 300_000;

/** Refusals that say "not on this node, right now": the next candidate may take it. */
const TRY_NEXT = new Set(["insufficient_capacity", "node_standby"]);

function describe(u: Units): string {
  const parts = UNIT_NAMES.filter((k) => u[k] > 0).map((k) => `${k} ${k === "mru" || k === "sru" || k === "hru" ? formatBytes(u[k]) : u[k]}`);
  return parts.length ? parts.join(", ") : "nothing";
}

/** True when nobody listens on the node's subject (the request reached no one, so retrying elsewhere is safe). */
function noResponders(err: NodeUnreachable): boolean {
  const c = err.cause;
  const { RequestError } = require("@nats-io/transport-node") as typeof import("@nats-io/transport-node");
  return c instanceof RequestError && c.isNoResponders();
}

/**
 * deploy --auto: find the nodes that fit the deployment (verified, ranked best first), send the
 * signed request to the best, and when it answers `insufficient_capacity` (another deployer won
 * the race for that room since it answered find) or `node_standby`, try the next. Any other
 * refusal (bad signature, invalid spec, unauthorized, stale version) would be the same everywhere
 * and ends the attempt. A node that does not answer in time ends it too: it may have applied the
 * deployment, and the same contract must not land on two nodes. Progress goes to stderr.
 *
 * One deployment id belongs to one node: find carries the id, and a node that holds it says so
 * (whatever its room). Then the request goes to that node, as an update (a higher version), or
 * gets the node's own answer (`duplicate` for the same version and bytes, `stale_version` for an
 * older one); it is refused locally with `already_deployed` when it cannot go there (held by
 * several nodes, by another twin, outside --farm, or the holder stopped answering).
 */
export async function deployAuto(values: Record<string, unknown>, io: Io): Promise<number> {
  const json = values.json === true;
  const file = req(values, "file");
  req(values, "key");
  const farmId = intFlag(values, "farm", { max: 0xffffffff }) ?? 0;
  const read = readDeploymentFile(file);
  if (!read.ok) return printDecision(io, read.out, json);
  const request = buildDeployRequest(read.spec, await signersFor(read.spec, values));
  const want = deploymentUnits(read.spec);
  const registry = registryFrom(values, io.env);
  return withNats(values, io, async (nc, subjects) => {
    const spec = read.spec;
    let outcome = await findCapacity(nc, subjects, { want, farmId, limit: 0, deploymentId: spec.id, wakeable: true }, { registry, signal: io.signal });
    if (!registry) io.err(NO_REGISTRY_NOTE);
    const client = new NodeClient(nc, subjects);
    if (outcome.holders.length > 0) return toHolder(io, client, spec, outcome.holders, farmId, request, json);
    if (outcome.found.length === 0 && outcome.wakeable.length > 0) {
      // no awake node fits: wake the best sleeping one that does, wait for it, deploy there
      const sleeper = outcome.wakeable[0]!;
      io.err(`no awake node fits; waking node ${sleeper.nodeId} (farm ${sleeper.farmId}, in standby)`);
      const { wakeAndWait } = require("../../power/client") as typeof import("../../power/client"); // loaded on use (fast CLI --help)
      const up = await wakeAndWait(nc, subjects, sleeper, { twinId: spec.twinId, signer: await loadKeyFile(req(values, "key")) }, { registry, timeoutMs: WAKE_WAIT_MS, log: (l) => io.err(l) });
      if (!up) return printDecision(io, { accepted: false, code: "node_standby", message: `node ${sleeper.nodeId} fits but did not wake within ${WAKE_WAIT_MS / 1000} s; try again later` }, json);
      outcome = { ...outcome, found: [sleeper] };
    }
    if (outcome.found.length === 0) {
      return printDecision(io, { accepted: false, code: "insufficient_capacity", message: `no node answered find with room for ${describe(want)}${farmId ? ` in farm ${farmId}` : ""}` }, json);
    }
    io.err(`candidates, best first: ${outcome.found.map((a) => a.nodeId).join(", ")}`);
    let last: DecisionOutput | undefined;
    for (const cand of outcome.found) {
      let d: Decided;
      try {
        d = await client.deploy(cand.nodeId, request);
      } catch (err) {
        if (err instanceof NodeUnreachable && noResponders(err)) {
          io.err(`node ${cand.nodeId} is not listening any more; trying the next node`);
          continue;
        }
        throw err;
      }
      const out = decisionOutput(d, cand.nodeId);
      if (d.accepted || !TRY_NEXT.has(d.code)) return printDecision(io, out, json);
      io.err(`node ${cand.nodeId} refused [${d.code}]: ${d.message}; trying the next node`);
      last = out;
    }
    const tried = outcome.found.map((a) => a.nodeId).join(", ");
    return printDecision(io, last ? { ...last, message: `every fitting node refused (tried ${tried}); last: ${last.message}` } : { accepted: false, code: "insufficient_capacity", message: `no fitting node was reachable (tried ${tried})` }, json);
  });
}

/** The id is already deployed where find could see it: send the request there, or refuse. */
async function toHolder(io: Io, client: NodeClient, spec: DeploymentSpec, holders: Announcement[], farmId: number, request: Uint8Array, json: boolean): Promise<number> {
  const refuse = (message: string, nodes: number[]): number => printDecision(io, { accepted: false, code: "already_deployed", message, id: spec.id, version: spec.version, nodeId: nodes[0], nodes }, json);
  const where = holders.map((h) => `node ${h.nodeId} (farm ${h.farmId}, version ${h.holds!.version})`).join(", ");
  if (holders.length > 1) {
    return refuse(
      `deployment ${spec.id} is already on more than one node: ${where}. One id belongs to one node: delete it from all but one (capacity-agent delete --node N --id ${spec.id} --key KEY), then update that one`,
      holders.map((h) => h.nodeId),
    );
  }
  const h = holders[0];
  const held = h.holds!;
  if (held.twinId !== spec.twinId) {
    return refuse(`deployment ${spec.id} already exists on node ${h.nodeId} and belongs to twin ${held.twinId}, not twin ${spec.twinId}; choose another id`, [h.nodeId]);
  }
  if (farmId && h.farmId !== farmId) {
    return refuse(`deployment ${spec.id} is already on node ${h.nodeId} in farm ${h.farmId}, outside --farm ${farmId}; update it there (drop --farm) or delete it first`, [h.nodeId]);
  }
  io.err(
    spec.version > held.version
      ? `deployment ${spec.id} is already on node ${h.nodeId} at version ${held.version}; sending version ${spec.version} there as an update`
      : `deployment ${spec.id} is already on node ${h.nodeId} at version ${held.version}; sending version ${spec.version} there (an update needs a higher version)`,
  );
  let d: Decided;
  try {
    d = await client.deploy(h.nodeId, request);
  } catch (err) {
    if (err instanceof NodeUnreachable) {
      return refuse(`deployment ${spec.id} is on node ${h.nodeId}, which does not answer now (${err.message}); try again later. It is not placed on another node`, [h.nodeId]);
    }
    throw err;
  }
  return printDecision(io, decisionOutput(d, h.nodeId), json);
}
