import type { Units } from "./units";
/**
 * Sizes as deployers write them: an integer number of bytes, or a string with a unit.
 * IEC units (KiB, MiB, GiB, TiB, PiB) are powers of 1024; SI units (kB, KB, MB, GB, TB, PB) are
 * powers of 1000, as their names say; "B" or no unit means bytes. Fractions are allowed when the
 * result is a whole number of bytes ("1.5GiB").
 */
const FACTORS: Record<string, number> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  pb: 1000 ** 5,
};

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

export type SizeResult = { ok: true; bytes: number } | { ok: false; error: string };

export function parseSize(input: unknown): SizeResult {
  if (typeof input === "number") {
    if (!Number.isSafeInteger(input) || input < 0) {
      return { ok: false, error: `expected a non-negative whole number of bytes, got ${input}` };
    }
    return { ok: true, bytes: input };
  }
  if (typeof input !== "string") {
    return { ok: false, error: `expected bytes as a number or a string like "4GiB", got ${typeof input}` };
  }
  const m = SIZE_RE.exec(input);
  if (!m) return { ok: false, error: `cannot read size "${input}": expected a number and a unit like "4GiB" or "500MB"` };
  const unit = m[2].toLowerCase();
  const factor = FACTORS[unit];
  if (factor === undefined) {
    return { ok: false, error: `unknown size unit "${m[2]}" in "${input}" (use B, KiB, MiB, GiB, TiB, PiB, kB, MB, GB, TB or PB)` };
  }
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) {
    return { ok: false, error: `size "${input}" is not a whole number of bytes or is too large` };
  }
  return { ok: true, bytes };
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
