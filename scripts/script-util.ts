/** What the scripts (local-grid, chain-footprint) share: usage errors that name the script, integer flags. */

/** Print `<script>: <msg>` on stderr and exit 2 (a usage error). */
export function scriptFail(script: string, msg: string): never {
  process.stderr.write(`${script}: ${msg}\n`);
  process.exit(2);
}

/** An integer flag from `min` to `max` (default `def` when absent); anything else fails with a usage error. */
export function intOption(fail: (msg: string) => never, v: string | undefined, flag: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) fail(`--${flag} expects an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}
