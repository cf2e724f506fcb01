/**
 * Domain tags: a signature covers utf8(tag) || 0x00 || payload, one tag per message type, so a
 * signature made for one type can never be accepted as another. Add a tag per new signed type;
 * never change an existing one (that would invalidate every signature made with it).
 */
export const DOMAIN = {
  Deployment: "tfgrid.capacity.v1/Deployment",
  DeleteRequest: "tfgrid.capacity.v1/DeleteRequest",
  DecisionReply: "tfgrid.capacity.v1/DecisionReply",
  GetReply: "tfgrid.capacity.v1/GetReply",
  StatusReply: "tfgrid.capacity.v1/StatusReply",
  CapacityAnnouncement: "tfgrid.capacity.v1/CapacityAnnouncement",
  PeersReply: "tfgrid.capacity.v1/PeersReply",
  UsageProof: "tfgrid.capacity.v1/UsageProof",
  ChainCall: "tfgrid.capacity.v1/ChainCall",
  ChainReply: "tfgrid.capacity.v1/ChainReply",
  ChainEvent: "tfgrid.capacity.v1/ChainEvent",
  UsageAuditReply: "tfgrid.capacity.v1/UsageAuditReply",
  UsageRecordsReply: "tfgrid.capacity.v1/UsageRecordsReply",
  PowerMessage: "tfgrid.capacity.v1/PowerMessage",
  PowerReply: "tfgrid.capacity.v1/PowerReply",
  DecisionsReply: "tfgrid.capacity.v1/DecisionsReply",
} as const;

export type Domain = (typeof DOMAIN)[keyof typeof DOMAIN];
