import { GiB, UNIT_NAMES, subUnits, zeroUnits, type UnitName, type Units } from "./units";

/**
 * Capacity model (DESIGN.md):
 *   total (hardware) - reserved (system) = allocatable
 *   allocatable x overprovision = reservable
 *   reservable - used = free
 */
export interface CapacityPolicy {
  /** MRU kept for the system: max(fraction x total, minimum); zos: max(10%, 2 GiB) */
  reservedMemoryFraction: number;
  reservedMemoryMin: number;
  /** SRU kept for the zos cache; zos starts with 5 GiB */
  reservedSsd: number;
  /** CRU kept for the system (zos keeps none) */
  reservedCpu: number;
  /** HRU kept for the system */
  reservedHdd: number;
  /** per-unit overprovision factor; CPU 1..4 (default 2), others 1 */
  overprovision: Units;
}

export const DEFAULT_POLICY: CapacityPolicy = {
  reservedMemoryFraction: 0.1,
  reservedMemoryMin: 2 * GiB,
  reservedSsd: 5 * GiB,
  reservedCpu: 0,
  reservedHdd: 0,
  overprovision: { cru: 2, mru: 1, sru: 1, hru: 1, ipv4u: 1, gpu: 1 },
};

/** Allowed overprovision factors per unit: CPU 1..4 (farmerbot), everything else exactly 1 for now. */
export const OVERPROVISION_RANGE: Record<UnitName, [number, number]> = {
  cru: [1, 4],
  mru: [1, 1],
  sru: [1, 1],
  hru: [1, 1],
  ipv4u: [1, 1],
  gpu: [1, 1],
};

export interface Capacity {
  total: Units;
  reserved: Units;
  allocatable: Units;
  reservable: Units;
}

export function reservedFor(total: Units, policy: CapacityPolicy): Units {
  const r = zeroUnits();
  r.mru = Math.min(total.mru, Math.max(Math.floor(total.mru * policy.reservedMemoryFraction), policy.reservedMemoryMin));
  r.sru = Math.min(total.sru, policy.reservedSsd);
  r.cru = Math.min(total.cru, policy.reservedCpu);
  r.hru = Math.min(total.hru, policy.reservedHdd);
  return r;
}

export function capacityOf(total: Units, policy: CapacityPolicy): Capacity {
  const reserved = reservedFor(total, policy);
  const allocatable = subUnits(total, reserved);
  const reservable = zeroUnits();
  for (const u of UNIT_NAMES) reservable[u] = Math.floor(allocatable[u] * policy.overprovision[u]);
  return { total, reserved, allocatable, reservable };
}

export function freeOf(capacity: Capacity, used: Units): Units {
  return subUnits(capacity.reservable, used);
}
