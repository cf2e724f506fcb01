import * as fs from "node:fs";
import * as path from "node:path";
import { StoreError } from "./errors";

/**
 * The agent's files are its own: the data directory is 0700, the store (agent.db and its -wal and
 * -shm), the registry and key files 0600, whatever the umask. A looser mode found at start is
 * tightened and reported to `onTightened` (the agent logs `permissions_tightened`).
 */
export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** Called when a file or directory had a looser mode and was tightened. */
export type OnTightened = (file: string, fromMode: number, toMode: number) => void;

/**
 * chmod `file` to `mode` when it grants more than `mode`; true when it was changed. A shared
 * directory (sticky bit, like /tmp) or a file another user owns is left alone: the agent only
 * narrows what is its own.
 */
export function tighten(file: string, mode: number, onTightened?: OnTightened): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false; // absent: nothing to tighten
  }
  if ((st.mode & 0o1000) !== 0) return false;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return false;
  const have = st.mode & 0o777;
  if ((have & ~mode) === 0) return false;
  fs.chmodSync(file, have & mode);
  onTightened?.(file, have, have & mode);
  return true;
}

/** The nearest existing ancestor of `p` (p itself when it exists). */
function existingAncestor(p: string): string {
  let cur = path.resolve(p);
  while (!fs.existsSync(cur)) {
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return cur;
}

/** True when `dir` (an existing directory) is on a read-only file system. */
function onReadOnlyFs(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EROFS";
  }
}

function readOnlyError(dir: string, where: string, cause?: unknown): StoreError {
  return new StoreError(
    "data_dir_read_only",
    dir,
    `the data directory ${dir} is on a read-only file system (${where}); mount it read-write or pass --data DIR on a writable disk`,
    { cause },
  );
}

/**
 * Make sure `dir` exists as a private (0700) directory the agent can write. A directory that
 * cannot be made because its file system is read-only gets a StoreError `data_dir_read_only`
 * (Node reports that case as a misleading ENOENT); other failures are `io` with the path.
 */
export function ensurePrivateDir(dir: string, onTightened?: OnTightened): void {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs)) {
    try {
      fs.mkdirSync(abs, { recursive: true, mode: DIR_MODE });
    } catch (err) {
      const ancestor = existingAncestor(abs);
      if ((err as NodeJS.ErrnoException).code === "EROFS" || onReadOnlyFs(ancestor)) throw readOnlyError(dir, `cannot create it in ${ancestor}`, err);
      throw new StoreError("io", dir, `cannot create the data directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    fs.chmodSync(abs, DIR_MODE); // mkdir's mode is filtered by the umask
  } else {
    if (!fs.statSync(abs).isDirectory()) throw new StoreError("io", dir, `the data directory ${dir} is not a directory`);
    if (onReadOnlyFs(abs)) throw readOnlyError(dir, "it cannot be written");
    tighten(abs, DIR_MODE, onTightened);
  }
}

/**
 * Create `file` empty with mode 0600 when it does not exist (so SQLite, which gives its -wal and
 * -shm files the database file's mode, never makes them world-readable), else tighten it.
 */
export function ensurePrivateFile(file: string, onTightened?: OnTightened): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      tighten(file, FILE_MODE, onTightened);
      return;
    }
    if ((err as NodeJS.ErrnoException).code === "EROFS") throw readOnlyError(path.dirname(file), `cannot create ${path.basename(file)}`, err);
    throw err;
  }
  try {
    fs.fchmodSync(fd, FILE_MODE); // umask-independent
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write `text` to `file` atomically (a temporary file renamed over it) with mode 0600, fsync'd.
 */
export function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, FILE_MODE);
  try {
    fs.fchmodSync(fd, FILE_MODE);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
