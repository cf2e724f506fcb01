import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { credentialsFromFlags, loadCredentials, mergeCredentials, parseCredentials } from "../../agent/bus/auth";
import { permissionsOf, serverConfig } from "../../agent/bus/permissions";
import { loadConfig } from "../../agent/config/options";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bus-auth-unit-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode: 0o600 });
  return f;
}

const SEED = "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4";

describe("credentials: one method at a time, every field checked, errors name the field", () => {
  test.each([
    [{ user: "a" }, /nats\.password: the user needs a password/],
    [{ password: "x" }, /nats\.user: a password needs a user name/],
    [{ user: "a", password: "x", token: "t" }, /nats: give one way to authenticate, not user and token/],
    [{ nkeySeedFile: "a.nk", credsFile: "b.creds" }, /not nkey and creds/],
    [{ token: "t", tokenFile: "f" }, /nats\.token: give the token or a tokenFile, not both/],
    [{ tls: { certFile: "c.pem" } }, /nats\.tls: a client certificate \(certFile, --nats-cert\) and its key \(keyFile, --nats-key\)/],
    [{ tls: { ca: "x" } }, /nats\.tls\.ca: unknown field/],
    [{ inboxPrefix: "alice" }, /nats\.inboxPrefix: expected _INBOX/],
    [{ nkeySeedFile: 3 }, /nats\.nkeySeedFile: expected a non-empty string/],
  ])("%j is refused", (raw, err) => {
    expect(() => parseCredentials(raw as Record<string, unknown>, "nats", dir)).toThrow(err);
  });

  test("file paths are resolved against the config file's directory", () => {
    expect(parseCredentials({ nkeySeedFile: "n.nk", tls: { caFile: "ca.pem" }, inboxPrefix: "_INBOX.node-1" }, "nats", "/etc/ca")).toEqual({ nkeySeedFile: "/etc/ca/n.nk", tls: { caFile: "/etc/ca/ca.pem" }, inboxPrefix: "_INBOX.node-1" });
  });

  test("a later source naming a method replaces the method below; TLS files merge one by one", () => {
    const m = mergeCredentials({ user: "a", password: "p", tls: { caFile: "/ca" } }, { nkeySeedFile: "/n", tls: { certFile: "/c", keyFile: "/k" } });
    expect(m).toEqual({ nkeySeedFile: "/n", tls: { caFile: "/ca", certFile: "/c", keyFile: "/k" } });
    expect(mergeCredentials({ nkeySeedFile: "/n" }, { tls: { caFile: "/ca" } })).toEqual({ nkeySeedFile: "/n", tls: { caFile: "/ca" } });
    // the same method merges: a user from a flag, the password from below; a password file replaces a password
    expect(mergeCredentials({ user: "a", password: "p" }, { user: "b" })).toEqual({ user: "b", password: "p" });
    expect(mergeCredentials({ user: "a", password: "p" }, { passwordFile: "/pw" })).toEqual({ user: "a", passwordFile: "/pw" });
  });

  test("flags win over the environment, and errors name the flag or the variable", () => {
    const c = credentialsFromFlags({ "nats-nkey": "/flag.nk" }, { CAPACITY_AGENT_NATS_NKEY: "/env.nk", CAPACITY_AGENT_NATS_CA: "/ca.pem" });
    expect(c).toMatchObject({ nkeySeedFile: "/flag.nk", tls: { caFile: "/ca.pem" } });
    expect(() => credentialsFromFlags({ "nats-cert": "/c.pem" }, {})).toThrow(/nats\.tls: a client certificate/);
    expect(() => credentialsFromFlags({ "nats-inbox-prefix": "x" }, {})).toThrow(/--nats-inbox-prefix: expected _INBOX/);
    expect(() => credentialsFromFlags({}, { CAPACITY_AGENT_NATS_INBOX_PREFIX: "x" })).toThrow(/CAPACITY_AGENT_NATS_INBOX_PREFIX: expected _INBOX/);
    expect(() => loadCredentials(credentialsFromFlags({ "nats-nkey": path.join(dir, "none.nk") }, {}))).toThrow(/--nats-nkey: cannot read .*none\.nk: ENOENT/);
    expect(() => loadCredentials(credentialsFromFlags({}, { CAPACITY_AGENT_NATS_NKEY: path.join(dir, "none.nk") }))).toThrow(/CAPACITY_AGENT_NATS_NKEY: cannot read/);
  });

  test("the password and token come from the environment, not from flags", () => {
    expect(credentialsFromFlags({ "nats-user": "bob" }, { CAPACITY_AGENT_NATS_PASSWORD: "s3cret-pw" })).toMatchObject({ user: "bob", password: "s3cret-pw" });
    expect(loadCredentials(credentialsFromFlags({}, { CAPACITY_AGENT_NATS_TOKEN: "tok-123" }))).toMatchObject({ method: "token", options: { token: "tok-123" }, secrets: ["tok-123"] });
  });
});

describe("loading credential files", () => {
  test("an nkey seed file: the seed is a secret, its public key is known, no file content in errors", () => {
    const f = write("u.nk", `# a comment\n${SEED}\n`);
    const l = loadCredentials({ nkeySeedFile: f });
    expect(l.method).toBe("nkey");
    expect(l.secrets).toEqual([SEED]);
    expect(l.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
    const bad = write("bad.nk", "not a seed at all\n");
    expect(() => loadCredentials({ nkeySeedFile: bad })).toThrow(/nats\.nkeySeedFile: .*bad\.nk holds no user nkey seed/);
  });

  test("a password file is trimmed; an empty one is refused", () => {
    expect(loadCredentials({ user: "u", passwordFile: write("pw", "hunter22\n") })).toMatchObject({ method: "user", options: { user: "u", pass: "hunter22" }, secrets: ["hunter22"] });
    expect(() => loadCredentials({ user: "u", passwordFile: write("empty", "\n") })).toThrow(/nats\.passwordFile: .* is empty/);
  });

  test("a creds file needs its JWT and seed blocks; both are secrets", () => {
    const jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJ4In0.c2ln";
    const f = write("u.creds", `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${SEED}\n------END USER NKEY SEED------\n`);
    expect(loadCredentials({ credsFile: f })).toMatchObject({ method: "creds", secrets: [SEED, jwt] });
    expect(() => loadCredentials({ credsFile: write("x.creds", `${SEED}\n`) })).toThrow(/not a NATS creds file/);
  });

  test("an unreadable TLS file is named", () => {
    expect(() => loadCredentials({ tls: { caFile: path.join(dir, "no-ca.pem") } })).toThrow(/nats\.tls\.caFile: cannot read .*no-ca\.pem: ENOENT/);
  });
});

describe("config: nats credentials in the file, the environment and flags", () => {
  test("file fields, relative to the file; credentials turn the embedded server off", () => {
    const f = write("c.json", JSON.stringify({ nats: { servers: ["nats://10.0.0.1:4222"], embedded: true, nkeySeedFile: "n.nk", tls: { caFile: "ca.pem" } } }));
    const c = loadConfig({ config: f }, {});
    expect(c.nats.credentials).toEqual({ nkeySeedFile: path.join(dir, "n.nk"), tls: { caFile: path.join(dir, "ca.pem") } });
    expect(c.nats.embedded).toBe(false);
    expect(loadConfig({}, {}).nats).toMatchObject({ embedded: true, credentials: {} });
  });

  test("a flag naming another method replaces the file's; conflicts are refused with the field", () => {
    const f = write("c2.json", JSON.stringify({ nats: { user: "u", password: "pw-in-file" } }));
    expect(loadConfig({ config: f, natsAuth: { "nats-nkey": "/x.nk" } }, {}).nats.credentials).toEqual({ nkeySeedFile: "/x.nk", origins: { nkeySeedFile: "--nats-nkey" } });
    expect(() => loadConfig({ config: write("c3.json", JSON.stringify({ nats: { token: "t", nkeySeedFile: "n" } })) }, {})).toThrow(/^nats: give one way to authenticate/);
    // the user in the file, its password from the environment
    expect(loadConfig({ config: write("c5.json", JSON.stringify({ nats: { user: "farmer" } })) }, { CAPACITY_AGENT_NATS_PASSWORD: "pw-env" }).nats.credentials).toMatchObject({ user: "farmer", password: "pw-env" });
    expect(() => loadConfig({ config: write("c6.json", JSON.stringify({ nats: { user: "farmer" } })) }, {})).toThrow(/nats\.password: the user needs a password/);
    expect(() => loadConfig({ config: write("c4.json", JSON.stringify({ nats: { tls: { verify: true } } })) }, {})).toThrow(/nats\.tls\.verify: unknown field/);
  });
});

describe("permission layout", () => {
  test("a node publishes only its own announcements and hears only its own node subjects", () => {
    const p = permissionsOf({ kind: "node", name: "node-12", publicKey: "U", nodeId: 12, farmId: 3 });
    expect(p.publish.filter((s) => s.includes(".capacity."))).toEqual(["tfgrid.v1.capacity.3.12", "tfgrid.v1.capacity.sync.3"]);
    // the one wildcard: power requests to a peer (waking it, docs/power.md); no other node subject
    expect(p.publish.filter((s) => s.startsWith("tfgrid.v1.node.") || s.includes("*") || s.includes(">"))).toEqual(["tfgrid.v1.node.*.power"]);
    expect(p.publish).toContain("tfgrid.v1.power.3");
    expect(p.subscribe).toEqual(["tfgrid.v1.capacity.>", "tfgrid.v1.node.12.>", "tfgrid.v1.power.3", "_INBOX.node-12.>"]);
    expect(p.allowResponses).toBe(true);
  });

  test("a deployer answers nothing and never serves the chain; the chain alone hears chain calls", () => {
    const d = permissionsOf({ kind: "deployer", name: "alice", publicKey: "U" }, "x.v2");
    expect(d.allowResponses).toBe(false);
    expect(d.publish).toContain("x.v2.node.*.>");
    expect(d.publish.some((s) => s.startsWith("x.v2.capacity.") && s !== "x.v2.capacity.find" && s !== "x.v2.capacity.sync.*")).toBe(false);
    expect(d.subscribe.some((s) => /chain\.(twin|node|farm|proof|query)/.test(s))).toBe(false);
    const c = permissionsOf({ kind: "chain", name: "chain", publicKey: "U" }, "x.v2");
    expect(c.subscribe).toEqual(["x.v2.chain.>", "_INBOX.chain.>"]);
    expect(c.publish).toEqual(["x.v2.chain.events.>"]);
  });

  test("the server config has one nkey user per principal and TLS when asked", () => {
    const text = serverConfig({ host: "127.0.0.1", port: 4222, principals: [{ kind: "chain", name: "chain", publicKey: "UABC" }], tls: { certFile: "/s.pem", keyFile: "/s.key", caFile: "/ca.pem", verify: true } });
    expect(text).toContain('{ nkey: "UABC", permissions: {');
    expect(text).toMatch(/tls \{\n  cert_file: "\/s\.pem"\n  key_file: "\/s\.key"\n  ca_file: "\/ca\.pem"\n  verify: true/);
    expect(() => permissionsOf({ kind: "deployer", name: "a.b", publicKey: "U" })).toThrow(/user name/);
  });
});
