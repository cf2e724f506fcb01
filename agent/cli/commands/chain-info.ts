import { EXIT_OK, type Command } from "../framework";
import { TFCHAIN_FLAGS_HELP, TFCHAIN_OPTIONS, withTfchain } from "./tfchain-common";

export const chainInfoCommand: Command = {
  name: "chain-info",
  help: `usage: capacity-agent chain-info --chain-url URL --key FILE [--json]

Looks up the key's account on tfchain (twinIdByAccountID, nodeIdByTwinID, nodes, farms) and prints
{"address","twinId","farmId","nodeId"}, null where absent. farmId is the node's farm, or else a
farm the twin owns.
${TFCHAIN_FLAGS_HELP}`,
  options: TFCHAIN_OPTIONS,
  async run({ values }, io) {
    return withTfchain(values, async (backend, signer) => {
      const twinId = (await backend.twinIdOf(signer.address)) ?? null;
      const nodeId = twinId === null ? null : ((await backend.nodeIdOfTwin(twinId)) ?? null);
      let farmId: number | null = null;
      if (nodeId !== null) farmId = (await backend.node(nodeId))?.farmId ?? null;
      else if (twinId !== null) farmId = (await backend.farmOfTwin(twinId)) ?? null;
      const info = { address: signer.address, twinId, farmId, nodeId };
      if (values.json) io.out(JSON.stringify(info));
      else io.out([`address  ${info.address}`, `twin     ${twinId ?? "-"}`, `farm     ${farmId ?? "-"}`, `node     ${nodeId ?? "-"}`].join("\n"));
      return EXIT_OK;
    });
  },
};
