import { withNodeClient } from "../client";
import { EXIT_OK, JSON_OPTION, NATS_OPTION, intFlag, type Command } from "../framework";
import { isoTime, unitsLine } from "../format";
import type { UsageStatusView } from "../../api/messages";

function usageLine(u: UsageStatusView): string {
  const through = isoTime(u.meteredUntilMs);
  const chain = u.chain ? `delivered up to #${u.deliveredSequence}, ${u.pending} pending${u.lastCode ? ` (chain said ${u.lastCode})` : ""}` : "kept, not sent (chain disabled)";
  const grace = u.twinsInGrace?.length ? `; twins in grace (in debt on the chain, new deployments refused): ${u.twinsInGrace.join(", ")}` : "";
  return `usage       proofs every ${u.periodMs / 1000} s, built up to #${u.lastSequence} (metered until ${through}), ${chain}${grace}`;
}

export const statusCommand: Command = {
  name: "status",
  help: `usage: capacity-agent status --node N [--nats URL] [--json]

JSON: {"nodeId","farmId","total","reserved","reservable","used","free","power","deployments":[{"id","twinId","version","units"}],
       "usage":{"periodMs","lastSequence","deliveredSequence","pending","meteredUntilMs","lastCode","chain","twinsInGrace"}}
with units cru, mru, sru, hru, ipv4u, gpu (memory and storage in bytes). The node answers in pages
(100 deployments by default, up to 1000); status fetches every page: "deployments" is the full list. "usage" tells the last
usage proof built and the last the chain acknowledged, how many wait, and the chain's last answer.
  --node N     the node
  --nats URL   NATS server(s)
  --json       print JSON`,
  options: { node: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values }, io) {
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const s = await withNodeClient(values, io, (client) => client.status(node));
    if (values.json) {
      io.out(
        JSON.stringify({
          nodeId: s.nodeId,
          farmId: s.farmId,
          twinId: s.twinId,
          total: s.total,
          reserved: s.reserved,
          allocatable: s.allocatable,
          reservable: s.reservable,
          used: s.used,
          free: s.free,
          power: s.power,
          agentVersion: s.agentVersion,
          deployments: s.deployments,
          usage: s.usage,
          storeFull: s.storeFull,
        }),
      );
    } else {
      io.out(
        [
          `node ${s.nodeId} (farm ${s.farmId}, twin ${s.twinId}), power ${s.power}, agent ${s.agentVersion}`,
          `total       ${unitsLine(s.total)}`,
          `reserved    ${unitsLine(s.reserved)}`,
          `reservable  ${unitsLine(s.reservable)}`,
          `used        ${unitsLine(s.used)}`,
          `free        ${unitsLine(s.free)}`,
          `deployments ${s.deployments.length}`,
          ...s.deployments.map((d) => `  ${d.id} v${d.version} twin ${d.twinId}: ${unitsLine(d.units)}`),
          ...(s.usage ? [usageLine(s.usage)] : []),
          ...(s.storeFull ? ["store       FULL: new deployments, updates and deletes are refused (store_full) until the node's disk has room"] : []),
        ].join("\n"),
      );
    }
    return EXIT_OK;
  },
};
