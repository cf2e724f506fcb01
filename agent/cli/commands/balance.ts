import { ChainClient } from "../../chain/client";
import { cryptoReady } from "../../identity/keys";
import { withNats } from "../client";
import { EXIT_FAIL, EXIT_OK, JSON_OPTION, NATS_OPTION, intFlag, type Command } from "../framework";

export const balanceCommand: Command = {
  name: "balance",
  help: `usage: capacity-agent balance --twin T [--nats URL] [--json]

A twin's balance on the chain, in the chain's smallest unit (docs/billing.md): what funding added
minus what its bills charged. Below zero the twin is in debt: nodes refuse its new deployments
(twin_in_debt) until it is funded again.
  JSON: {"twinId","balance"} (balance as a decimal string; also "inDebt")
  --twin T        the twin
  --nats URL      NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json          print JSON`,
  options: { twin: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  async run({ values }, io) {
    const twin = intFlag(values, "twin", { required: true, min: 1, max: 0xffffffff })!;
    await cryptoReady();
    return withNats(values, io, async (bus, subjects) => {
      const r = await new ChainClient(bus, subjects).bills(twin, { limit: 1 });
      if (!r) {
        io.err(`capacity-agent balance: [not_found] twin ${twin} is not registered on the chain`);
        return EXIT_FAIL;
      }
      if (values.json) io.out(JSON.stringify({ twinId: twin, balance: r.balance.balance.toString(), inDebt: r.balance.inDebt }));
      else io.out(`twin ${twin}: balance ${r.balance.balance}${r.balance.inDebt ? " (in debt)" : ""}`);
      return EXIT_OK;
    });
  },
};
