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
import { cryptoReady } from "../agent/identity/keys";
import { BILLING_TWINS, billingFootprint, measureOurs } from "./footprint/harness";
import { BILLING_CYCLE_BLOCKS, BLOCKS_PER_DAY, DEFAULT_RESOURCE_REPORTS_PER_DAY, tfchainModel, type TfchainModelOptions } from "./footprint/model";
import { compare, footprintReport, realReport } from "./footprint/report";
import { scriptArgs, scriptFail } from "./script-util";

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

/** --real: measured on the tfchain runtime instead of modelled (footprint/real.ts, loaded only then). */
async function mainReal(argv: string[]): Promise<void> {
  const cli = scriptArgs(fail, { strings: ["deployments", "billing-blocks", "spec"], booleans: ["real", "json"] }, { argv });
  const list = (cli.str("deployments") ?? "1,20,100").split(",");
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 200)) fail(`--deployments expects integers from 1 to 200, comma separated, got ${JSON.stringify(cli.str("deployments"))}`);
  const billingBlocks = cli.int("billing-blocks", BILLING_CYCLE_BLOCKS, 1, BLOCKS_PER_DAY);
  await cryptoReady();
  const { measureReal, startChain } = require("./footprint/real") as typeof import("./footprint/real");
  let chain: Awaited<ReturnType<typeof startChain>>;
  try {
    chain = await startChain(cli.str("spec"));
  } catch (err) {
    fail(`--real needs the tfchain runtime: ${(err as Error).message}`);
  }
  const rows = await measureReal(chain, list.map(Number), billingBlocks);
  process.stdout.write(realReport(rows, billingBlocks, cli.bool("json")));
}

async function main(): Promise<void> {
  if (process.argv.slice(2).includes("--real")) return mainReal(process.argv.slice(2));
  const cli = scriptArgs(fail, { strings: ["period", "days", "deployments", "resource-reports-per-day"], booleans: ["json"] }, { help: HELP });
  const periodSeconds = cli.int("period", 3600, 60, 86_400);
  if (86_400 % periodSeconds !== 0) fail(`--period must divide a day (86400 s), got ${periodSeconds}`);
  const days = cli.int("days", 1, 1, 30);
  const resourceReportsPerDay = cli.int("resource-reports-per-day", DEFAULT_RESOURCE_REPORTS_PER_DAY, 0, 1000);
  const list = (cli.str("deployments") ?? "1,20,100").split(",").map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 400)) fail(`--deployments expects integers from 1 to 400, comma separated, got ${JSON.stringify(cli.str("deployments"))}`);
  const deployments = list.map(Number);
  const json = cli.bool("json");

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
