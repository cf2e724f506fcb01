import { ok, refused, type Result } from "../result";
import type { Units } from "./units";
/**
 * Sizes as deployers write them (README "Deployment file"), exactly and nothing else:
 * - an integer number of bytes: a JSON number, or a string of digits (how a decoded uint64 reads);
 * - a string: a number immediately followed by one unit, spelled exactly (case-sensitive, no
 *   space): `KiB MiB GiB TiB PiB` are powers of 1024, `kB MB GB TB PB` powers of 1000. The number
 *   may have a fraction when the result is a whole number of bytes ("1.5GiB").
 * "4 gb", "4gib", "4KB", "4G", "4B" are refused with a message naming the spellings that work.
 */
const FACTORS: Record<string, number> = {
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  PiB: 1024 ** 5,
  kB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
  PB: 1000 ** 5,
};

export const SIZE_UNITS = Object.keys(FACTORS);

const DIGITS_RE = /^\d+$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)([A-Za-z]+)$/;
const HINT = `write bytes as a whole number, or a number and one of ${SIZE_UNITS.join(", ")} with no space, e.g. "4GiB" or "500MB"`;

/** Bytes, or why the input is not a size (the message names the problem). */
export type SizeResult = Result<number, string>;

export function parseSize(input: unknown): SizeResult {
  if (typeof input === "number") {
    if (!Number.isSafeInteger(input) || input < 0) {
      return refused(`expected a non-negative whole number of bytes, got ${input}`);
    }
    return ok(input);
  }
  if (typeof input !== "string") {
    return refused(`expected bytes as a number or a string like "4GiB", got ${input === null ? "null" : typeof input}`);
  }
  if (DIGITS_RE.test(input)) {
    const bytes = Number(input);
    if (!Number.isSafeInteger(bytes)) return refused(`size "${input}" is too large`);
    return ok(bytes);
  }
  const m = SIZE_RE.exec(input);
  if (!m) return refused(`cannot read size "${input}": ${HINT}`);
  const factor = FACTORS[m[2]];
  if (factor === undefined) {
    const near = SIZE_UNITS.find((u) => u.toLowerCase() === m[2].toLowerCase());
    const hint = near ? ` (did you mean "${m[1]}${near}"? units are case-sensitive)` : "";
    return refused(`unknown size unit "${m[2]}" in "${input}"${hint}: ${HINT}`);
  }
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) {
    return refused(`size "${input}" is not a whole number of bytes or is too large`);
  }
  return ok(bytes);
}

/** Human form for logs and CLI tables: 4294967296 -> "4 GiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, "");
  return `${s} ${units[i]}`;
}

/**
 * An amount of one capacity unit as people read it: memory and storage (mru, sru, hru) in
 * 1024-based units (`60 GiB`, with the exact bytes when rounding hides some: `2 GiB (2147483649
 * bytes)`), counts (cru, ipv4u, gpu) as they are. Messages use it; JSON keeps the raw numbers.
 */
export function formatAmount(unit: string, n: number): string {
  if (unit !== "mru" && unit !== "sru" && unit !== "hru") return String(n);
  const h = formatBytes(n);
  const [v, u] = h.split(" ");
  const scale = 1024 ** ["B", "KiB", "MiB", "GiB", "TiB", "PiB"].indexOf(u);
  return Number(v) * scale === n ? h : `${h} (${n} bytes)`;
}

/** Every unit on one line, memory and storage in 1024-based units: `cru 4  mru 8 GiB  sru 60 GiB ...`. */
export function formatUnits(u: Units): string {
  return `cru ${u.cru}  mru ${formatBytes(u.mru)}  sru ${formatBytes(u.sru)}  hru ${formatBytes(u.hru)}  ipv4u ${u.ipv4u}  gpu ${u.gpu}`;
}
