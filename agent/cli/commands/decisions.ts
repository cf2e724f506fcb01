import type { DecisionEntry } from "../../api/decisions";
import { withNodeClient } from "../client";
import { EXIT_OK, JSON_OPTION, NATS_OPTION, intFlag, type Command } from "../framework";
import { formatBytes, isoTime } from "../format";

const BYTE_UNITS = new Set(["mru", "sru", "hru"]);

/** One decision as people read it: time, op, result (or refusal code with the numbers), deployment, twin, latency. */
export function decisionLine(d: DecisionEntry): string {
  const r = d.rejection;
  const amount = (v: number): string => (r?.unit && BYTE_UNITS.has(r.unit) ? formatBytes(v) : String(v));
  const what = r ? `refused ${r.code}${r.unit ? ` (${r.unit}: requested ${amount(r.requested ?? 0)}, free ${amount(r.free ?? 0)})` : r.path ? ` (${r.path})` : ""}` : d.reason ? `${d.result} (${d.reason})` : d.result;
  const dep = d.deploymentId ? `#${d.deploymentId}${d.version ? ` v${d.version}` : ""}` : "-";
  const latency = d.latencyUs >= 1000 ? `${(d.latencyUs / 1000).toFixed(1)} ms` : `${d.latencyUs} µs`;
  return `${isoTime(d.timeMs)}  ${d.op.padEnd(6)} ${dep.padEnd(12)} twin ${String(d.twinId || "-").padEnd(6)} ${what}  (${latency})`;
}

export const decisionsCommand: Command = {
  name: "decisions",
  help: `usage: capacity-agent decisions --node N [--limit K] [--nats URL] [--json]

Node N's recent admission decisions, newest first (tfgrid.v1.node.<N>.decisions; the reply is
signed by the node): every deploy and delete it answered, accepted or refused, from a ring of the
last 100 it keeps in memory (a restart empties it; requests shed as rate_limited are not kept).
JSON: {"nodeId","total","kept","decisions":[{"seq","timeMs","op","result","deploymentId","version",
"twinId","latencyUs","rejection":{"code","message","unit","requested","free","path"},"reason"}]}
with op deploy or delete; result create, update, duplicate, delete, already_deleted or refused (then
"rejection" says why; unit, requested and free for insufficient_capacity, in bytes for mru/sru/hru);
"reason" grace_expired on a delete the node made itself (the twin's grace ended in debt);
latencyUs from the request's arrival to its reply; total counts every decision since the agent started.
  --node N          the node
  --limit K         at most K decisions (default: all the node keeps)
  --nats URL        NATS server(s)
  --json            print JSON`,
  options: { node: { type: "string" }, limit: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values }, io) {
    const node = intFlag(values, "node", { required: true, min: 1, max: 0xffffffff })!;
    const limit = intFlag(values, "limit", { min: 1, max: 100_000 }) ?? 0;
    const v = await withNodeClient(values, io, (client) => client.decisions(node, limit));
    if (values.json) {
      io.out(JSON.stringify({ nodeId: v.nodeId, total: v.total, kept: v.kept, decisions: v.decisions }));
    } else {
      io.out(`node ${v.nodeId}: ${v.total} decision${v.total === 1 ? "" : "s"} since its start${v.decisions.length ? `, the last ${v.decisions.length} (newest first):` : ""}`);
      for (const d of v.decisions) io.out(`  ${decisionLine(d)}`);
    }
    return EXIT_OK;
  },
};
