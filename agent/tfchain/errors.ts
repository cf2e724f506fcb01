import { AgentError } from "../errors";

export type TfchainErrorCode =
  /** an option is out of range; `field` names it */
  | "invalid_options"
  /** the chain's RPC endpoint did not answer (connect or call timed out, connection closed) */
  | "chain_unavailable"
  /** the runtime lacks a call or storage item the adapter needs, or its arguments are unknown */
  | "unsupported_runtime"
  /** an answer that cannot be used: a stored value that does not decode, an event without the expected payload */
  | "bad_reply"
  /** a farm or pricing policy that is not on the chain */
  | "not_found";

/** Errors of the tfchain adapter: a stable `code`, the bad field for options, `cause` kept. */
export class TfchainError extends AgentError<TfchainErrorCode> {
  readonly field?: string;
  constructor(code: TfchainErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(code, message, options);
    this.name = "TfchainError";
    this.field = options?.field;
  }
}
