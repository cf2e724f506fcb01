import { hashesEqual } from "../proofs/merkle";
import type { UsageAmounts } from "../proofs/proof";
import type { ListingResult } from "../usage/audit";
import { price, type PricingPolicy } from "./pricing";
import { amountsEqual, encodeTwinSubtotal, firstDifference, twinSubtotals, twinsTree } from "./twins";

/** Why a twin's bill does or does not hold (stable codes, shown by `bills verify`). */
export type BillCode =
  | "holds"
  /** the node's listing of the proof's records does not hold against the chain (its code in the message) */
  | "listing_failed"
  /** the proof has no twins_root (from before billing) */
  | "not_billed"
  /** the subtotals of the records do not hash up to the chain's twins_root, or are not as many as it counts */
  | "twins_root_mismatch"
  /** the chain's bill is not the sum of the twin's records (count or amounts) */
  | "subtotal_mismatch"
  /** the amount charged is not the price of the subtotal */
  | "amount_mismatch";

export interface BillResult {
  code: BillCode;
  message: string;
  /** the twin's subtotal recomputed from its records */
  subtotal?: { recordCount: number; amounts: UsageAmounts };
  /** the amount recomputed from it */
  amount?: bigint;
}

/**
 * Check a twin's bill independently of the node: `listing` is the node's listing of the proof's
 * records as checkListing judged it against the chain's proof (signed by the node's registered
 * key, complete, hashing up to the chain's records root, adding up to its totals). From those
 * records the twin subtotals are recomputed: they must hash up to the chain's twins_root (so the
 * subtotal the chain charged is the one the node committed to), the twin's subtotal must equal the
 * bill's amounts, and the bill's amount must be the price of it. Pure.
 */
export function checkBill(input: { twinId: number; bill: { recordCount: number; amounts: UsageAmounts; amount: bigint }; listing: ListingResult; pricing: PricingPolicy }): BillResult {
  const { twinId, bill, listing } = input;
  if (listing.code !== "holds" || !listing.header || !listing.records) return { code: "listing_failed", message: `the node's records of the proof do not hold against the chain: [${listing.code}] ${listing.message}` };
  const h = listing.header;
  if (!h.twinsRoot || h.twinsRoot.length === 0) return { code: "not_billed", message: `proof ${h.sequence} of node ${h.nodeId} commits to no twin subtotals (it is from before billing)` };
  const subtotals = twinSubtotals(listing.records.map((r) => r.record));
  const root = twinsTree(subtotals.map(encodeTwinSubtotal)).root;
  if (!hashesEqual(root, h.twinsRoot) || subtotals.length !== h.twinCount) {
    return { code: "twins_root_mismatch", message: `the ${subtotals.length} twin subtotals of the records hash up to ${hex(root)}; the chain's proof holds ${hex(h.twinsRoot)} over ${h.twinCount} twins: the node committed to other subtotals than its records` };
  }
  const mine = subtotals.find((t) => t.twinId === twinId);
  if (!mine) return { code: "subtotal_mismatch", message: `twin ${twinId} has no record in proof ${h.sequence} of node ${h.nodeId}, but the chain billed it` };
  const subtotal = { recordCount: mine.recordCount, amounts: mine.amounts };
  if (mine.recordCount !== bill.recordCount || !amountsEqual(mine.amounts, bill.amounts)) {
    const f = firstDifference(mine.amounts, bill.amounts);
    const what = f ? `${f}: the records sum to ${mine.amounts[f]}, the bill says ${bill.amounts[f]}` : `records: ${mine.recordCount}, the bill says ${bill.recordCount}`;
    return { code: "subtotal_mismatch", message: `twin ${twinId}'s bill is not the sum of its records (${what})`, subtotal };
  }
  const amount = price(mine.amounts, input.pricing);
  if (amount !== bill.amount) return { code: "amount_mismatch", message: `the subtotal prices at ${amount}, the chain charged ${bill.amount}`, subtotal, amount };
  return { code: "holds", message: `twin ${twinId}'s bill for proof ${h.sequence} of node ${h.nodeId} holds: ${mine.recordCount} record(s), the subtotal is in the chain's twins root and prices at ${amount}`, subtotal, amount };
}

function hex(b: Uint8Array): string {
  return "0x" + Buffer.from(b).toString("hex");
}
