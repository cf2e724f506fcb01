import { queryPeers } from "../../gossip/client";
import { withNats } from "../client";
import { EXIT_OK, JSON_OPTION, NATS_OPTION, intFlag, type Command } from "../framework";
import { registryFrom } from "./find";
import { unitsLine } from "../format";

export const peersCommand: Command = {
  name: "peers",
  help: `usage: capacity-agent peers --node N [--registry FILE] [--nats URL] [--json]

Asks node N (tfgrid.v1.node.<N>.peers) for its view: the latest verified announcement of every
other node it listens to (its farm, or the grid), by node id. The reply is signed by node N and
every announcement in it by the node it names; both are checked (against the registry's keys
when a registry is given). A node is not in its own view.
JSON: [{"nodeId","farmId","sequence","free":{"cru","mru","sru","hru","ipv4u","gpu"},"ageMs"}]
where ageMs is the time since node N last heard from that peer (its own clock).
  --node N          the node whose view to show
  --registry FILE   registry to verify against (default $CAPACITY_AGENT_REGISTRY)
  --nats URL        NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json            print JSON`,
  options: { node: { type: "string" }, registry: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values }, io) {
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const registry = registryFrom(values, io.env);
    const view = await withNats(values, io, (bus, subjects) => queryPeers(bus, subjects, node, { registry }));
    const rows = view.peers.map((p) => ({ nodeId: p.announcement.nodeId, farmId: p.announcement.farmId, sequence: p.announcement.sequence, free: p.announcement.free, ageMs: p.ageMs }));
    if (values.json) {
      io.out(JSON.stringify(rows));
    } else {
      io.out(`node ${node} holds ${rows.length} peer${rows.length === 1 ? "" : "s"}${view.truncated ? " (truncated to one message)" : ""}:`);
      for (const r of rows) io.out(`  node ${r.nodeId} (farm ${r.farmId})  seq ${r.sequence}  heard ${(r.ageMs / 1000).toFixed(1)} s ago  free ${unitsLine(r.free)}`);
    }
    if (view.invalid) io.err(`warning: ${view.invalid} entr${view.invalid === 1 ? "y" : "ies"} in node ${node}'s view did not verify and were left out`);
    return EXIT_OK;
  },
};
