import { AgentError } from "../errors";

export type PowerErrorCode =
  /** an option is out of range; `field` names it */
  | "invalid_options"
  /** a power driver failed to act (command exited non-zero, socket error) */
  | "driver_failed"
  /** a node asked to wake has no MAC address in its announcement */
  | "no_mac";

/** Errors of the power module: a stable `code`, the bad field for options, `cause` kept. */
export class PowerError extends AgentError<PowerErrorCode> {
  readonly field?: string;
  constructor(code: PowerErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(code, message, options);
    this.name = "PowerError";
    this.field = options?.field;
  }
}
