import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import { StoreError } from "./errors";

/** What the holder writes next to its lock so a refused process can name it. */
export interface LockHolder {
  pid: number;
  startedMs: number;
  command: string;
}

/**
 * An exclusive lock on a data directory, held for the life of the process (DESIGN.md: one agent,
 * one store). It is a real OS lock: an SQLite file (`<name>.lock`) held in an open EXCLUSIVE
 * transaction, i.e. a POSIX fcntl lock, which the kernel drops when the process ends however it
 * ends (SIGKILL included), so there is no stale lock to detect and no pid to be fooled by reuse.
 * The holder's pid goes to `<name>.pid` after the lock is taken, only to name it in the error a
 * second process gets: `data_dir_locked`. Works across processes and within one (SQLite tracks
 * its locks per file in-process too).
 */
export class DirLock {
  private constructor(
    readonly dir: string,
    private readonly db: Database.Database,
    private readonly pidFile: string,
  ) {}

  static acquire(dir: string, name: string, command: string, now: () => number = Date.now): DirLock {
    const abs = path.resolve(dir);
    try {
      fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StoreError("io", abs, `cannot create the data directory ${abs}: ${(err as Error).message}`, { cause: err });
    }
    const lockFile = path.join(abs, `${name}.lock`);
    const pidFile = path.join(abs, `${name}.pid`);
    let db: Database.Database;
    try {
      db = new Database(lockFile, { timeout: 0 });
    } catch (err) {
      throw new StoreError("io", lockFile, `cannot open the lock file ${lockFile}: ${(err as Error).message}`, { cause: err });
    }
    try {
      // the journal in memory: taking the lock writes nothing to disk, so it works on a full disk too
      db.pragma("journal_mode = MEMORY");
      db.exec("BEGIN EXCLUSIVE");
    } catch (err) {
      db.close();
      const code = (err as { code?: string }).code;
      if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
        const holder = readHolder(pidFile);
        const who = holder ? `pid ${holder.pid}, ${holder.command}, started ${new Date(holder.startedMs).toISOString()}` : "pid unknown";
        throw new StoreError(
          "data_dir_locked",
          abs,
          `the data directory ${abs} is in use by another process (${who}); stop it first, or give this one its own data directory (--data DIR)`,
          { cause: err },
        );
      }
      throw new StoreError("io", lockFile, `cannot lock ${lockFile}: ${(err as Error).message}`, { cause: err });
    }
    const holder: LockHolder = { pid: process.pid, startedMs: now(), command };
    const tmp = `${pidFile}.tmp-${process.pid}`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(holder) + "\n", { mode: 0o600 });
      fs.renameSync(tmp, pidFile);
    } catch {
      // a full disk: the lock holds all the same; only the pid in a refusal's message is missing
      fs.rmSync(tmp, { force: true });
    }
    return new DirLock(abs, db, pidFile);
  }

  /** Let go of the lock (also dropped by the OS when the process ends). */
  release(): void {
    if (!this.db.open) return;
    const holder = readHolder(this.pidFile);
    if (holder?.pid === process.pid) fs.rmSync(this.pidFile, { force: true });
    try {
      this.db.exec("ROLLBACK");
    } finally {
      this.db.close();
    }
  }
}

/** The holder named in a pid file, when it is readable and that process is alive. */
function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<LockHolder>;
    if (typeof h.pid !== "number" || !Number.isSafeInteger(h.pid) || h.pid <= 0) return undefined;
    try {
      process.kill(h.pid, 0);
    } catch (err) {
      if ((err as { code?: string }).code === "ESRCH") return undefined;
    }
    return { pid: h.pid, startedMs: typeof h.startedMs === "number" ? h.startedMs : 0, command: typeof h.command === "string" ? h.command.slice(0, 200) : "" };
  } catch {
    return undefined;
  }
}
