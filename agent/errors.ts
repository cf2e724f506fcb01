/**
 * The one error base of the agent (the pattern of Lodestar's `LodestarError`): every module's error
 * class extends it, so every thrown error of ours has a stable `code` (a string enum per module,
 * usable as a metric label and printed by the CLI as `[code] message`), an optional typed `detail`
 * and the underlying error as `cause`.
 *
 * Errors are for bugs and I/O failures; expected outcomes (refusals, invalid gossip) are values:
 * `Result` (agent/result.ts).
 *
 * The class name stays each module's (`StoreError`, `ChainError`, ...) and `name` is what the
 * module set, so messages and logs read as before.
 */
export class AgentError<C extends string = string, D = unknown> extends Error {
  readonly code: C;
  /** what the code carries besides its message, when the module gives one */
  readonly detail?: D;

  constructor(code: C, message: string, options?: { detail?: D; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.detail !== undefined) this.detail = options.detail;
  }
}

/** True when `err` is an AgentError, with `code` when given. */
export function isAgentError<C extends string>(err: unknown, code?: C): err is AgentError<C> {
  return err instanceof AgentError && (code === undefined || err.code === code);
}
