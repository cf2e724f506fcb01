import type * as protobuf from "protobufjs";
import { protoType } from "./proto";
import type { Units } from "../capacity/units";
import { AgentError } from "../errors";
import type { MessageName, WireInputOf, WireOf, WireUnits, WireUnitsInput } from "./generated";

export type { MessageName, WireInputOf, WireOf, WireUnits, WireUnitsInput } from "./generated";

/** 64-bit integers on the wire: we write numbers (or decimal strings) and read decimal strings. */
export type U64 = number | string;

export class WireError extends AgentError<"malformed" | "too_large"> {
  constructor(code: "malformed" | "too_large", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "WireError";
  }
}

export interface DecodeLimits {
  /** largest accepted encoding in bytes */
  maxBytes: number;
  /** largest accepted length of any repeated field, checked right after decoding */
  maxRepeated?: number;
}

export const DEFAULT_LIMITS: DecodeLimits = { maxBytes: 256 * 1024, maxRepeated: 1024 };

/**
 * Encode a plain object (camelCase fields) as the named message of package tfgrid.capacity.v1.
 * Its type (agent/wire/generated.ts, generated from the .proto) lets the compiler check the fields.
 */
export function encode<K extends MessageName>(typeName: K, value: WireInputOf<K>): Uint8Array {
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
export function decode<K extends MessageName>(typeName: K, bytes: Uint8Array, limits: DecodeLimits = DEFAULT_LIMITS): WireOf<K> {
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
  return obj as WireOf<K>;
}

/** A decoded uint64 as a JS number; refuses values beyond 2^53 instead of rounding them. */
export function toSafeNumber(v: U64, field: string): number {
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new WireError("malformed", `${field}: ${v} is not a safe non-negative integer`);
  return n;
}

export function unitsToWire(u: Units): WireUnitsInput {
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

const WIRE_TYPE_OF_SCALAR: Record<string, number> = {
  int32: 0, int64: 0, uint32: 0, uint64: 0, sint32: 0, sint64: 0, bool: 0,
  fixed64: 1, sfixed64: 1, double: 1,
  string: 2, bytes: 2,
  fixed32: 5, sfixed32: 5, float: 5,
};

const WIRE_TYPE_NAME = ["varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit"];

function readVarint(b: Uint8Array, pos: number, what: string): { value: bigint; next: number } {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= b.length) throw new Error(`${what}: the bytes end inside a varint`);
    const byte = b[pos + i];
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) {
      if (i > 0 && byte === 0) throw new Error(`${what}: over-long varint (${i + 1} bytes with a trailing zero byte; write it in the fewest bytes)`);
      if (i === 9 && byte > 1) throw new Error(`${what}: varint larger than 64 bits`);
      return { value, next: pos + i + 1 };
    }
  }
  throw new Error(`${what}: varint longer than 10 bytes`);
}

/**
 * Check that `bytes` is a strict encoding of the named message, recursively, and say what is wrong
 * when it is not (undefined when it is). Strict means, beyond decoding at all: every field is one
 * the .proto defines, with the wire type of its declared type; a non-repeated field appears at most
 * once; every varint (tags, values, lengths) is written in the fewest bytes; uint32 values fit in
 * 32 bits and bools are 0 or 1. Free are what standard encoders choose differently: the order of
 * fields, writing a default (zero, empty) value or leaving it out, and leaving out a sub-message or
 * writing it empty. So every byte of an accepted encoding carries a value of a known field, and
 * two encodings of one message differ only in order and in explicit defaults.
 */
export function strictEncodingProblem(typeName: MessageName, bytes: Uint8Array): string | undefined {
  try {
    checkStrict(protoType(typeName), bytes, typeName);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** protobufjs loads with the first message checked, not with the module graph (fast CLI start). */
function protobufLib(): typeof protobuf {
  return require("protobufjs") as typeof protobuf;
}

function checkStrict(t: protobuf.Type, b: Uint8Array, path: string): void {
  const pb = protobufLib();
  const seen = new Set<number>();
  let pos = 0;
  while (pos < b.length) {
    const tag = readVarint(b, pos, `${path}: a field tag at byte ${pos}`);
    pos = tag.next;
    const id = Number(tag.value >> 3n);
    const wt = Number(tag.value & 7n);
    const field = t.fieldsById[id];
    if (!field) throw new Error(`${path}: field number ${id} is not a field of ${t.name} (unknown fields are refused)`);
    const where = `${path}.${field.name}`;
    field.resolve();
    const isMessage = field.resolvedType instanceof pb.Type;
    const expected = field.resolvedType instanceof pb.Enum ? 0 : isMessage ? 2 : WIRE_TYPE_OF_SCALAR[field.type];
    if (field.repeated) throw new Error(`${where}: repeated fields are not expected in ${t.name}`);
    if (wt !== expected) throw new Error(`${where} (field ${id}) is written as ${WIRE_TYPE_NAME[wt] ?? `wire type ${wt}`}, but its type ${field.type} is ${WIRE_TYPE_NAME[expected]}`);
    if (seen.has(id)) throw new Error(`${where} (field ${id}) appears twice (write each field at most once)`);
    seen.add(id);
    switch (wt) {
      case 0: {
        const v = readVarint(b, pos, where);
        pos = v.next;
        if ((field.type === "uint32" || field.type === "int32") && v.value > 0xffffffffn) throw new Error(`${where}: ${v.value} does not fit in ${field.type}`);
        if (field.type === "bool" && v.value > 1n) throw new Error(`${where}: a bool must be 0 or 1, got ${v.value}`);
        break;
      }
      case 1:
      case 5:
        pos += wt === 1 ? 8 : 4;
        if (pos > b.length) throw new Error(`${where}: the bytes end inside the field`);
        break;
      case 2: {
        const len = readVarint(b, pos, `${where} length`);
        pos = len.next;
        const end = pos + Number(len.value);
        if (len.value > BigInt(b.length) || end > b.length) throw new Error(`${where}: length ${len.value} runs past the end of the bytes`);
        if (isMessage) checkStrict(field.resolvedType as protobuf.Type, b.subarray(pos, end), where);
        pos = end;
        break;
      }
      default:
        break;
    }
  }
}
