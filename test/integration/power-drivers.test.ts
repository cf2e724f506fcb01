/** Power drivers with real sockets and processes: Wake-on-LAN to a UDP listener on loopback, the command driver. */
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommandDriver, magicPacket, ZosDriver } from "../../agent/power/drivers";

describe("wake-on-lan", () => {
  let sock: Socket;
  let port = 0;
  const got: Array<{ at: number; bytes: Buffer }> = [];
  beforeAll(async () => {
    sock = createSocket("udp4");
    sock.on("message", (bytes) => got.push({ at: Date.now(), bytes }));
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    port = sock.address().port;
  });
  afterAll(() => sock.close());

  test("10 magic packets, 500 ms apart, to the MAC of the announcement", async () => {
    const mac = "0a:1b:2c:3d:4e:5f";
    await new ZosDriver({ address: "127.0.0.1", port }).wake({ nodeId: 7, mac });
    const deadline = Date.now() + 2000;
    while (got.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(10);
    for (const g of got) {
      expect(g.bytes.length).toBe(102);
      expect(g.bytes.subarray(0, 6).equals(Buffer.alloc(6, 0xff))).toBe(true);
      for (let i = 0; i < 16; i++) expect(g.bytes.subarray(6 + i * 6, 12 + i * 6).toString("hex")).toBe("0a1b2c3d4e5f");
    }
    for (let i = 1; i < got.length; i++) {
      const gap = got[i]!.at - got[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(450);
      expect(gap).toBeLessThan(1500);
    }
  }, 20_000);

  test("no MAC: a clear error, nothing sent", async () => {
    await expect(new ZosDriver({ address: "127.0.0.1", port }).wake({ nodeId: 7, mac: "" })).rejects.toMatchObject({ code: "no_mac" });
    expect(() => magicPacket("0a:1b:2c:3d:4e")).toThrow(expect.objectContaining({ code: "no_mac" }));
  });
});

describe("command driver", () => {
  test("runs the configured commands with NODE_ID and NODE_MAC; a failing command is driver_failed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "power-cmd-"));
    const f = join(dir, "out");
    const d = new CommandDriver({ standby: `echo standby >> ${f}`, wake: `echo wake $NODE_ID $NODE_MAC >> ${f}` });
    await d.standby();
    await d.wake({ nodeId: 4, mac: "aa:bb:cc:dd:ee:ff" });
    expect(readFileSync(f, "utf8")).toBe("standby\nwake 4 aa:bb:cc:dd:ee:ff\n");
    await expect(new CommandDriver({ standby: "exit 3", wake: "" }).standby()).rejects.toMatchObject({ code: "driver_failed" });
  });
});
