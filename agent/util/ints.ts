/**
 * The one integer-range check of options, config fields, flags and spec fields. It returns the
 * problem instead of throwing, so each caller raises its own error (ConfigError, ChainError, a
 * usage error, ...) with its own field name and stable code.
 */
export type IntCheck = { ok: true; value: number } | { ok: false; problem: string };

/**
 * `v` as an integer from `min` to `max` (safe integers only). With `digits`, a string of decimal
 * digits counts as its number (config files, environment variables, flags). The problem reads
 * `expected an integer from MIN to MAX, got V`.
 */
export function intInRange(v: unknown, min: number, max: number, opts: { digits?: boolean } = {}): IntCheck {
  const n = opts.digits && typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n === "number" && Number.isSafeInteger(n) && n >= min && n <= max) return { ok: true, value: n };
  return { ok: false, problem: `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}` };
}
