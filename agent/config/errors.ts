import { AgentError } from "../errors";

export class ConfigError extends AgentError<"invalid_config"> {
  /** dotted path of the bad field, e.g. "capacity.overprovision.cru" or "--node-id" */
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super("invalid_config", `${field}: ${message}`, options);
    this.name = "ConfigError";
    this.field = field;
  }
}
