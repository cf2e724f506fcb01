import { ChainClient } from "../../chain/client";
import { cryptoReady } from "../../identity/keys";
import { amountsToJson, proofHash, type ProofHeader } from "../../proofs/proof";
import { checkAudit, requestAudit, type AuditResult } from "../../usage/audit";
import { withNats } from "../client";
import { isoTime } from "../format";
import { EXIT_FAIL, EXIT_OK, JSON_OPTION, NATS_OPTION, UsageError, intFlag, type Command } from "../framework";
import { decode } from "../../wire/codec";

const hex = (b: Uint8Array): string => "0x" + Buffer.from(b).toString("hex");

function headerJson(h: ProofHeader, headerBytes: Uint8Array, acceptedMs?: number): Record<string, unknown> {
  return {
    nodeId: h.nodeId,
    farmId: h.farmId,
    sequence: h.sequence,
    periodStart: h.periodStartMs,
    periodEnd: h.periodEndMs,
    root: hex(h.recordsRoot),
    records: h.recordCount,
    hash: hex(proofHash(headerBytes)),
    previousHash: hex(h.previousHash),
    downtimeMs: h.downtimeMs,
    totals: amountsToJson(h.totals),
    acceptedMs,
  };
}

/** All proofs the chain holds for a node, in sequence order (paged: a page may come back shorter than asked). */
async function chainProofs(chain: ChainClient, node: number): Promise<Array<{ proof: Uint8Array; header: ProofHeader; acceptedMs: number }>> {
  const out: Array<{ proof: Uint8Array; header: ProofHeader; acceptedMs: number }> = [];
  let next = 1;
  for (;;) {
    const page = await chain.proofs(node, next, 500);
    if (page.length === 0) return out;
    out.push(...page);
    next = page[page.length - 1].header.sequence + 1;
  }
}

const HELP = `usage: capacity-agent proofs list   --node N [--nats URL] [--json]
       capacity-agent proofs show   --node N --sequence S [--nats URL] [--json]
       capacity-agent proofs verify --node N --deployment D [--sequence S] [--nats URL] [--json]

Usage proofs as the chain holds them (read from the chain stand-in, tfgrid.v1.chain.query).
  list     every proof of node N, in sequence order.
           JSON: [{"sequence","periodStart","periodEnd","root","records","hash","previousHash","downtimeMs","totals","acceptedMs"}]
           (periods in ms since the epoch; roots and hashes 0x hex; totals as decimal strings)
  show     one proof, with its totals (JSON: one object as in list, plus "signer").
  verify   checks deployment D's usage record against the root the CHAIN holds, independently of
           the node: the chain's proof must be signed by the node's registered key; the node's
           answer (tfgrid.v1.node.<N>.usage.<S>) must be signed by the same key, name the same
           proof and hash up to the chain's root. Without --sequence every proof of the node is
           checked and those where D has no record are skipped. Exit 0 when it holds, 1 when not.
           JSON: {"nodeId","deploymentId","holds","checked":[{"sequence","code","message","record"}]}
  --node N        the node
  --sequence S    one proof (show, verify)
  --deployment D  the deployment (contract id) to verify
  --nats URL      NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json          print JSON`;

export const proofsCommand: Command = {
  name: "proofs",
  help: HELP,
  options: { node: { type: "string" }, sequence: { type: "string" }, deployment: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  positionals: true,
  async run({ values, positionals }, io) {
    const sub = positionals[0];
    if (positionals.length !== 1 || !["list", "show", "verify"].includes(sub)) throw new UsageError(`expected "proofs list", "proofs show" or "proofs verify", got "proofs ${positionals.join(" ")}"`);
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const sequence = intFlag(values, "sequence", { required: sub === "show" });
    const deployment = intFlag(values, "deployment", { required: sub === "verify" });
    await cryptoReady(); // proofs and chain replies may be signed with sr25519 (it loads with blake2 anyway)
    return withNats(values, io, async (nc, subjects) => {
      const chain = new ChainClient(nc, subjects);
      if (sub === "list") {
        const proofs = await chainProofs(chain, node);
        const rows = proofs.map((p) => headerJson(p.header, decodeHeaderBytes(p.proof), p.acceptedMs));
        if (values.json) io.out(JSON.stringify(rows));
        else {
          io.out(`node ${node}: ${rows.length} proof${rows.length === 1 ? "" : "s"} on the chain`);
          for (const r of rows) io.out(`  #${r.sequence}  ${isoTime(r.periodStart as number)} .. ${isoTime(r.periodEnd as number)}  ${r.records} records  downtime ${r.downtimeMs} ms  root ${String(r.root).slice(0, 18)}…`);
        }
        return EXIT_OK;
      }
      if (sub === "show") {
        const [p] = await chain.proofs(node, sequence!, 1);
        if (!p || p.header.sequence !== sequence) {
          io.err(`capacity-agent proofs: [not_found] the chain holds no proof ${sequence} of node ${node}`);
          return EXIT_FAIL;
        }
        const row = headerJson(p.header, decodeHeaderBytes(p.proof), p.acceptedMs);
        if (values.json) io.out(JSON.stringify(row));
        else io.out(Object.entries(row).map(([k, v]) => `${k.padEnd(13)} ${HUMAN_TIME_KEYS.includes(k) ? isoTime(v as number) : typeof v === "object" ? JSON.stringify(v) : String(v)}`).join("\n"));
        return EXIT_OK;
      }
      // verify
      const info = await chain.node(node);
      if (!info) {
        io.err(`capacity-agent proofs: [unknown_node] node ${node} is not registered on the chain`);
        return EXIT_FAIL;
      }
      const proofs = sequence ? (await chain.proofs(node, sequence, 1)).filter((p) => p.header.sequence === sequence) : await chainProofs(chain, node);
      if (sequence && proofs.length === 0) {
        io.err(`capacity-agent proofs: [not_found] the chain holds no proof ${sequence} of node ${node}`);
        return EXIT_FAIL;
      }
      const checked: AuditResult[] = [];
      for (const p of proofs) {
        let reply: Uint8Array;
        try {
          reply = await requestAudit(nc, subjects, node, p.header.sequence, deployment!);
        } catch (err) {
          checked.push({ sequence: p.header.sequence, code: "node_unreachable", message: `node ${node} did not answer: ${(err as Error).message}` });
          continue;
        }
        checked.push(checkAudit({ sequence: p.header.sequence, deploymentId: deployment!, chainProof: p.proof, nodeKey: info.publicKey, reply }));
      }
      // without --sequence, proofs that hold no record of D are skipped; with it, a missing record fails
      const relevant = sequence ? checked : checked.filter((c) => c.code !== "not_found");
      const holds = relevant.length > 0 && relevant.every((c) => c.code === "holds");
      if (values.json) {
        io.out(JSON.stringify({ nodeId: node, deploymentId: deployment, holds, checked: relevant.map((c) => ({ sequence: c.sequence, code: c.code, message: c.message, record: c.record ? { ...c.record, amounts: amountsToJson(c.record.amounts) } : undefined })) }));
      } else {
        for (const c of relevant) io.out(`  #${c.sequence}  ${c.code}: ${c.message}`);
        io.out(holds ? `deployment ${deployment}: every record holds against the chain (${relevant.length} proof${relevant.length === 1 ? "" : "s"})` : `deployment ${deployment}: DOES NOT HOLD${relevant.length === 0 ? " (no record in any proof)" : ""}`);
      }
      return holds ? EXIT_OK : EXIT_FAIL;
    });
  },
};

/** epoch-millisecond fields that `proofs show` prints as ISO times (--json keeps the numbers) */
const HUMAN_TIME_KEYS = ["periodStart", "periodEnd", "acceptedMs"];

/** The header bytes inside a Signed{UsageProof} envelope (the chain checked the signature already). */
function decodeHeaderBytes(envelope: Uint8Array): Uint8Array {
  return decode<{ payload: Uint8Array }>("Signed", envelope, { maxBytes: 4096 }).payload;
}
