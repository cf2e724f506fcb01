/**
 * A protobuf writer by hand, for tests that need the byte-level choices another encoder makes
 * (field order, defaults written or left out, absent sub-messages) or that a careless or hostile
 * one makes (unknown fields, a field twice, over-long varints). Independent of protobufjs.
 */
export type Field =
  | { id: number; varint: bigint | number; overlong?: number }
  | { id: number; bytes: Uint8Array }
  | { id: number; message: Field[] }
  | { id: number; raw: Uint8Array; wireType: number };

export function varint(v: bigint | number, extraBytes = 0): number[] {
  let n = BigInt(v);
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n || extraBytes > 0) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  // an over-long varint: continuation bytes that add only zero bits
  for (let i = 0; i < extraBytes; i++) out.push(i === extraBytes - 1 ? 0x00 : 0x80);
  return out;
}

export function writeFields(fields: Field[]): Uint8Array {
  const out: number[] = [];
  for (const f of fields) {
    if ("varint" in f) out.push(...varint((f.id << 3) | 0), ...varint(f.varint, f.overlong ?? 0));
    else if ("bytes" in f) out.push(...varint((f.id << 3) | 2), ...varint(f.bytes.length), ...f.bytes);
    else if ("message" in f) {
      const inner = writeFields(f.message);
      out.push(...varint((f.id << 3) | 2), ...varint(inner.length), ...inner);
    } else out.push(...varint((f.id << 3) | f.wireType), ...f.raw);
  }
  return Uint8Array.from(out);
}
