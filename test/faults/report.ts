/**
 * Figures of one fault scenario. Each scenario test records what it measured; when FAULT_RESULTS
 * names a folder (scripts/fault-suite sets it) the figures are written there as <name>.json for the
 * suite's table and docs/RELIABILITY.md. Without it they are printed only.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { faultMode } from "./mode";

export type Figures = Record<string, number | string | boolean>;

export function recordFigures(scenario: string, figures: Figures): void {
  const entry = { scenario, mode: faultMode(), figures };
  // eslint-disable-next-line no-console
  console.log(JSON.stringify(entry));
  const dir = process.env.FAULT_RESULTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${scenario}.json`), JSON.stringify(entry, null, 2));
}
