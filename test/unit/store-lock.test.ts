import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirLock } from "../../agent/store/lock";
import { StoreError } from "../../agent/store/errors";

const dir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "dirlock-"));

describe("DirLock", () => {
  test("a second holder of one directory is refused with data_dir_locked naming the pid and the dir; release lets the next in", () => {
    const d = dir();
    const a = DirLock.acquire(d, "agent", "test a", () => 1_700_000_000_000);
    let err: unknown;
    try {
      DirLock.acquire(d, "agent", "test b");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: "data_dir_locked" });
    expect((err as Error).message).toContain(`pid ${process.pid}, test a, started 2023-11-14T22:13:20.000Z`);
    expect((err as Error).message).toContain(path.resolve(d));
    a.release();
    expect(fs.existsSync(path.join(d, "agent.pid"))).toBe(false);
    const b = DirLock.acquire(d, "agent", "test b");
    expect(JSON.parse(fs.readFileSync(path.join(d, "agent.pid"), "utf8"))).toMatchObject({ pid: process.pid, command: "test b" });
    b.release();
    b.release(); // twice is harmless
  });

  test("locks of different names in one directory are independent (an agent and a chain)", () => {
    const d = dir();
    const a = DirLock.acquire(d, "agent", "agent");
    const c = DirLock.acquire(d, "chain", "chain");
    a.release();
    c.release();
  });

  test("a pid file left by a dead process does not block, and is not named", () => {
    const d = dir();
    fs.writeFileSync(path.join(d, "agent.pid"), JSON.stringify({ pid: 2 ** 22 + 7, startedMs: 0, command: "gone" }));
    const a = DirLock.acquire(d, "agent", "fresh");
    expect(JSON.parse(fs.readFileSync(path.join(d, "agent.pid"), "utf8")).command).toBe("fresh");
    a.release();
  });
});
