/** What the scripts share: their command line (flags, --help, usage errors that name the script), integer flags. */
import { parseArgs } from "node:util";

/** Print `<script>: <msg>` on stderr and exit 2 (a usage error). */
export function scriptFail(script: string, msg: string): never {
  process.stderr.write(`${script}: ${msg}\n`);
  process.exit(2);
}

/** An integer flag from `min` to `max` (default `def` when absent); anything else fails with a usage error. */
function intOption(fail: (msg: string) => never, v: string | undefined, flag: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) fail(`--${flag} expects an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** A script's flags by name: those that take a value, and switches. */
export interface ScriptFlags<S extends string, B extends string> {
  strings?: readonly S[];
  booleans?: readonly B[];
}

/** A parsed command line; flag names are checked by the compiler against the declared ones. */
export interface ScriptArgs<S extends string, B extends string> {
  /** the value of a flag that takes one, undefined when absent */
  str(flag: S): string | undefined;
  /** whether a switch is on */
  bool(flag: B): boolean;
  /** an integer flag from `min` to `max`, `def` when absent (intOption) */
  int(flag: S, def: number, min: number, max: number): number;
  positionals: string[];
}

/**
 * Parse a script's command line strictly. With `help`, -h / --help print it on stdout and exit 0,
 * and an unknown or malformed flag fails with the parser's message and the help below it; without,
 * the parser's message alone (a mode of a script whose help is the main one's).
 */
export function scriptArgs<const S extends string = never, const B extends string = never>(
  fail: (msg: string) => never,
  flags: ScriptFlags<S, B>,
  opts: { help?: string; argv?: string[]; positionals?: boolean } = {},
): ScriptArgs<S, B> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const f of flags.strings ?? []) options[f] = { type: "string" };
  for (const f of flags.booleans ?? []) options[f] = { type: "boolean" };
  if (opts.help !== undefined) options.help = { type: "boolean", short: "h" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: opts.argv ?? process.argv.slice(2), options, strict: true, allowPositionals: opts.positionals ?? false });
  } catch (err) {
    return fail(opts.help === undefined ? (err as Error).message : `${(err as Error).message}\n\n${opts.help}`);
  }
  if (parsed.values.help) {
    process.stdout.write(opts.help + "\n");
    process.exit(0);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const str = (flag: S): string | undefined => values[flag] as string | undefined;
  return {
    str,
    bool: (flag) => values[flag] === true,
    int: (flag, def, min, max) => intOption(fail, str(flag), flag, def, min, max),
    positionals: parsed.positionals,
  };
}
