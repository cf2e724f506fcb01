/**
 * Chain footprint of usage reporting, in bytes per node-day: what the chain stores and emits for
 * capacity-agent's usage proofs, MEASURED on the chain stand-in's real code (ChainServer.handle and
 * ChainStore, no NATS), against a MODEL of what tfchain stores and emits today for the same node
 * (GRID.md "What tfchain stores and emits today"), for 1, 20 and 100 deployments per node.
 *
 * Run: scripts/chain-footprint [--period S] [--days N] [--deployments 1,20,100]
 *                              [--resource-reports-per-day R] [--json]
 *      scripts/chain-footprint --real [--deployments LIST] [--billing-blocks N] [--spec FILE] [--json]
 * (the wrapper builds dist/ when needed, then runs: node dist/scripts/chain-footprint.js ...)
 *
 * This file is the command line; the work is in footprint/: model.ts (the tfchain model, a pure
 * function of the number of contracts, every size a named SCALE constant; its arithmetic checked by
 * test/unit/chain-footprint-model.test.ts), harness.ts (the measurement on the stand-in), real.ts
 * (the measurement on the tfchain runtime, for --real) and report.ts (tables and JSON).
 */
import { parseArgs } from "node:util";
import { cryptoReady } from "../agent/identity/keys";
import { BILLING_TWINS, billingFootprint, measureOurs } from "./footprint/harness";
import { BILLING_CYCLE_BLOCKS, BLOCKS_PER_DAY, DEFAULT_RESOURCE_REPORTS_PER_DAY, tfchainModel, type TfchainModelOptions } from "./footprint/model";
import { compare, footprintReport, realReport } from "./footprint/report";
import { intOption, scriptFail } from "./script-util";

const HELP = `usage: scripts/chain-footprint [--period S] [--days N] [--deployments LIST]
                              [--resource-reports-per-day R] [--json]

Bytes per node-day that the chain stores and emits for usage reporting: capacity-agent's usage
proofs MEASURED on the chain stand-in (ChainServer.handle + ChainStore, no NATS), against a MODEL
of tfchain today, for each number of deployments (contracts) per node, and their ratio.
  --period S                    proof period in seconds (default 3600; must divide a day)
  --days N                      days to simulate (default 1); figures are per day
  --deployments LIST            deployments per node, comma separated (default 1,20,100)
  --resource-reports-per-day R  tfchain model: report_contract_resources calls a day (default ${DEFAULT_RESOURCE_REPORTS_PER_DAY})
  --json                        print the same as JSON
  --real [--deployments LIST] [--billing-blocks N] [--spec FILE] [--json]
                                measure today's way and ours on the real tfchain runtime (scripts/tfchain-dev,
                                docs/tfchain.md) instead of the model; takes minutes`;

function fail(msg: string): never {
  return scriptFail("chain-footprint", msg);
}
const intOpt = (v: string | undefined, flag: string, def: number, min: number, max: number): number => intOption(fail, v, flag, def, min, max);

/** --real: measured on the tfchain runtime instead of modelled (footprint/real.ts, loaded only then). */
async function mainReal(argv: string[]): Promise<void> {
  let args;
  try {
    args = parseArgs({ args: argv, options: { real: { type: "boolean" }, deployments: { type: "string" }, "billing-blocks": { type: "string" }, spec: { type: "string" }, json: { type: "boolean" } } }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  const list = (args.deployments ?? "1,20,100").split(",");
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 200)) fail(`--deployments expects integers from 1 to 200, comma separated, got ${JSON.stringify(args.deployments)}`);
  const billingBlocks = intOption(fail, args["billing-blocks"], "billing-blocks", BILLING_CYCLE_BLOCKS, 1, BLOCKS_PER_DAY);
  await cryptoReady();
  const { measureReal, startChain } = require("./footprint/real") as typeof import("./footprint/real");
  let chain: Awaited<ReturnType<typeof startChain>>;
  try {
    chain = await startChain(args.spec);
  } catch (err) {
    fail(`--real needs the tfchain runtime: ${(err as Error).message}`);
  }
  const rows = await measureReal(chain, list.map(Number), billingBlocks);
  process.stdout.write(realReport(rows, billingBlocks, args.json === true));
}

async function main(): Promise<void> {
  if (process.argv.slice(2).includes("--real")) return mainReal(process.argv.slice(2));
  let args;
  try {
    args = parseArgs({
      args: process.argv.slice(2),
      options: {
        period: { type: "string" },
        days: { type: "string" },
        deployments: { type: "string" },
        "resource-reports-per-day": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${HELP}`);
  }
  if (args.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const periodSeconds = intOpt(args.period, "period", 3600, 60, 86_400);
  if (86_400 % periodSeconds !== 0) fail(`--period must divide a day (86400 s), got ${periodSeconds}`);
  const days = intOpt(args.days, "days", 1, 1, 30);
  const resourceReportsPerDay = intOpt(args["resource-reports-per-day"], "resource-reports-per-day", DEFAULT_RESOURCE_REPORTS_PER_DAY, 0, 1000);
  const list = (args.deployments ?? "1,20,100").split(",").map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 400)) fail(`--deployments expects integers from 1 to 400, comma separated, got ${JSON.stringify(args.deployments)}`);
  const deployments = list.map(Number);
  const json = args.json === true;

  await cryptoReady();
  const modelOptions: TfchainModelOptions = { resourceReportsPerDay };
  const results = deployments.map((D) => {
    const model = tfchainModel(D, modelOptions);
    const measured = measureOurs(D, periodSeconds, days);
    return { model, measured, row: compare(model, measured) };
  });
  const billing = billingFootprint(deployments, BILLING_TWINS, periodSeconds, days, modelOptions);
  process.stdout.write(footprintReport(results, billing, deployments, periodSeconds, days, json));
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`chain-footprint: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
