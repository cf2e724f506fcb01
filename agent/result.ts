/**
 * One shape for decisions that can refuse: the value when it holds, the refusal when not.
 * Refusals are expected outcomes (a bad size, a spec with an unknown field, a request that does
 * not verify), returned as values with stable codes; exceptions are for bugs and I/O failure
 * (AgentError, agent/errors.ts).
 *
 * Internal decision functions return a `Result`; what goes on the wire or is printed (JSON with
 * `accepted`/`ok` and `code`) is converted at the edge and does not change.
 */
export type Result<T, R> = Ok<T> | Refused<R>;
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
}
export interface Refused<R> {
  readonly ok: false;
  readonly refusal: R;
}

export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

export function refused<R>(refusal: R): Refused<R> {
  return { ok: false, refusal };
}

/** The value of an ok result, else what `orElse` makes of the refusal (e.g. throws). */
export function unwrap<T, R>(r: Result<T, R>, orElse: (refusal: R) => T): T {
  return r.ok ? r.value : orElse(r.refusal);
}

/** A result with its value mapped; a refusal passes through. */
export function mapResult<T, U, R>(r: Result<T, R>, fn: (value: T) => U): Result<U, R> {
  return r.ok ? ok(fn(r.value)) : r;
}
