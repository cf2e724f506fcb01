import { ChainClient } from "../../chain/client";
import type { TwinBill } from "../../chain/wire";
import { checkBill, type BillResult } from "../../billing/verify";
import { cryptoReady } from "../../identity/keys";
import { amountsToJson } from "../../proofs/proof";
import { auditListing, LISTING_PAGE } from "../../usage/audit";
import { withNats } from "../client";
import { isoTime } from "../format";
import { EXIT_FAIL, EXIT_OK, JSON_OPTION, NATS_OPTION, UsageError, intFlag, type Command, type Io } from "../framework";

/** The bill as `bills list --json` prints it (issue 13's contract), plus the rest the chain stores. */
export function billJson(b: TwinBill): Record<string, unknown> {
  return {
    nodeId: b.nodeId,
    sequence: b.sequence,
    periodStart: b.periodStartMs,
    periodEnd: b.periodEndMs,
    amount: b.amount.toString(),
    amounts: amountsToJson(b.amounts),
    farmId: b.farmId,
    records: b.recordCount,
    balanceAfter: b.balanceAfter.toString(),
    code: b.code || undefined,
    pricingVersion: b.pricingVersion || undefined,
  };
}

const HELP = `usage: capacity-agent bills list   --twin T [--node N] [--nats URL] [--json]
       capacity-agent bills show   --twin T --node N --sequence S [--nats URL] [--json]
       capacity-agent bills verify --twin T --node N --sequence S [--nats URL] [--json]

A twin's bills as the chain holds them: one per usage proof of a node where the twin had
deployments (docs/billing.md). Amounts are integers of the chain's smallest unit.
  list    the twin's bills, newest first (at most 100; --node: only that node's).
          JSON: [{"nodeId","sequence","periodStart","periodEnd","amount","amounts":{...},"farmId",
          "records","balanceAfter","code"}] (periods in ms since the epoch; amount, amounts and
          balanceAfter as decimal strings; code "twin_in_debt" when the balance did not cover it)
  show    one bill (JSON: one object as in list).
  verify  checks the bill independently of the node: fetches every record of the proof from the
          node (signed, complete, hashing up to the records root the CHAIN holds and adding up to
          its totals), recomputes the twin subtotals (they must hash up to the chain's twins root),
          the twin's subtotal (it must be the bill's amounts) and its price (it must be the amount
          charged). Exit 0 when it holds, 1 when not.
          JSON: {"twinId","nodeId","sequence","holds","code","message","amount","recomputed"}
  --twin T        the twin
  --node N        the node (show, verify; a filter for list)
  --sequence S    the node's proof (show, verify)
  --nats URL      NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json          print JSON`;

const SUBCOMMANDS = ["list", "show", "verify"];

export const billsCommand: Command = {
  name: "bills",
  help: HELP,
  options: { twin: { type: "string" }, node: { type: "string" }, sequence: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  positionals: true,
  async run({ values, positionals }, io) {
    const sub = positionals[0];
    if (positionals.length !== 1 || !SUBCOMMANDS.includes(sub)) throw new UsageError(`expected "bills ${SUBCOMMANDS.join('", "bills ')}", got "bills ${positionals.join(" ")}"`);
    const twin = intFlag(values, "twin", { required: true, min: 1, max: 0xffffffff })!;
    const node = intFlag(values, "node", { required: sub !== "list", min: 1, max: 0xffffffff });
    const sequence = intFlag(values, "sequence", { required: sub !== "list", min: 1 });
    await cryptoReady();
    return withNats(values, io, async (bus, subjects) => {
      const chain = new ChainClient(bus, subjects);
      const r = await chain.bills(twin, { nodeId: node, sequence });
      if (!r) {
        io.err(`capacity-agent bills: [not_found] twin ${twin} is not registered on the chain`);
        return EXIT_FAIL;
      }
      if (sub === "list") {
        const rows = r.bills.map(billJson);
        if (values.json) io.out(JSON.stringify(rows));
        else {
          io.out(`twin ${twin}: ${rows.length} bill${rows.length === 1 ? "" : "s"}, balance ${r.balance.balance}${r.balance.inDebt ? " (in debt)" : ""}`);
          for (const b of r.bills) io.out(`  node ${b.nodeId} #${b.sequence}  ${isoTime(b.periodStartMs)} .. ${isoTime(b.periodEndMs)}  ${b.recordCount} records  amount ${b.amount}${b.code ? `  [${b.code}]` : ""}`);
        }
        return EXIT_OK;
      }
      const bill = r.bills.find((b) => b.nodeId === node && b.sequence === sequence);
      if (!bill) {
        io.err(`capacity-agent bills: [not_found] the chain holds no bill of twin ${twin} for proof ${sequence} of node ${node}`);
        return EXIT_FAIL;
      }
      if (sub === "show") {
        const row = billJson(bill);
        if (values.json) io.out(JSON.stringify(row));
        else io.out(Object.entries(row).filter(([, v]) => v !== undefined).map(([k, v]) => `${k.padEnd(13)} ${k === "periodStart" || k === "periodEnd" ? isoTime(v as number) : typeof v === "object" ? JSON.stringify(v) : String(v)}`).join("\n"));
        return EXIT_OK;
      }
      const listing = await auditListing(bus, subjects, chain, node!, sequence!, LISTING_PAGE);
      // the policy of the bill's version (a bill from before versions: the chain's policy now)
      const pricing = bill.pricingVersion > 0 ? r.pricings.get(bill.pricingVersion) : r.pricing;
      if (!pricing) {
        io.err(`capacity-agent bills: [bad_reply] the chain names pricing version ${bill.pricingVersion} for this bill but did not send that policy`);
        return EXIT_FAIL;
      }
      const v = checkBill({ twinId: twin, bill, listing, pricing });
      return report(io, values.json === true, twin, node!, sequence!, bill, v);
    });
  },
};

function report(io: Io, json: boolean, twin: number, node: number, sequence: number, bill: TwinBill, v: BillResult): number {
  const holds = v.code === "holds";
  if (json) {
    io.out(JSON.stringify({ twinId: twin, nodeId: node, sequence, holds, code: v.code, message: v.message, amount: bill.amount.toString(), recomputed: v.amount?.toString() }));
  } else io.out(`twin ${twin}, node ${node}, proof ${sequence}: ${holds ? "holds" : `DOES NOT HOLD [${v.code}]`}: ${v.message}`);
  return holds ? EXIT_OK : EXIT_FAIL;
}

