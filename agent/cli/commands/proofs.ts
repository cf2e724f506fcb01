import { ChainClient } from "../../chain/client";
import { cryptoReady } from "../../identity/keys";
import { amountsToJson, proofHash, type ProofHeader } from "../../proofs/proof";
import { auditListing, checkAudit, LISTING_PAGE, LISTING_PAGE_MAX, requestAudit, type AuditResult } from "../../usage/audit";
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

const HELP = `usage: capacity-agent proofs list    --node N [--nats URL] [--json]
       capacity-agent proofs show    --node N --sequence S [--nats URL] [--json]
       capacity-agent proofs verify  --node N --deployment D [--sequence S] [--nats URL] [--json]
       capacity-agent proofs records --node N --sequence S [--page-size K] [--nats URL] [--json]
       capacity-agent proofs audit   --node N --sequence S [--page-size K] [--nats URL] [--json]

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
  records  every usage record of proof S, read from the node's signed listing
           (tfgrid.v1.node.<N>.usage.<S>, paged) and printed only when the listing is complete
           and holds against the chain (as audit checks); else exit 1 with the reason.
           JSON: [{"index","deploymentId","twinId","firstVersion","lastVersion","servedMs",
           "amounts":{...},"leaf"}] (amounts as decimal strings; leaf = the encoded record, 0x hex)
  audit    a completeness audit of proof S, independently of the node: every page of the node's
           listing is signed by the node's registered key and names the chain's proof; the
           records are as many as the proof counts, sorted by deployment id, hash up to the
           chain's root, and add up to the chain's totals. Exit 0 when it holds, 1 when not.
           JSON: {"nodeId","sequence","holds","code","message","records","root","totals"}
  --node N        the node
  --sequence S    one proof (show, verify, records, audit)
  --deployment D  the deployment (contract id) to verify
  --page-size K   records per page of the listing (default ${LISTING_PAGE}, at most ${LISTING_PAGE_MAX})
  --nats URL      NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json          print JSON`;

export const proofsCommand: Command = {
  name: "proofs",
  help: HELP,
  options: { node: { type: "string" }, sequence: { type: "string" }, deployment: { type: "string" }, "page-size": { type: "string" }, ...NATS_OPTION, ...JSON_OPTION },
  positionals: true,
  async run({ values, positionals }, io) {
    const sub = positionals[0];
    if (positionals.length !== 1 || !SUBCOMMANDS.includes(sub)) throw new UsageError(`expected "proofs ${SUBCOMMANDS.join('", "proofs ')}", got "proofs ${positionals.join(" ")}"`);
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const sequence = intFlag(values, "sequence", { required: sub === "show" || sub === "records" || sub === "audit" });
    const pageSize = intFlag(values, "page-size", { min: 1, max: LISTING_PAGE_MAX }) ?? LISTING_PAGE;
    const deployment = intFlag(values, "deployment", { required: sub === "verify" });
    await cryptoReady(); // proofs and chain replies may be signed with sr25519 (it loads with blake2 anyway)
    return withNats(values, io, async (bus, subjects) => {
      const chain = new ChainClient(bus, subjects);
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
      if (sub === "records" || sub === "audit") {
        const r = await auditListing(bus, subjects, chain, node, sequence!, pageSize);
        if (sub === "records") {
          if (r.code !== "holds") {
            io.err(`capacity-agent proofs: [${r.code}] ${r.message}`);
            return EXIT_FAIL;
          }
          const rows = (r.records ?? []).map((x) => ({ index: x.index, ...x.record, amounts: amountsToJson(x.record.amounts), leaf: hex(x.bytes) }));
          if (values.json) io.out(JSON.stringify(rows));
          else {
            io.out(`node ${node}, proof ${sequence}: ${rows.length} record${rows.length === 1 ? "" : "s"} (complete, they hash up to the chain's root)`);
            for (const x of rows) io.out(`  [${x.index}] deployment ${x.deploymentId}  twin ${x.twinId}  v${x.firstVersion}..v${x.lastVersion}  served ${x.servedMs} ms  CU ${x.amounts.cuMicroHours} µh  SU ${x.amounts.suMicroHours} µh`);
          }
          return EXIT_OK;
        }
        const holds = r.code === "holds";
        if (values.json) {
          io.out(JSON.stringify({ nodeId: node, sequence, holds, code: r.code, message: r.message, records: r.records?.length, root: r.header ? hex(r.header.recordsRoot) : undefined, totals: r.header ? amountsToJson(r.header.totals) : undefined }));
        } else io.out(`node ${node}, proof ${sequence}: ${holds ? "holds" : `DOES NOT HOLD [${r.code}]`}: ${r.message}`);
        return holds ? EXIT_OK : EXIT_FAIL;
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
          reply = await requestAudit(bus, subjects, node, p.header.sequence, deployment!);
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

const SUBCOMMANDS = ["list", "show", "verify", "records", "audit"];


/** epoch-millisecond fields that `proofs show` prints as ISO times (--json keeps the numbers) */
const HUMAN_TIME_KEYS = ["periodStart", "periodEnd", "acceptedMs"];

/** The header bytes inside a Signed{UsageProof} envelope (the chain checked the signature already). */
function decodeHeaderBytes(envelope: Uint8Array): Uint8Array {
  return decode("Signed", envelope, { maxBytes: 4096 }).payload;
}
