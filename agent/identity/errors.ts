import { AgentError } from "../errors";

export type IdentityErrorCode = "key_missing" | "key_invalid" | "key_permissions" | "key_exists";

export class IdentityError extends AgentError<IdentityErrorCode> {
  readonly path?: string;
  constructor(code: IdentityErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(code, message, options);
    this.name = "IdentityError";
    this.path = options?.path;
  }
}
