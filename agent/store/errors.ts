/**
 * corrupt, newer_schema, locked, io: the store cannot be used. store_full: the disk holding it is
 * full (writes are refused, reads go on). data_dir_read_only: the data directory's file system is
 * mounted read-only.
 */
export type StoreErrorCode = "corrupt" | "newer_schema" | "io" | "locked" | "store_full" | "data_dir_read_only";

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
