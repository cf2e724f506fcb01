import { protoType } from "./proto";
import type { Units } from "../capacity/units";

/** 64-bit integers on the wire: we write numbers (or decimal strings) and read decimal strings. */
export type U64 = number | string;

export class WireError extends Error {
  readonly code: "malformed" | "too_large";
  constructor(code: "malformed" | "too_large", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WireError";
    this.code = code;
  }
}

export interface DecodeLimits {
  /** largest accepted encoding in bytes */
  maxBytes: number;
  /** largest accepted length of any repeated field, checked right after decoding */
  maxRepeated?: number;
}

export const DEFAULT_LIMITS: DecodeLimits = { maxBytes: 256 * 1024, maxRepeated: 1024 };

/** Encode a plain object (camelCase fields) as the named message of package tfgrid.capacity.v1. */
export function encode(typeName: string, value: object): Uint8Array {
  const t = protoType(typeName);
  return t.encode(t.fromObject(value as Record<string, unknown>)).finish();
}

function checkRepeated(value: unknown, max: number, depth = 0): void {
  if (depth > 16 || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    if (value.length > max) throw new WireError("too_large", `a repeated field holds ${value.length} entries, more than ${max}`);
    for (const v of value) checkRepeated(v, max, depth + 1);
    return;
  }
  if (value instanceof Uint8Array) return;
  for (const v of Object.values(value)) checkRepeated(v, max, depth + 1);
}

/**
 * Decode untrusted bytes. Size is checked before any parsing; repeated-field counts right after.
 * Returns a plain object: every field present (proto3 defaults), 64-bit integers as decimal
 * strings, enums as numbers, bytes as Uint8Array.
 */
export function decode<T>(typeName: string, bytes: Uint8Array, limits: DecodeLimits = DEFAULT_LIMITS): T {
  if (bytes.length > limits.maxBytes) {
    throw new WireError("too_large", `${typeName} of ${bytes.length} bytes exceeds the limit of ${limits.maxBytes}`);
  }
  const t = protoType(typeName);
  let msg;
  try {
    msg = t.decode(bytes);
  } catch (err) {
    throw new WireError("malformed", `cannot decode ${typeName}: ${(err as Error).message}`, { cause: err });
  }
  const obj = t.toObject(msg, { longs: String, enums: Number, defaults: true, arrays: true, objects: true });
  checkRepeated(obj, limits.maxRepeated ?? DEFAULT_LIMITS.maxRepeated!);
  return obj as T;
}

/** A decoded uint64 as a JS number; refuses values beyond 2^53 instead of rounding them. */
export function toSafeNumber(v: U64, field: string): number {
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new WireError("malformed", `${field}: ${v} is not a safe non-negative integer`);
  return n;
}

export interface WireUnits {
  cru: U64;
  mru: U64;
  sru: U64;
  hru: U64;
  ipv4u: U64;
  gpu: U64;
}

export function unitsToWire(u: Units): WireUnits {
  return { cru: u.cru, mru: u.mru, sru: u.sru, hru: u.hru, ipv4u: u.ipv4u, gpu: u.gpu };
}

export function unitsFromWire(w: WireUnits | null | undefined, field = "units"): Units {
  const z = w ?? { cru: 0, mru: 0, sru: 0, hru: 0, ipv4u: 0, gpu: 0 };
  return {
    cru: toSafeNumber(z.cru, `${field}.cru`),
    mru: toSafeNumber(z.mru, `${field}.mru`),
    sru: toSafeNumber(z.sru, `${field}.sru`),
    hru: toSafeNumber(z.hru, `${field}.hru`),
    ipv4u: toSafeNumber(z.ipv4u, `${field}.ipv4u`),
    gpu: toSafeNumber(z.gpu, `${field}.gpu`),
  };
}
