import type { BusHealth } from "../bus/nats";
import type { UsageStatusView } from "../api/messages";

/** The chain as usage-proof delivery last saw it (read-only; null in Health when the chain is disabled). */
export interface ChainHealth {
  /** false while the last submission of a waiting proof got no answer (chain_unavailable) or a refusal */
  ok: boolean;
  /** proofs built but not yet acknowledged by the chain */
  pending: number;
  lastSequence: number;
  deliveredSequence: number;
  /** the chain's last answer to a waiting proof ("" when nothing waits or it was not tried yet) */
  lastCode: string;
}

/** GET /healthz body. */
export interface Health {
  status: "ok" | "degraded" | "down";
  nats: BusHealth;
  chain: ChainHealth | null;
}

/** The chain's health from usage delivery: a proof waits and its last submission failed. */
export function chainHealthOf(u: UsageStatusView | undefined): ChainHealth {
  if (!u) return { ok: true, pending: 0, lastSequence: 0, deliveredSequence: 0, lastCode: "" };
  return { ok: !(u.pending > 0 && u.lastCode !== ""), pending: u.pending, lastSequence: u.lastSequence, deliveredSequence: u.deliveredSequence, lastCode: u.lastCode };
}

/**
 * Pure: down when NATS is not connected (the node cannot be reached: nothing it does is seen),
 * degraded when the chain does not take its proofs (the node serves; proofs wait in the outbox),
 * else ok.
 */
export function healthOf(nats: BusHealth, chain: ChainHealth | null): Health {
  const status = !nats.connected ? "down" : chain && !chain.ok ? "degraded" : "ok";
  return { status, nats, chain };
}
