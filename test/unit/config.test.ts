import * as fs from "node:fs";
import * as path from "node:path";
import { loadConfig } from "../../agent/config/options";
import { parseRegistry } from "../../agent/registry/file";
import { tmpDir } from "../utils/agent";

function withFile(obj: unknown): string {
  const f = path.join(tmpDir(), "c.json");
  fs.writeFileSync(f, JSON.stringify(obj));
  return f;
}

describe("config", () => {
  test("defaults: dev identity, node 1, farm 1, local NATS with an embedded fallback", () => {
    const c = loadConfig({}, {});
    expect(c).toMatchObject({ nodeId: 1, farmId: 1, twinId: 1, devIdentity: true, nats: { servers: ["nats://127.0.0.1:4222"], embedded: true } });
    expect(c.capacity.overprovision.cru).toBe(2);
  });

  test("flags win over the environment, the environment over the file", () => {
    const file = withFile({ nodeId: 3, farmId: 4, nats: { servers: ["nats://10.0.0.1:4222"] } });
    const c = loadConfig({ config: file, nodeId: "5" }, { CAPACITY_AGENT_NODE_ID: "6", CAPACITY_AGENT_FARM_ID: "9" });
    expect(c.nodeId).toBe(5);
    expect(c.farmId).toBe(9);
    expect(c.twinId).toBe(5);
    expect(c.nats).toEqual({ servers: ["nats://10.0.0.1:4222"], embedded: false, credentials: {} });
    expect(loadConfig({ nats: "nats://a:1,nats://b:2" }, {}).nats.servers).toEqual(["nats://a:1", "nats://b:2"]);
  });

  test("CAPACITY_AGENT_SUBJECT_PREFIX sets the subject prefix of run, over the file, as it does for the clients", () => {
    expect(loadConfig({}, {}).subjectPrefix).toBe("tfgrid.v1");
    const file = withFile({ subjectPrefix: "grid.a" });
    expect(loadConfig({ config: file }, {}).subjectPrefix).toBe("grid.a");
    expect(loadConfig({ config: file }, { CAPACITY_AGENT_SUBJECT_PREFIX: "grid.b" }).subjectPrefix).toBe("grid.b");
    expect(() => loadConfig({}, { CAPACITY_AGENT_SUBJECT_PREFIX: "grid.>" })).toThrow(/CAPACITY_AGENT_SUBJECT_PREFIX: expected dot-separated tokens/);
  });

  test("--data moves the dev key and registry with it", () => {
    const c = loadConfig({ data: "/tmp/x1" }, {});
    expect(c.keyFile).toBe("/tmp/x1/node-key.json");
    expect(c.registryFile).toBe("/tmp/x1/registry.json");
    expect(loadConfig({ key: "/k.json" }, {}).devIdentity).toBe(false);
  });

  test.each([
    [{ nodeId: 0 }, "nodeId"],
    [{ capacity: { overprovision: { cru: 5 } } }, "capacity.overprovision.cru"],
    [{ capacity: { overprovision: { mru: 2 } } }, "capacity.overprovision.mru"],
    [{ capacity: { reservedSsd: "lots" } }, "capacity.reservedSsd"],
    [{ power: { state: "sleepy" } }, "power.state"],
    [{ nats: { servers: ["http://x"] } }, "nats.servers[0]"],
    [{ log: { level: "loud" } }, "log.level"],
    [{ bogus: 1 }, "bogus"],
    [{ gossip: { scope: "world" } }, "gossip.scope"],
    [{ usage: { periodSeconds: 86400 } }, "usage.periodSeconds"],
    [{ chain: { enabled: "yes" } }, "chain.enabled"],
    [{ chain: { publicKey: "0x12" } }, "chain.publicKey"],
    [{ chain: { pin: true } }, "chain.pin"],
    [{ chain: { lookupsPerSecond: 0 } }, "chain.lookupsPerSecond"],
    [{ gossip: { maxPeersPerFarm: 0 } }, "gossip.maxPeersPerFarm"],
    [{ api: { limits: { readRate: -1 } } }, "api.limits.readRate"],
    [{ api: { limits: { writeQueue: 1.5 } } }, "api.limits.writeQueue"],
  ])("file %o is refused naming %s", (obj, field) => {
    expect(() => loadConfig({ config: withFile(obj) }, {})).toThrow(expect.objectContaining({ code: "invalid_config", field }));
  });

  test.each([
    [{ nodeId: "x" }, "--node-id"],
    [{ nats: "not a url" }, "--nats[0]"],
    [{ heartbeat: "0" }, "--heartbeat"],
    [{ period: "0" }, "--period"],
    [{ period: "14401" }, "--period"],
  ])("flags %o are refused naming %s", (flags, field) => {
    expect(() => loadConfig(flags, {})).toThrow(expect.objectContaining({ field }));
  });

  test("chain and usage: on by default, a pinned key and a period from the file", () => {
    expect(loadConfig({}, {}).chain).toEqual({ enabled: true, publicKey: null, registerWaitMs: 10_000, lookupsPerSecond: 50, url: null, connectTimeoutMs: 15_000, verifierKey: null });
    const key = "0x" + "ab".repeat(32);
    const c = loadConfig({ config: withFile({ chain: { enabled: false, publicKey: key }, usage: { periodSeconds: 14400 } }) }, {});
    expect(c.chain).toEqual({ enabled: false, publicKey: key, registerWaitMs: 10_000, lookupsPerSecond: 50, url: null, connectTimeoutMs: 15_000, verifierKey: null });
    expect(c.usage.periodSeconds).toBe(14400);
    expect(loadConfig({ period: "5" }, {}).usage.periodSeconds).toBe(5);
    expect(loadConfig({ noChain: true }, {}).chain.enabled).toBe(false);
    expect(loadConfig({}, { CAPACITY_AGENT_NO_CHAIN: "1" }).chain.enabled).toBe(false);
  });

  test("chain.url (file, CAPACITY_AGENT_CHAIN_URL, --chain-url): ws:// or wss:// only, not with the chain off", () => {
    expect(loadConfig({ config: withFile({ chain: { url: "wss://tfchain.grid.tf" } }) }, {}).chain.url).toBe("wss://tfchain.grid.tf");
    expect(loadConfig({}, { CAPACITY_AGENT_CHAIN_URL: "ws://127.0.0.1:9944" }).chain.url).toBe("ws://127.0.0.1:9944");
    // the flag wins over the environment
    expect(loadConfig({ chainUrl: "ws://127.0.0.1:1" }, { CAPACITY_AGENT_CHAIN_URL: "ws://127.0.0.1:9944" }).chain.url).toBe("ws://127.0.0.1:1");
    expect(loadConfig({ config: withFile({ chain: { url: null } }) }, {}).chain.url).toBeNull();
    expect(() => loadConfig({ chainUrl: "http://127.0.0.1:9944" }, {})).toThrow(expect.objectContaining({ field: "--chain-url" }));
    expect(() => loadConfig({}, { CAPACITY_AGENT_CHAIN_URL: "127.0.0.1:9944" })).toThrow(expect.objectContaining({ field: "CAPACITY_AGENT_CHAIN_URL" }));
    expect(() => loadConfig({ config: withFile({ chain: { url: 9944 } }) }, {})).toThrow(expect.objectContaining({ field: "chain.url" }));
    expect(() => loadConfig({ chainUrl: "ws://127.0.0.1:9944", noChain: true }, {})).toThrow(expect.objectContaining({ field: "chain.url" }));
  });

  test("an unreadable config file is named", () => {
    expect(() => loadConfig({ config: "/nonexistent/c.json" }, {})).toThrow(expect.objectContaining({ field: "--config" }));
  });
});

describe("registry file format", () => {
  const key = "0x" + "11".repeat(32);
  test("valid registry", () => {
    const r = parseRegistry({ twins: [{ id: 7, publicKey: key, scheme: "sr25519" }], nodes: [{ id: 1, farmId: 1, publicKey: key }] });
    expect(r.twins.get(7)?.scheme).toBe("sr25519");
    expect(r.nodes.get(1)?.scheme).toBe("ed25519");
  });
  test.each([
    [{ twins: {} }, "registry.twins"],
    [{ twins: [{ id: 0, publicKey: key }] }, "registry.twins[0].id"],
    [{ twins: [{ id: 1, publicKey: "0x12" }] }, "registry.twins[0].publicKey"],
    [{ twins: [{ id: 1, publicKey: key, scheme: "rsa" }] }, "registry.twins[0].scheme"],
    [{ twins: [{ id: 1, publicKey: key }, { id: 1, publicKey: key }] }, "registry.twins[1].id"],
    [{ nodes: [{ id: 1, publicKey: key }] }, "registry.nodes[0].farmId"],
  ])("%o is refused naming %s", (raw, field) => {
    expect(() => parseRegistry(raw)).toThrow(expect.objectContaining({ field }));
  });
});
