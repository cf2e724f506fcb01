export type IdentityErrorCode = "key_missing" | "key_invalid" | "key_permissions" | "key_exists";

export class IdentityError extends Error {
  readonly code: IdentityErrorCode;
  readonly path?: string;
  constructor(code: IdentityErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "IdentityError";
    this.code = code;
    this.path = options?.path;
  }
}
