import { withNodeClient } from "../client";
import { buildDeployRequest } from "../../api/messages";
import { decisionOutput, printDecision, readDeploymentFile, signersFor } from "../deployment";
import { JSON_OPTION, NATS_OPTION, UsageError, intFlag, req, type Command } from "../framework";
import { deployAuto } from "./deploy-auto";

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
