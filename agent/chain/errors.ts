import { AgentError } from "../errors";

export type ChainErrorCode =
  /** an option is out of range; `field` names it */
  | "invalid_options"
  /** nothing answered on the chain subjects in time (no responders, timeout, connection closed) */
  | "chain_unavailable"
  /** a reply that cannot be trusted: bad envelope, bad signature, not the pinned chain key, undecodable */
  | "bad_reply"
  /** the chain refused a read (e.g. `malformed` query); `refusal` holds its code */
  | "refused";

/** Errors of the chain module: a stable `code`, the bad field for options, `cause` kept. */
export class ChainError extends AgentError<ChainErrorCode> {
  readonly field?: string;
  /** for code "refused": the chain's rejection code */
  readonly refusal?: string;
  /** for chain_unavailable: NATS said nobody serves the chain subjects (no chain runs on this bus) */
  readonly noResponders: boolean;
  constructor(code: ChainErrorCode, message: string, options?: { field?: string; refusal?: string; cause?: unknown; noResponders?: boolean }) {
    super(code, message, options);
    this.name = "ChainError";
    this.field = options?.field;
    this.refusal = options?.refusal;
    this.noResponders = options?.noResponders ?? false;
  }
}
