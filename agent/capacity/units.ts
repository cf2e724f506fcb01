/**
 * Resource units as the grid counts them (GRID.md). Memory and storage are integer bytes; CPU,
 * IPv4 and GPU are counts. All values are non-negative safe integers (a node never holds more
 * than 2^53 bytes of anything, 8 PiB).
 */
export interface Units {
  cru: number;
  mru: number;
  sru: number;
  hru: number;
  ipv4u: number;
  gpu: number;
}

export const UNIT_NAMES = ["cru", "mru", "sru", "hru", "ipv4u", "gpu"] as const;
export type UnitName = (typeof UNIT_NAMES)[number];

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

export function zeroUnits(): Units {
  return { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };
}

export function addUnits(a: Units, b: Units): Units {
  const r = zeroUnits();
  for (const u of UNIT_NAMES) r[u] = a[u] + b[u];
  return r;
}

/** a - b, clamped at zero per unit (free capacity is never negative in reports). */
export function subUnits(a: Units, b: Units): Units {
  const r = zeroUnits();
  for (const u of UNIT_NAMES) r[u] = Math.max(0, a[u] - b[u]);
  return r;
}

/** a - b without clamping (deltas of an update may be negative). */
export function diffUnits(a: Units, b: Units): Units {
  const r = zeroUnits();
  for (const u of UNIT_NAMES) r[u] = a[u] - b[u];
  return r;
}

export function unitsEqual(a: Units, b: Units): boolean {
  return UNIT_NAMES.every((u) => a[u] === b[u]);
}

/** True when every unit of `want` fits in `free`. */
export function fits(want: Units, free: Units): boolean {
  return UNIT_NAMES.every((u) => want[u] <= free[u]);
}

