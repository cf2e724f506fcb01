/**
 * The signed listing of a period's records and the completeness audit (issue 8): a real
 * nats-server, the chain stand-in and an agent as real processes (`run --period 5`), real keys and
 * stores. The listing is read in small pages; a listing tampered with by the node's own key (a
 * record changed, one left out) does not pass the audit, through the library and through the CLI.
 */
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { DOMAIN } from "../../agent/identity/domains";
import { seal } from "../../agent/identity/envelope";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { leafHash, merkleRoot } from "../../agent/proofs/merkle";
import { addAmounts, amountsToJson, decodeRecord, encodeRecord, zeroAmounts } from "../../agent/proofs/proof";
import { checkListing, fetchListing } from "../../agent/usage/audit";
import { decode, encode } from "../../agent/wire/codec";
import type { WireUsageRecordsReply } from "../../agent/wire/generated";
import { cli } from "../utils/agent";
import { eventually } from "../utils/grid";
import { startMeteredNode, type MeteredNode } from "../utils/metered-node";
import { natsBus } from "../../agent/bus/nats";

const PERIOD_MS = 5000;
const DEPLOYMENTS = [3, 5, 8, 13, 21];
let node: MeteredNode;
let nodeKey: Signer;
let forger: Signer;
const subjects = new Subjects();

type Proof = Awaited<ReturnType<ChainClient["proofs"]>>[number];

const openPage = (bytes: Uint8Array): WireUsageRecordsReply => decode("UsageRecordsReply", decode("Signed", bytes).payload);
const signPage = (signer: Signer, page: WireUsageRecordsReply): Uint8Array => seal(signer, DOMAIN.UsageRecordsReply, encode("UsageRecordsReply", page));

beforeAll(async () => {
  await cryptoReady();
  node = await startMeteredNode({ dirPrefix: "records-", periodS: PERIOD_MS / 1000, otherKeys: ["forger"], deployments: DEPLOYMENTS.map((id, i) => ({ id, workloads: [{ name: "d", type: "zmount", size: `${i + 1}GiB` }] })) });
  nodeKey = await loadKeyFile(node.keys.node);
  forger = await loadKeyFile(node.keys.forger);
}, 60_000);

afterAll(() => node?.stop());

/** The first proof on the chain of a period that began with every deployment in place. */
async function fullProof(): Promise<Proof> {
  return eventually(async () => (await node.chain.proofs(1, 1, 1000)).find((p) => p.header.periodStartMs >= node.deployedAt) ?? null, 4 * PERIOD_MS + 10_000, "a proof with every deployment");
}

test("the node lists a proof's records in signed pages; the records hash up to the chain's root and add up to its totals", async () => {
  const p = await fullProof();
  expect(p.header.recordCount).toBe(DEPLOYMENTS.length);
  const pages = await fetchListing(natsBus(node.nc), subjects, 1, p.header.sequence, { pageSize: 2, maxPages: 10 });
  expect(pages.map((b) => openPage(b).records.length)).toEqual([2, 2, 1]);
  expect(pages.map((b) => openPage(b).startIndex)).toEqual([0, 2, 4]);
  // recomputed here from the raw pages, not through checkListing
  const leaves = pages.flatMap((b) => openPage(b).records);
  expect(Buffer.from(merkleRoot(leaves.map(leafHash))).toString("hex")).toBe(Buffer.from(p.header.recordsRoot).toString("hex"));
  const sum = leaves.map(decodeRecord).reduce((a, r) => addAmounts(a, r.amounts), zeroAmounts());
  expect(amountsToJson(sum)).toEqual(amountsToJson(p.header.totals));
  expect(sum.sruByteSeconds).toBe(5n * (1n + 2n + 3n + 4n + 5n) * 1024n ** 3n);

  const result = checkListing({ sequence: p.header.sequence, chainProof: p.proof, nodeKey: nodeKey.publicKey, pages });
  expect(result).toMatchObject({ code: "holds" });

  const out = await cli(["proofs", "records", "--node", "1", "--sequence", String(p.header.sequence), "--page-size", "2", "--nats", node.nats.url, "--json"]);
  expect(out.stderr).toBe("");
  expect(out.code).toBe(0);
  const rows = JSON.parse(out.stdout) as Array<{ index: number; deploymentId: number; twinId: number; servedMs: number; amounts: Record<string, string>; leaf: string }>;
  expect(rows.map((r) => r.deploymentId)).toEqual(DEPLOYMENTS);
  expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
  expect(rows.every((r) => r.twinId === 7 && r.servedMs === PERIOD_MS)).toBe(true);
  expect(rows[2].amounts.sruByteSeconds).toBe(String(5n * 3n * 1024n ** 3n));
  expect(rows.map((r) => r.leaf)).toEqual(leaves.map((l) => "0x" + Buffer.from(l).toString("hex")));

  const audit = await cli(["proofs", "audit", "--node", "1", "--sequence", String(p.header.sequence), "--page-size", "2", "--nats", node.nats.url, "--json"]);
  expect(audit.stderr).toBe("");
  expect(audit.code).toBe(0);
  expect(JSON.parse(audit.stdout)).toMatchObject({ nodeId: 1, sequence: p.header.sequence, holds: true, code: "holds", records: DEPLOYMENTS.length, root: "0x" + Buffer.from(p.header.recordsRoot).toString("hex") });
}, 60_000);

test("a listing the node re-signed with a record changed, one left out, or signed by another key fails the audit", async () => {
  const p = await fullProof();
  const pages = await fetchListing(natsBus(node.nc), subjects, 1, p.header.sequence, { pageSize: 2, maxPages: 10 });
  const check = (tampered: Uint8Array[]) => checkListing({ sequence: p.header.sequence, chainProof: p.proof, nodeKey: nodeKey.publicKey, pages: tampered });

  // a record changed (its served time halved), re-signed by the node's own key
  const changed = pages.slice();
  const second = openPage(pages[1]);
  const r = decodeRecord(second.records[0]);
  changed[1] = signPage(nodeKey, { ...second, records: [encodeRecord({ ...r, amounts: { ...r.amounts, sruByteSeconds: r.amounts.sruByteSeconds / 2n } }), second.records[1]] });
  expect(check(changed)).toMatchObject({ code: "root_mismatch" });

  // one record left out: the pages are re-numbered and the count lowered to match
  const first = openPage(pages[0]);
  const third = openPage(pages[2]);
  const dropped = [
    signPage(nodeKey, { ...first, recordCount: 4 }),
    signPage(nodeKey, { ...second, recordCount: 4, records: [second.records[1]], nextIndex: 3 }),
    signPage(nodeKey, { ...third, recordCount: 4, startIndex: 3, nextIndex: 4 }),
  ];
  expect(check(dropped)).toMatchObject({ code: "incomplete" });
  // ... or the count kept: the listing stops short
  expect(check(pages.slice(0, 2))).toMatchObject({ code: "incomplete" });

  // two records swapped: out of order
  const swapped = pages.slice();
  swapped[0] = signPage(nodeKey, { ...first, records: [first.records[1], first.records[0]] });
  expect(check(swapped)).toMatchObject({ code: "unsorted" });

  // an honest-looking page signed by another key
  const forged = pages.slice();
  forged[2] = signPage(forger, third);
  expect(check(forged)).toMatchObject({ code: "bad_reply" });
}, 60_000);

test("proofs audit and proofs records refuse a node that serves a tampered listing (exit 1, stable code)", async () => {
  const p = await fullProof();
  const honest = await fetchListing(natsBus(node.nc), subjects, 1, p.header.sequence, { pageSize: 1024, maxPages: 2 });
  expect(honest).toHaveLength(1);
  const page = openPage(honest[0]);
  const r = decodeRecord(page.records[4]);
  const lie = signPage(nodeKey, { ...page, records: [...page.records.slice(0, 4), encodeRecord({ ...r, amounts: { ...r.amounts, cuMicroHours: r.amounts.cuMicroHours + 1000n } })] });
  // the real agent stops answering; a liar holding the node's key takes its subject
  await node.agent.stop();
  const liar = node.nc.subscribe(subjects.nodeUsage(1, "*"), {
    callback: (_e, m) => {
      m.respond(lie);
    },
  });
  try {
    const audit = await cli(["proofs", "audit", "--node", "1", "--sequence", String(p.header.sequence), "--nats", node.nats.url, "--json"]);
    expect(audit.code).toBe(1);
    expect(JSON.parse(audit.stdout)).toMatchObject({ holds: false, code: "root_mismatch" });
    const records = await cli(["proofs", "records", "--node", "1", "--sequence", String(p.header.sequence), "--nats", node.nats.url, "--json"]);
    expect(records.code).toBe(1);
    expect(records.stdout).toBe("");
    expect(records.stderr).toContain("[root_mismatch]");
  } finally {
    liar.unsubscribe();
  }
  // nobody answers now: a stable code, not a stack trace
  const gone = await cli(["proofs", "audit", "--node", "1", "--sequence", String(p.header.sequence), "--nats", node.nats.url, "--json"]);
  expect(gone.code).toBe(1);
  expect(JSON.parse(gone.stdout)).toMatchObject({ holds: false, code: "node_unreachable" });
}, 60_000);
