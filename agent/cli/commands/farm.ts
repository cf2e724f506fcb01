import { EXIT_FAIL, EXIT_OK, UsageError, req, type Command } from "../framework";
import { TFCHAIN_FLAGS_HELP, TFCHAIN_OPTIONS, withTfchain } from "./tfchain-common";

/** tfchain's farm names: letters, digits, '-' and '_' (its InvalidFarmName check), at most 40 characters here. */
const FARM_NAME = /^[A-Za-z0-9_-]{1,40}$/;

export const farmCommand: Command = {
  name: "farm",
  help: `usage: capacity-agent farm create --chain-url URL --key FILE --name NAME [--json]

Creates a farm named NAME owned by the key's twin (createFarm, signed by the key); the chain
assigns the id. A farm of that name owned by the same twin is reported, not created twice; a name
taken by another twin is refused. Prints {"farmId","twinId"} with --json.
  --name NAME      the farm's name: letters, digits, '-' and '_' (required)
${TFCHAIN_FLAGS_HELP}`,
  options: { ...TFCHAIN_OPTIONS, name: { type: "string" } },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length !== 1 || positionals[0] !== "create") throw new UsageError(`expected "farm create", got "farm ${positionals.join(" ")}"`);
    const name = req(values, "name");
    if (!FARM_NAME.test(name)) throw new UsageError(`--name: a farm name is 1 to 40 letters, digits, '-' or '_', got ${JSON.stringify(name)}`);
    return withTfchain(values, async (backend, signer) => {
      const r = await backend.ensureFarm(signer, name);
      if (!r.ok) {
        io.err(`capacity-agent farm: [${r.code}] ${r.message}`);
        return EXIT_FAIL;
      }
      if (values.json) io.out(JSON.stringify({ farmId: r.id, twinId: r.twinId }));
      else io.out(`farm ${r.id} "${name}" ${r.kind === "registered" ? "created" : "exists already"} for twin ${r.twinId}`);
      return EXIT_OK;
    });
  },
};
