import { EXIT_FAIL, EXIT_OK, UsageError, type Command } from "../framework";
import { TFCHAIN_FLAGS_HELP, TFCHAIN_OPTIONS, withTfchain } from "./tfchain-common";

export const twinCommand: Command = {
  name: "twin",
  help: `usage: capacity-agent twin register --chain-url URL --key FILE [--json]

Registers a twin for the key's account on tfchain (accepting the terms and conditions first when
the account has not, then createTwin), signed by the key; the chain assigns the id. A twin that
exists already is reported, not created twice. Prints {"twinId","address"} with --json.
The account pays the fees: fund it first (on a dev chain: scripts/tfchain-dev fund --url URL ADDRESS).
${TFCHAIN_FLAGS_HELP}`,
  options: TFCHAIN_OPTIONS,
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length !== 1 || positionals[0] !== "register") throw new UsageError(`expected "twin register", got "twin ${positionals.join(" ")}"`);
    return withTfchain(values, async (backend, signer) => {
      const r = await backend.ensureTwin(signer);
      if (!r.ok) {
        io.err(`capacity-agent twin: [${r.code}] ${r.message}`);
        return EXIT_FAIL;
      }
      if (values.json) io.out(JSON.stringify({ twinId: r.id, address: signer.address }));
      else io.out(`twin ${r.id} ${r.kind === "registered" ? "registered" : "exists already"} for ${signer.address}`);
      return EXIT_OK;
    });
  },
};
