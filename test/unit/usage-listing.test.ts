/**
 * checkListing, the completeness audit of a proof's records (agent/usage/audit.ts): a table of
 * listings against a chain proof, signed with real keys. The integration test
 * (test/integration/usage-records.test.ts) runs it against a real agent and chain.
 */
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, signerFromSeed, type Signer } from "../../agent/identity/keys";
import { leafHash, merkleRoot } from "../../agent/proofs/merkle";
import { addAmounts, encodeProofHeader, encodeRecord, ZERO_HASH, zeroAmounts, type ProofHeader, type UsageRecord } from "../../agent/proofs/proof";
import { checkListing, type ListingCode } from "../../agent/usage/audit";
import { encode } from "../../agent/wire/codec";

let node: Signer;
let other: Signer;

beforeAll(async () => {
  await cryptoReady();
  node = signerFromSeed("ed25519", new Uint8Array(32).fill(1));
  other = signerFromSeed("ed25519", new Uint8Array(32).fill(2));
});

const record = (deploymentId: number, sru: bigint): UsageRecord => ({
  deploymentId,
  twinId: 7,
  firstVersion: 1,
  lastVersion: 1,
  servedMs: 5000,
  amounts: { ...zeroAmounts(), sruByteSeconds: sru, suMicroHours: sru / 1000n },
});

function header(records: Uint8Array[], totals = records.length ? undefined : zeroAmounts(), over: Partial<ProofHeader> = {}): ProofHeader {
  return {
    nodeId: 1,
    farmId: 1,
    sequence: 4,
    periodStartMs: 10_000,
    periodEndMs: 15_000,
    previousHash: ZERO_HASH,
    recordCount: records.length,
    totals: totals ?? SUM,
    recordsRoot: merkleRoot(records.map(leafHash)),
    downtimeMs: 0,
    ...over,
  };
}

const RECORDS = [record(3, 100n), record(5, 2000n), record(8, 30000n)];
const SUM = RECORDS.reduce((a, r) => addAmounts(a, r.amounts), zeroAmounts());
const BYTES = RECORDS.map(encodeRecord);

/** Pages as the agent answers them: `size` records each, every one naming the proof envelope. */
function pages(signer: Signer, proof: Uint8Array, records: Uint8Array[], size: number, count = records.length): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let start = 0; start < records.length || out.length === 0; start += size) {
    const slice = records.slice(start, start + size);
    out.push(seal(signer, DOMAIN.UsageRecordsReply, encode("UsageRecordsReply", { found: true, proof, recordCount: count, startIndex: start, records: slice, nextIndex: start + slice.length })));
  }
  return out;
}

const sealProof = (signer: Signer, h: ProofHeader): Uint8Array => seal(signer, DOMAIN.UsageProof, encodeProofHeader(h));

test.each<[string, ListingCode, () => { chainProof: Uint8Array; pages: Uint8Array[] }]>([
  ["a complete listing in pages of one", "holds", () => { const p = sealProof(node, header(BYTES)); return { chainProof: p, pages: pages(node, p, BYTES, 1) }; }],
  ["a complete listing in one page", "holds", () => { const p = sealProof(node, header(BYTES)); return { chainProof: p, pages: pages(node, p, BYTES, 10) }; }],
  ["a proof without records: one empty page", "holds", () => { const p = sealProof(node, header([])); return { chainProof: p, pages: pages(node, p, [], 10) }; }],
  ["the chain's proof signed by another key", "chain_proof_bad_signature", () => { const p = sealProof(other, header(BYTES)); return { chainProof: p, pages: pages(node, p, BYTES, 2) }; }],
  ["totals that the records do not add up to (root right)", "totals_mismatch", () => { const p = sealProof(node, header(BYTES, { ...SUM, suMicroHours: SUM.suMicroHours + 1n })); return { chainProof: p, pages: pages(node, p, BYTES, 2) }; }],
  ["pages naming another proof of the node", "proof_mismatch", () => { const p = sealProof(node, header(BYTES)); const q = sealProof(node, header(BYTES, undefined, { downtimeMs: 1 })); return { chainProof: p, pages: pages(node, q, BYTES, 2) }; }],
  ["a page that skips records", "bad_reply", () => { const p = sealProof(node, header(BYTES)); const ps = pages(node, p, BYTES, 1); return { chainProof: p, pages: [ps[0], ps[2]] }; }],
  ["no pages at all", "incomplete", () => ({ chainProof: sealProof(node, header(BYTES)), pages: [] })],
  ["a record twice (count and root made to match)", "unsorted", () => { const dup = [BYTES[0], BYTES[0], BYTES[1]]; const p = sealProof(node, header(dup, SUM)); return { chainProof: p, pages: pages(node, p, dup, 2) }; }],
  ["garbage instead of a page", "bad_reply", () => ({ chainProof: sealProof(node, header(BYTES)), pages: [new Uint8Array([1, 2, 3])] })],
  ["the node has no such proof", "not_found", () => ({ chainProof: sealProof(node, header(BYTES)), pages: [seal(node, DOMAIN.UsageRecordsReply, encode("UsageRecordsReply", { found: false, rejection: { code: "not_found", message: "node 1 has no proof 4" } }))] })],
])("%s -> %s", (_name, code, make) => {
  const { chainProof, pages: ps } = make();
  const r = checkListing({ sequence: 4, chainProof, nodeKey: node.publicKey, pages: ps });
  expect({ code: r.code, message: typeof r.message }).toEqual({ code, message: "string" });
  if (code === "holds") expect(r.records?.map((x) => x.record.deploymentId)).toEqual(r.header!.recordCount ? [3, 5, 8] : []);
});
