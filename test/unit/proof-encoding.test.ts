/**
 * Issue 8.3: the chain must accept a proof header as any standard proto3 encoder writes it (totals
 * absent for an idle period, fields in another order, defaults written out) and refuse, naming the
 * exact difference, what carries bytes that are not a value of a known field.
 */
import { decodeProofHeader, encodeProofHeader, zeroAmounts, type ProofHeader } from "../../agent/proofs/proof";
import { strictEncodingProblem } from "../../agent/wire/codec";
import { writeFields, type Field } from "../utils/protowriter";

const h: ProofHeader = {
  nodeId: 5,
  farmId: 2,
  sequence: 3,
  periodStartMs: 1_700_000_000_000,
  periodEndMs: 1_700_003_600_000,
  previousHash: new Uint8Array(32).fill(7),
  recordCount: 0,
  totals: zeroAmounts(),
  recordsRoot: new Uint8Array(32),
  downtimeMs: 0,
};

// UsageProof fields as a Go encoder writes them (field-number order, zero values and nil totals left out)
const goStyle: Field[] = [
  { id: 1, varint: h.nodeId },
  { id: 2, varint: h.sequence },
  { id: 3, varint: h.periodStartMs },
  { id: 4, varint: h.periodEndMs },
  { id: 5, bytes: h.previousHash },
  { id: 8, bytes: h.recordsRoot },
  { id: 10, varint: h.farmId },
];

describe("proof header encodings", () => {
  test("this agent's own encoding is strict", () => {
    expect(strictEncodingProblem("UsageProof", encodeProofHeader(h))).toBeUndefined();
    expect(strictEncodingProblem("UsageProof", encodeProofHeader({ ...h, recordCount: 2, totals: { ...zeroAmounts(), cruSeconds: 7200n, nuBytes: 1n } }))).toBeUndefined();
  });

  test.each<[string, Field[]]>([
    ["totals absent (an idle or fully-down period, as a Go encoder writes it)", goStyle],
    ["fields in reverse order", [...goStyle].reverse()],
    ["defaults written out (record_count 0, downtime 0, empty totals)", [...goStyle, { id: 6, varint: 0 }, { id: 9, varint: 0 }, { id: 7, message: [] }]],
    ["totals with zero amounts written out", [...goStyle, { id: 7, message: [{ id: 1, varint: 0 }, { id: 9, varint: 0 }] }]],
    ["totals present, amounts in another order", [...goStyle, { id: 6, varint: 1 }, { id: 7, message: [{ id: 9, varint: 5 }, { id: 1, varint: 3600 }] }]],
  ])("accepted: %s", (_name, fields) => {
    const bytes = writeFields(fields);
    expect(strictEncodingProblem("UsageProof", bytes)).toBeUndefined();
    // and it decodes to the header meant
    expect(decodeProofHeader(bytes)).toMatchObject({ nodeId: 5, farmId: 2, sequence: 3, periodStartMs: h.periodStartMs });
  });

  test.each<[string, Field[], string]>([
    ["an unknown field", [...goStyle, { id: 13, varint: 1 }], "UsageProof: field number 13 is not a field of UsageProof (unknown fields are refused)"],
    ["an unknown field inside totals", [...goStyle, { id: 7, message: [{ id: 12, bytes: new Uint8Array(40) }] }], "UsageProof.totals: field number 12 is not a field of UsageAmounts"],
    ["a field written twice", [...goStyle, { id: 2, varint: 4 }], "UsageProof.sequence (field 2) appears twice"],
    ["a field with the wrong wire type", [...goStyle.filter((f) => f.id !== 1), { id: 1, bytes: new Uint8Array(2) }], "UsageProof.nodeId (field 1) is written as length-delimited, but its type uint32 is varint"],
    ["an over-long varint (zero padding)", [...goStyle.filter((f) => f.id !== 2), { id: 2, varint: 3, overlong: 4 }], "UsageProof.sequence: over-long varint"],
    ["a uint32 beyond 32 bits", [...goStyle.filter((f) => f.id !== 1), { id: 1, varint: 2n ** 33n + 5n }], "UsageProof.nodeId: 8589934597 does not fit in uint32"],
  ])("refused: %s", (_name, fields, message) => {
    const problem = strictEncodingProblem("UsageProof", writeFields(fields));
    expect(problem).toBeDefined();
    expect(problem).toContain(message);
  });

  test("bytes cut inside a field say so", () => {
    const bytes = writeFields(goStyle);
    expect(strictEncodingProblem("UsageProof", bytes.subarray(0, bytes.length - 1))).toContain("UsageProof.farmId");
    expect(strictEncodingProblem("UsageProof", writeFields([{ id: 5, bytes: new Uint8Array(32) }]).subarray(0, 10))).toContain("runs past the end");
  });
});
