import { AgentError } from "../errors";

/**
 * corrupt, newer_schema, locked, io: the store cannot be used. store_full: the disk holding it is
 * full (writes are refused, reads go on). data_dir_read_only: the data directory's file system is
 * mounted read-only. data_dir_locked: another process holds the data directory.
 */
export type StoreErrorCode = "corrupt" | "newer_schema" | "io" | "locked" | "store_full" | "data_dir_read_only" | "data_dir_locked";

export class StoreError extends AgentError<StoreErrorCode> {
  readonly file: string;
  constructor(code: StoreErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "StoreError";
    this.file = file;
  }
}
