import { NodeClient } from "../../api/client";
import { loadKeyFile } from "../../identity/keys";
import { farmAnnouncements, powerRequest, powerRows } from "../../power/client";
import { withNats } from "../client";
import { EXIT_FAIL, EXIT_OK, JSON_OPTION, NATS_OPTION, UsageError, intFlag, req, type Command } from "../framework";
import { registryFrom } from "./find";

export const powerCommand: Command = {
  name: "power",
  help: `usage: capacity-agent power status --farm F [--registry FILE] [--expect N,N,...] [--nats URL] [--json]
       capacity-agent power standby --node N --key FILE --twin T [--farm F] [--registry FILE] [--nats URL] [--json]
       capacity-agent power wake --node N --key FILE --twin T [--farm F] [--registry FILE] [--nats URL] [--json]

Power management by the nodes themselves (docs/power.md).
  status    the power state of farm F's nodes, from their signed announcements (capacity.sync.<F>),
            verified against the registry when given. JSON: [{"nodeId","state","since","reason"}],
            state up, standby, waking or down: waking while a node of the farm announces a wake
            it sent to that node (or the node itself, booting), until it announces up (reason: why
            it was woken: usage_high, periodic, random, requested); nodes listed in --expect that
            did not answer and that nobody is waking are down (a powered-off node is silent).
  standby   ask node N to go to standby now (refused when it holds deployments, has a public config
            or is the farm's last up node). Signed by the farm's twin (--key, --twin).
  wake      ask node N to wake (a dev node; a powered-off node is woken by its peers, wake-on-lan).
  --farm F          the farm (status: required; standby/wake: default asked from the node)
  --node N          the node
  --key FILE        the farm twin's key file
  --twin T          the farm twin's id
  --registry FILE   registry to verify against (default $CAPACITY_AGENT_REGISTRY)
  --nats URL        NATS server(s)
  --json            print JSON`,
  positionals: true,
  options: { farm: { type: "string" }, node: { type: "string" }, key: { type: "string" }, twin: { type: "string" }, expect: { type: "string" }, registry: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values, positionals }, io) {
    const sub = positionals[0];
    const registry = registryFrom(values, io.env);
    if (sub === "status") {
      const farm = intFlag(values, "farm", { required: true, min: 1, max: 0xffffffff })!;
      const expected = values.expect === undefined ? [] : String(values.expect).split(",").map((s) => {
        if (!/^\d+$/.test(s.trim())) throw new UsageError(`--expect: expected node ids separated by commas, got ${JSON.stringify(values.expect)}`);
        return Number(s.trim());
      });
      const { announcements, invalid } = await withNats(values, io, (bus, subjects) => farmAnnouncements(bus, subjects, farm, { registry }));
      const rows = powerRows(announcements, expected);
      if (values.json) io.out(JSON.stringify(rows));
      else {
        const n = (state: string): number => rows.filter((r) => r.state === state).length;
        io.out(`farm ${farm}: ${n("up")} up, ${n("waking")} waking, ${n("standby")} standby${n("down") ? `, ${n("down")} down` : ""}, ${rows.length} in all`);
        for (const r of rows) io.out(`  node ${r.nodeId}  ${r.state.padEnd(8)}${r.since ? ` since ${r.since}` : ""}${r.reason ? ` (${r.reason})` : ""}`);
      }
      if (invalid) io.err(`warning: ${invalid} answer${invalid === 1 ? "" : "s"} did not verify and ${invalid === 1 ? "was" : "were"} left out`);
      return EXIT_OK;
    }
    if (sub !== "standby" && sub !== "wake") throw new UsageError(`power: expected status, standby or wake, got ${JSON.stringify(sub ?? "")}`);
    const node = intFlag(values, "node", { required: true, min: 1, max: 0xffffffff })!;
    const twinId = intFlag(values, "twin", { required: true, min: 1, max: 0xffffffff })!;
    const signer = await loadKeyFile(req(values, "key"));
    const reply = await withNats(values, io, async (bus, subjects) => {
      const farmId = intFlag(values, "farm", { min: 1, max: 0xffffffff }) ?? (await new NodeClient(bus, subjects).statusPage(node, 0, 1)).farmId;
      return powerRequest(bus, subjects, { nodeId: node, farmId, kind: sub, twinId, signer }, { registry });
    });
    if (values.json) io.out(JSON.stringify(reply));
    else if (reply.ok) io.out(`node ${node}: ${reply.message}; power ${reply.power}`);
    else io.err(`node ${node}: refused (${reply.code}): ${reply.message}; power ${reply.power}`);
    return reply.ok ? EXIT_OK : EXIT_FAIL;
  },
};
