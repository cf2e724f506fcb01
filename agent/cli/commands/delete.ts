import { buildDeleteRequest } from "../../api/messages";
import { loadKeyFile } from "../../identity/keys";
import { withNodeClient } from "../client";
import { JSON_OPTION, NATS_OPTION, intFlag, req, type Command } from "../framework";
import { decisionOutput, printDecision } from "../deployment";

export const deleteCommand: Command = {
  name: "delete",
  help: `usage: capacity-agent delete --node N --id ID --key FILE [--twin T] [--nats URL] [--json]

Sends a delete request signed with the owner's key. Output as for deploy:
{"accepted","code","message",...}. Exit 0 when accepted, 1 when refused.
  --node N     the node
  --id ID      the deployment (contract) id
  --key FILE   the owning twin's key file
  --twin T     the owning twin id (default: asked from the node)
  --nats URL   NATS server(s)
  --json       print JSON`,
  options: { node: { type: "string" }, id: { type: "string" }, key: { type: "string" }, twin: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values }, io) {
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const id = intFlag(values, "id", { required: true })!;
    const signer = await loadKeyFile(req(values, "key"));
    let twin = intFlag(values, "twin", { max: 0xffffffff });
    return withNodeClient(values, io, async (client) => {
      if (twin === undefined) {
        const got = await client.get(node, id);
        if (!got.found) return printDecision(io, { accepted: false, code: got.code, message: got.message, nodeId: node, id }, values.json === true);
        twin = got.twinId;
      }
      const d = await client.delete(node, buildDeleteRequest(id, twin, signer, Date.now()));
      return printDecision(io, decisionOutput(d, node), values.json === true);
    });
  },
};
