import { formatBytes, formatUnits } from "../capacity/size";
import type { Units } from "../capacity/units";

/**
 * Numbers as people read them, for human output (`--json` keeps the raw numbers): sizes 1024-based
 * with the README's unit names (`60 GiB`), times as ISO 8601 UTC.
 */
export function unitsLine(u: Units): string {
  return formatUnits(u);
}

/** Epoch milliseconds as ISO 8601 UTC; "-" for 0 or an impossible time. */
export function isoTime(ms: number | string): string {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0 || n > 8.64e15) return "-";
  return new Date(n).toISOString();
}

export { formatBytes };
