import { Writable } from "node:stream";
import { natsAuth } from "../../agent/bus/nats";
import { createLogger } from "../../agent/log/logger";
import { redact, redactValue, secretsOf } from "../../agent/log/redact";

describe("redact", () => {
  test.each([
    ["nats://user:secretpass@127.0.0.1:4222", "nats://user:***@127.0.0.1:4222"],
    ["nats://s3cr3ttoken@10.0.0.1:4222", "nats://***@10.0.0.1:4222"],
    ["tls://a:b%40c@host:4222,nats://x:yy@h2:1", "tls://a:***@host:4222,nats://x:***@h2:1"],
    ["ws://host:80/path?token=abcdef&x=1", "ws://host:80/path?token=***&x=1"],
    ["cannot connect to NATS at nats://u:pw12@127.0.0.1:1: CONNECTION_REFUSED", "cannot connect to NATS at nats://u:***@127.0.0.1:1: CONNECTION_REFUSED"],
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
    ["mail me at a@b.c, see http://host/x@y", "mail me at a@b.c, see http://host/x@y"],
    ["password=hunter22 and pass=xyz", "password=*** and pass=***"],
  ])("%s", (input, want) => {
    expect(redact(input)).toBe(want);
  });

  test("configured secrets are hidden wherever they appear, raw and percent-decoded", () => {
    const secrets = secretsOf(["nats://user:p%40ssw0rd@127.0.0.1:4222", "nats://tok3nvalue@h:1", "nats://h:2?token=qtoken9"]);
    expect(secrets).toEqual(expect.arrayContaining(["p%40ssw0rd", "p@ssw0rd", "tok3nvalue", "qtoken9"]));
    expect(redact("Authorization failed for p@ssw0rd / tok3nvalue / qtoken9", secrets)).toBe("Authorization failed for *** / *** / ***");
    expect(secretsOf(["nats://127.0.0.1:4222"])).toEqual([]);
  });

  test("log objects: nested strings, arrays and errors", () => {
    const err = new Error("connect nats://u:topsecret@h:1 failed") as Error & { code?: string };
    err.code = "ECONNREFUSED";
    const out = redactValue({ a: ["nats://u:topsecret@h:1"], b: { c: "topsecret" }, n: 3, err }, ["topsecret"]);
    expect(JSON.stringify(out)).not.toContain("topsecret");
    expect(out).toMatchObject({ a: ["nats://u:***@h:1"], b: { c: "***" }, n: 3, err: { type: "Error", message: "connect nats://u:***@h:1 failed", code: "ECONNREFUSED" } });
  });

  test("the logger redacts every line it writes", () => {
    let text = "";
    const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => ((text += chunk.toString()), cb()) });
    const log = createLogger({ level: "info", pretty: false }, sink, ["hunter2secret"]).child({ module: "bus" });
    log.warn({ event: "nats_disconnected", server: "nats://me:hunter2secret@127.0.0.1:4222", err: new Error("bad hunter2secret") }, "NATS connection lost");
    expect(text).toContain("127.0.0.1:4222");
    expect(text).toContain("nats_disconnected");
    expect(text).not.toContain("hunter2secret");
  });
});

describe("natsAuth: URL credentials become connect options (nats.js ignores URL userinfo)", () => {
  test.each([
    [["nats://127.0.0.1:4222"], {}],
    [["nats://agent:p%40ss@127.0.0.1:4222"], { user: "agent", pass: "p@ss" }],
    [["nats://tok123@127.0.0.1:4222"], { token: "tok123" }],
    [["nats://127.0.0.1:4222?token=qtok"], { token: "qtok" }],
    [["nats://a:4222", "nats://u:p@b:4222"], { user: "u", pass: "p" }],
    [["127.0.0.1:4222"], {}],
  ])("%j", (servers, want) => {
    expect(natsAuth(servers)).toEqual(want);
  });
});
