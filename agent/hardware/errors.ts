import { AgentError } from "../errors";

/** What each error code carries besides its message. */
export interface HardwareErrorPayloads {
  /** an option is missing its type or range; `field` is its dotted path, e.g. "hardware.diskOverrides.vda" */
  invalid_option: { field: string };
  /** reading the hardware failed; `step` names what was being read (the I/O error is the `cause`) */
  probe_failed: { step: ProbeStep };
  /** HardwareMonitor.current() was called before start() resolved (a bug in the caller) */
  not_started: Record<string, never>;
}

/** What the probe was reading when it failed. */
export type ProbeStep = "cpu" | "memory" | "block_devices" | "disk_layout" | "rotational" | "cgroup";

export type HardwareErrorCode = keyof HardwareErrorPayloads;

/**
 * Errors of the hardware module: a stable `code` (usable as a metric label), a typed `payload`
 * per code, and the underlying error kept as `cause`.
 */
export class HardwareError<C extends HardwareErrorCode = HardwareErrorCode> extends AgentError<C, HardwareErrorPayloads[C]> {
  readonly payload: HardwareErrorPayloads[C];
  constructor(code: C, message: string, payload: HardwareErrorPayloads[C], options?: { cause?: unknown }) {
    super(code, message, { detail: payload, cause: options?.cause });
    this.name = "HardwareError";
    this.payload = payload;
  }

  /** The bad option's dotted path for `invalid_option`, else undefined. */
  get field(): string | undefined {
    return this.code === "invalid_option" ? (this.payload as HardwareErrorPayloads["invalid_option"]).field : undefined;
  }
}

/** An `invalid_option` error whose message starts with the field's path. */
export function invalidOption(field: string, expected: string): HardwareError<"invalid_option"> {
  return new HardwareError("invalid_option", `${field}: ${expected}`, { field });
}
