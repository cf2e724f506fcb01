import { parseFundAmount } from "../../chain/wire";
import { ChainClient } from "../../chain/client";
import { cryptoReady } from "../../identity/keys";
import { withNats } from "../client";
import { EXIT_FAIL, EXIT_OK, UsageError, intFlag, type Io } from "../framework";

/** `chain fund --twin T --amount A`: add to a twin's balance on the chain stand-in (dev grids). */
export async function fund(values: Record<string, unknown>, io: Io): Promise<number> {
  const twin = intFlag(values, "twin", { required: true, min: 1, max: 0xffffffff })!;
  if (values.amount === undefined) throw new UsageError("--amount is required (a positive integer of the smallest unit)");
  const a = parseFundAmount(String(values.amount));
  if (!a.ok) throw new UsageError(`--amount: ${a.message}`);
  await cryptoReady();
  return withNats(values, io, async (bus, subjects) => {
    const r = await new ChainClient(bus, subjects).fund(twin, a.amount);
    if (!r.ok) {
      io.err(`capacity-agent chain fund: [${r.code}] ${r.message}`);
      return EXIT_FAIL;
    }
    if (values.json === true) io.out(JSON.stringify({ twinId: twin, balance: r.balance.balance.toString(), inDebt: r.balance.inDebt }));
    else io.out(`twin ${twin}: funded ${a.amount}, balance ${r.balance.balance}`);
    return EXIT_OK;
  });
}
