import { AgentError } from "../errors";

export type GossipErrorCode =
  /** an option is out of range; `field` names it */
  | "invalid_options"
  /** the asked node did not answer a peers request */
  | "node_unreachable"
  /** an answer that cannot be trusted (bad envelope, bad signature, wrong signer) */
  | "bad_reply"
  /** NATS refused a request or a subscription */
  | "bus";

/** Errors of the gossip module: a stable `code`, the bad field for options, `cause` kept. */
export class GossipError extends AgentError<GossipErrorCode> {
  readonly field?: string;
  constructor(code: GossipErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(code, message, options);
    this.name = "GossipError";
    this.field = options?.field;
  }
}
