import type { Bus } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import type { ChainClient } from "../chain/client";
import { DOMAIN } from "../identity/domains";
import { open, sameKey } from "../identity/envelope";
import { hashesEqual, leafHash, merkleRoot, rootFromPath, verifyInclusion } from "../proofs/merkle";
import { addAmounts, AMOUNT_FIELDS, decodeProofHeader, decodeRecord, proofHash, zeroAmounts, type ProofHeader, type UsageRecord } from "../proofs/proof";
import { ok, refused, type Result } from "../result";
import { decode, encode, WireError } from "../wire/codec";
import type { WireUsageAuditReply, WireUsageRecordsReply } from "../wire/generated";

/** Why a record does or does not hold against the chain's root (stable codes, shown by `proofs verify`). */
export type AuditCode =
  | "holds"
  /** the node has no record of the deployment in that proof */
  | "not_found"
  /** the proof the chain holds is not signed by the node's registered key */
  | "chain_proof_bad_signature"
  /** the node's answer is not signed by the node's registered key, or cannot be decoded */
  | "bad_reply"
  /** the node's copy of the proof is not the one the chain accepted */
  | "proof_mismatch"
  /** the record does not hash up to the chain's root */
  | "root_mismatch"
  /** the record names another deployment than the one asked */
  | "wrong_record"
  /** the node did not answer */
  | "node_unreachable";

export interface AuditResult {
  sequence: number;
  code: AuditCode;
  message: string;
  record?: UsageRecord;
}

const hex = (b: Uint8Array): string => "0x" + Buffer.from(b).toString("hex");

const REPLY_LIMITS = { maxBytes: 1024 * 1024, maxRepeated: 64 };

/**
 * The proof the chain holds, opened: it must carry the node's registered signature and decode.
 * The refusal is the message of a chain_proof_bad_signature result.
 */
function openChainProof(sequence: number, chainProof: Uint8Array, nodeKey: Uint8Array): Result<{ header: ProofHeader; hash: Uint8Array }, string> {
  const chain = open(chainProof, DOMAIN.UsageProof, { maxBytes: 4096 });
  if (!chain.ok || !sameKey(chain.value.signer, nodeKey)) return refused(`the chain's proof ${sequence} is not signed by the node's registered key`);
  try {
    return ok({ header: decodeProofHeader(chain.value.payload), hash: proofHash(chain.value.payload) });
  } catch (err) {
    return refused(`the chain's proof ${sequence} cannot be decoded: ${(err as Error).message}`);
  }
}

/**
 * Check a deployment's record against the proof the CHAIN holds, independently of the node: the
 * chain's proof must carry the node's registered signature; the node's answer must be signed by
 * the same key, name the same proof (same hash), and its record must hash up to the chain's root.
 */
export function checkAudit(input: { sequence: number; deploymentId: number; chainProof: Uint8Array; nodeKey: Uint8Array; reply: Uint8Array }): AuditResult {
  const { sequence, deploymentId } = input;
  const chain = openChainProof(sequence, input.chainProof, input.nodeKey);
  if (!chain.ok) return { sequence, code: "chain_proof_bad_signature", message: chain.refusal };
  const { header } = chain.value;
  const o = open(input.reply, DOMAIN.UsageAuditReply, REPLY_LIMITS);
  if (!o.ok || !sameKey(o.value.signer, input.nodeKey)) return { sequence, code: "bad_reply", message: "the node's answer is not signed by its registered key" };
  let r: WireUsageAuditReply;
  try {
    r = decode("UsageAuditReply", o.value.payload, REPLY_LIMITS);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    return { sequence, code: "bad_reply", message: `the node's answer cannot be decoded: ${err.message}` };
  }
  if (!r.found) return { sequence, code: "not_found", message: r.rejection?.message ?? `no record of deployment ${deploymentId} in proof ${sequence}` };
  const nodeProof = open(r.proof, DOMAIN.UsageProof, { maxBytes: 4096 });
  if (!nodeProof.ok || !hashesEqual(proofHash(nodeProof.value.payload), chain.value.hash)) {
    return { sequence, code: "proof_mismatch", message: `the node's proof ${sequence} is not the one the chain accepted` };
  }
  let record: UsageRecord;
  try {
    record = decodeRecord(r.record);
  } catch (err) {
    return { sequence, code: "bad_reply", message: `the node's record cannot be decoded: ${(err as Error).message}` };
  }
  if (record.deploymentId !== deploymentId) return { sequence, code: "wrong_record", message: `the node answered with deployment ${record.deploymentId}'s record` };
  if (!verifyInclusion(r.record, r.path, header.recordsRoot)) {
    const got = rootFromPath(leafHash(r.record), r.path);
    return { sequence, code: "root_mismatch", message: `the record hashes up to ${got ? hex(got) : "nothing (a malformed path)"}, not to the root the chain holds for proof ${sequence} (${hex(header.recordsRoot)})`, record };
  }
  return { sequence, code: "holds", message: `deployment ${deploymentId}'s record is in proof ${sequence} (root ${hex(header.recordsRoot)})`, record };
}

/** Ask node N for deployment D's record in proof S (`<prefix>.node.<N>.usage.<S>`). */
export async function requestAudit(bus: Bus, subjects: Subjects, nodeId: number, sequence: number, deploymentId: number, timeoutMs = 5000): Promise<Uint8Array> {
  const m = await bus.request(subjects.nodeUsage(nodeId, sequence), encode("UsageAuditRequest", { deploymentId }), { timeout: timeoutMs });
  return m.data;
}

/** Why a proof's listing does or does not hold against the chain (stable codes, shown by `proofs audit` and `proofs records`). */
export type ListingCode =
  | "holds"
  /** the node has no such proof */
  | "not_found"
  /** the proof the chain holds is not signed by the node's registered key */
  | "chain_proof_bad_signature"
  /** a page is not signed by the node's registered key, cannot be decoded, or does not follow the page before it */
  | "bad_reply"
  /** a page names another proof than the one the chain accepted */
  | "proof_mismatch"
  /** the listing holds fewer or more records than the chain's proof counts */
  | "incomplete"
  /** the records are not in strictly ascending deployment id order */
  | "unsorted"
  /** the records do not hash up to the chain's root */
  | "root_mismatch"
  /** the records' amounts do not add up to the chain's totals */
  | "totals_mismatch"
  /** the node did not answer */
  | "node_unreachable";

export interface ListedRecord {
  index: number;
  /** the encoded UsageRecord: the leaf preimage without its 0x00 prefix */
  bytes: Uint8Array;
  record: UsageRecord;
}

export interface ListingResult {
  sequence: number;
  code: ListingCode;
  message: string;
  /** the chain's header, when its proof opened */
  header?: ProofHeader;
  /** every record, when the pages were well-formed (also when the root or totals do not hold) */
  records?: ListedRecord[];
}

/** Records per page asked by default, and the most a node puts in one page (agent/usage/service.ts). */
export const LISTING_PAGE = 256;
export const LISTING_PAGE_MAX = 1024;
const PAGE_LIMITS = { maxBytes: 2 * 1024 * 1024, maxRepeated: LISTING_PAGE_MAX };

/** Decode one page without judging it (the fetch loop needs next_index); undefined when it cannot be decoded. */
function peekPage(bytes: Uint8Array): WireUsageRecordsReply | undefined {
  try {
    const env = decode("Signed", bytes, PAGE_LIMITS);
    return decode("UsageRecordsReply", env.payload, PAGE_LIMITS);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    return undefined;
  }
}

/**
 * A completeness audit of proof S, independently of the node: the chain's proof must carry the
 * node's registered signature; every page of the node's listing must be signed by the same key,
 * name the same proof and follow the page before it; the records must be as many as the proof
 * counts, in strictly ascending deployment id order, hash up to the chain's Merkle root, and their
 * amounts must add up to the chain's totals, field by field. Pure: the pages are fetched by `fetchListing`.
 */
export function checkListing(input: { sequence: number; chainProof: Uint8Array; nodeKey: Uint8Array; pages: Uint8Array[] }): ListingResult {
  const { sequence } = input;
  const chain = openChainProof(sequence, input.chainProof, input.nodeKey);
  if (!chain.ok) return { sequence, code: "chain_proof_bad_signature", message: chain.refusal };
  const { header, hash: chainHash } = chain.value;
  const records: ListedRecord[] = [];
  let expected = 0;
  const bad = (code: ListingCode, message: string): ListingResult => ({ sequence, code, message, header });
  if (input.pages.length === 0) return bad("incomplete", `the node sent no page of proof ${sequence}`);
  for (let p = 0; p < input.pages.length; p++) {
    const o = open(input.pages[p], DOMAIN.UsageRecordsReply, PAGE_LIMITS);
    if (!o.ok || !sameKey(o.value.signer, input.nodeKey)) return bad("bad_reply", `page ${p + 1} of the node's listing is not signed by its registered key${o.ok ? "" : ` (${o.refusal.message})`}`);
    let r: WireUsageRecordsReply;
    try {
      r = decode("UsageRecordsReply", o.value.payload, PAGE_LIMITS);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      return bad("bad_reply", `page ${p + 1} of the node's listing cannot be decoded: ${err.message}`);
    }
    if (!r.found) return bad(r.rejection?.code === "not_found" ? "not_found" : "bad_reply", r.rejection?.message ?? `the node lists no records of proof ${sequence}`);
    const nodeProof = open(r.proof, DOMAIN.UsageProof, { maxBytes: 4096 });
    if (!nodeProof.ok || !hashesEqual(proofHash(nodeProof.value.payload), chainHash)) return bad("proof_mismatch", `page ${p + 1} of the node's listing names another proof ${sequence} than the one the chain accepted`);
    if (r.recordCount !== header.recordCount) return bad("incomplete", `the node lists ${r.recordCount} records, the chain's proof ${sequence} counts ${header.recordCount}`);
    if (r.startIndex !== expected || r.nextIndex !== r.startIndex + r.records.length) return bad("bad_reply", `page ${p + 1} starts at record ${r.startIndex} and says the next is ${r.nextIndex} with ${r.records.length} records; expected it to start at ${expected}`);
    if (r.records.length === 0 && r.nextIndex < r.recordCount) return bad("incomplete", `page ${p + 1} is empty at record ${r.startIndex} of ${r.recordCount}`);
    for (const bytes of r.records) {
      let record: UsageRecord;
      try {
        record = decodeRecord(bytes);
      } catch (err) {
        return bad("bad_reply", `record ${expected} cannot be decoded: ${(err as Error).message}`);
      }
      records.push({ index: expected++, bytes, record });
    }
    if (p === input.pages.length - 1 && r.nextIndex < r.recordCount) return bad("incomplete", `the listing stops at record ${r.nextIndex} of ${r.recordCount}`);
  }
  if (records.length !== header.recordCount) return bad("incomplete", `the node lists ${records.length} records, the chain's proof ${sequence} counts ${header.recordCount}`);
  const withRecords = (code: ListingCode, message: string): ListingResult => ({ sequence, code, message, header, records });
  for (let i = 1; i < records.length; i++) {
    if (records[i].record.deploymentId <= records[i - 1].record.deploymentId) return withRecords("unsorted", `record ${i} (deployment ${records[i].record.deploymentId}) does not come after deployment ${records[i - 1].record.deploymentId}`);
  }
  const root = merkleRoot(records.map((r) => leafHash(r.bytes)));
  if (!hashesEqual(root, header.recordsRoot)) return withRecords("root_mismatch", `the records hash up to ${hex(root)}, not to the root the chain holds for proof ${sequence} (${hex(header.recordsRoot)})`);
  const sum = records.reduce((acc, r) => addAmounts(acc, r.record.amounts), zeroAmounts());
  const off = AMOUNT_FIELDS.filter((f) => sum[f] !== header.totals[f]);
  if (off.length > 0) return withRecords("totals_mismatch", `the records add up to ${off.map((f) => `${f} ${sum[f]}`).join(", ")}; the chain's totals say ${off.map((f) => `${f} ${header.totals[f]}`).join(", ")}`);
  return withRecords("holds", `the ${records.length} records of proof ${sequence} are complete: they hash up to the chain's root ${hex(header.recordsRoot)} and add up to its totals`);
}

/**
 * Fetch node N's listing of proof S, page by page (`list_records`), until the last page, a refusal,
 * or `maxPages` (a node cannot keep an auditor paging forever). The pages are judged by `checkListing`.
 */
export async function fetchListing(bus: Bus, subjects: Subjects, nodeId: number, sequence: number, opts: { pageSize?: number; maxPages: number; timeoutMs?: number }): Promise<Uint8Array[]> {
  const pages: Uint8Array[] = [];
  let start = 0;
  while (pages.length < opts.maxPages) {
    const req = encode("UsageAuditRequest", { listRecords: true, startIndex: start, maxRecords: opts.pageSize ?? LISTING_PAGE });
    const m = await bus.request(subjects.nodeUsage(nodeId, sequence), req, { timeout: opts.timeoutMs ?? 5000 });
    pages.push(m.data);
    const page = peekPage(m.data);
    if (!page || !page.found || page.nextIndex >= page.recordCount || page.nextIndex <= start) break;
    start = page.nextIndex;
  }
  return pages;
}

/** Proof S of node N as the chain holds it, the node's listing of its records, and the verdict of checkListing. */
export async function auditListing(bus: Bus, subjects: Subjects, chain: Pick<ChainClient, "node" | "proofs">, node: number, sequence: number, pageSize: number): Promise<ListingResult> {
  const info = await chain.node(node);
  if (!info) return { sequence, code: "not_found", message: `node ${node} is not registered on the chain` };
  const [p] = await chain.proofs(node, sequence, 1);
  if (!p || p.header.sequence !== sequence) return { sequence, code: "not_found", message: `the chain holds no proof ${sequence} of node ${node}` };
  let pages: Uint8Array[];
  try {
    // one page per record at worst, plus the last (empty) one: a node cannot keep us paging forever
    pages = await fetchListing(bus, subjects, node, sequence, { pageSize, maxPages: p.header.recordCount + 1 });
  } catch (err) {
    return { sequence, code: "node_unreachable", message: `node ${node} did not answer: ${(err as Error).message}` };
  }
  return checkListing({ sequence, chainProof: p.proof, nodeKey: info.publicKey, pages });
}
