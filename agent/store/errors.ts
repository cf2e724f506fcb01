export type StoreErrorCode = "corrupt" | "newer_schema" | "io" | "locked" | "data_dir_locked";

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly file: string;
  constructor(code: StoreErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
    this.file = file;
  }
}
