import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../bus/subjects";
import { DOMAIN } from "../identity/domains";
import { open, sameKey } from "../identity/envelope";
import { leafHash, rootFromPath, verifyInclusion } from "../proofs/merkle";
import { decodeProofHeader, decodeRecord, proofHash, type ProofHeader, type UsageRecord } from "../proofs/proof";
import { decode, encode, WireError } from "../wire/codec";

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

interface WireAuditReply {
  found: boolean;
  rejection: { code: string; message: string } | null;
  proof: Uint8Array;
  record: Uint8Array;
  leafIndex: number;
  path: Array<{ hash: Uint8Array; left: boolean }>;
}

const hex = (b: Uint8Array): string => "0x" + Buffer.from(b).toString("hex");

const REPLY_LIMITS = { maxBytes: 1024 * 1024, maxRepeated: 64 };

/**
 * Check a deployment's record against the proof the CHAIN holds, independently of the node: the
 * chain's proof must carry the node's registered signature; the node's answer must be signed by
 * the same key, name the same proof (same hash), and its record must hash up to the chain's root.
 */
export function checkAudit(input: { sequence: number; deploymentId: number; chainProof: Uint8Array; nodeKey: Uint8Array; reply: Uint8Array }): AuditResult {
  const { sequence, deploymentId } = input;
  const chain = open(input.chainProof, DOMAIN.UsageProof, { maxBytes: 4096 });
  if (!chain.ok || !sameKey(chain.value.signer, input.nodeKey)) return { sequence, code: "chain_proof_bad_signature", message: `the chain's proof ${sequence} is not signed by the node's registered key` };
  let header: ProofHeader;
  try {
    header = decodeProofHeader(chain.value.payload);
  } catch (err) {
    return { sequence, code: "chain_proof_bad_signature", message: `the chain's proof ${sequence} cannot be decoded: ${(err as Error).message}` };
  }
  const o = open(input.reply, DOMAIN.UsageAuditReply, REPLY_LIMITS);
  if (!o.ok || !sameKey(o.value.signer, input.nodeKey)) return { sequence, code: "bad_reply", message: "the node's answer is not signed by its registered key" };
  let r: WireAuditReply;
  try {
    r = decode<WireAuditReply>("UsageAuditReply", o.value.payload, REPLY_LIMITS);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    return { sequence, code: "bad_reply", message: `the node's answer cannot be decoded: ${err.message}` };
  }
  if (!r.found) return { sequence, code: "not_found", message: r.rejection?.message ?? `no record of deployment ${deploymentId} in proof ${sequence}` };
  const nodeProof = open(r.proof, DOMAIN.UsageProof, { maxBytes: 4096 });
  if (!nodeProof.ok || Buffer.compare(Buffer.from(proofHash(nodeProof.value.payload)), Buffer.from(proofHash(chain.value.payload))) !== 0) {
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
export async function requestAudit(nc: NatsConnection, subjects: Subjects, nodeId: number, sequence: number, deploymentId: number, timeoutMs = 5000): Promise<Uint8Array> {
  const m = await nc.request(subjects.nodeUsage(nodeId, sequence), encode("UsageAuditRequest", { deploymentId }), { timeout: timeoutMs });
  return m.data;
}
