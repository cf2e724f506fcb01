import type { Counter, MetricsRegistry } from "../metrics/metrics";

/** Chain stand-in metrics, built once from a registry (the stand-in owns them). */
export interface ChainMetrics {
  /** refused calls, by code (bad_signature, unknown_node, gap, overlap, duplicate, ..., internal) */
  refusals: Counter;
  /** accepted calls, by call: twin.register, node.register, farm.register, proof.submit, query */
  accepted: Counter;
}

export function createChainMetrics(registry: MetricsRegistry): ChainMetrics {
  return {
    refusals: registry.counter("capacity_agent_chain_refusals_total", "chain calls refused, by code", ["code"]),
    accepted: registry.counter("capacity_agent_chain_accepted_total", "chain calls accepted, by call", ["call"]),
  };
}
