import { PROPAGATION_BUCKETS, type Counter, type Gauge, type Histogram, type MetricsRegistry } from "../metrics/metrics";

/** Gossip metrics, built once from the agent's registry (the gossip module owns them). */
export interface GossipMetrics {
  /** announcements published, by trigger: start, change, heartbeat, reconnect */
  published: Counter;
  /** announcements kept in the view, by source: gossip or sync */
  accepted: Counter;
  /** announcements not kept, by reason (DROP_REASONS) */
  dropped: Counter;
  /** peers that left the view after missing their heartbeats */
  expired: Counter;
  /** find-capacity requests this node answered (it fitted), answered holding the asked deployment (holds), and skipped (it did not fit) */
  find: Counter;
  /** peers in the view */
  peers: Gauge;
  /** from an announcement's timestamp to this node keeping it, by source (gossip or sync) */
  propagation: Histogram;
}

/** `expiryHeartbeats`: the option that says after how many missed heartbeats a peer expires (for the help text). */
export function createGossipMetrics(registry: MetricsRegistry, expiryHeartbeats: number): GossipMetrics {
  return {
    published: registry.counter("capacity_agent_gossip_published_total", "capacity announcements published, by trigger", ["trigger"]),
    accepted: registry.counter("capacity_agent_gossip_accepted_total", "peer announcements kept in the view, by source", ["source"]),
    dropped: registry.counter("capacity_agent_gossip_dropped_total", "peer announcements dropped, by reason", ["reason"]),
    expired: registry.counter("capacity_agent_gossip_expired_total", `peers dropped from the view after ${expiryHeartbeats} missed heartbeats of their own`),
    find: registry.counter("capacity_agent_gossip_find_requests_total", "find-capacity requests seen, by result (answered, holds, no_fit)", ["result"]),
    peers: registry.gauge("capacity_agent_gossip_peers", "peers in the view"),
    propagation: registry.histogram("capacity_agent_gossip_propagation_seconds", "from a peer announcement's timestamp to this node keeping it, by source", ["source"], PROPAGATION_BUCKETS),
  };
}
