/** Power on the wire and in config: announcement fields, PowerMessage envelopes, the power.* config section. */
import { defaultConfig, applyFile } from "../../agent/config/options";
import { GiB, zeroUnits } from "../../agent/capacity/units";
import { decodeAnnouncementPayload, decodeFindRequest, encodeAnnouncement, encodeFindRequest, type Announcement } from "../../agent/gossip/wire";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { openPowerMessage, sealPowerMessage } from "../../agent/power/wire";

beforeAll(async () => {
  await cryptoReady();
});

const base: Announcement = {
  nodeId: 3, farmId: 1, twinId: 3, sequence: 5, timestampMs: 1_700_000_000_000, total: { ...zeroUnits(), cru: 8, mru: 16 * GiB }, reserved: zeroUnits(), reservable: zeroUnits(), used: zeroUnits(), free: zeroUnits(),
  deployments: 0, power: "standby", heartbeatMs: 30_000, agentVersion: "t",
};

describe("announcement power fields", () => {
  test("round trip: since, last claim, MAC, public config, reason", () => {
    const a = { ...base, powerSinceMs: 1_700_000_000_001, lastClaimMs: 1_699_999_000_000, mac: "0a:1b:2c:3d:4e:5f", publicConfig: true, powerReason: "idle" };
    expect(decodeAnnouncementPayload(encodeAnnouncement(a), 4096)).toEqual(a);
  });
  test("absent from an older node: fields stay absent", () => {
    const d = decodeAnnouncementPayload(encodeAnnouncement(base), 4096);
    expect(d.powerSinceMs).toBeUndefined();
    expect(d.mac).toBeUndefined();
  });
  test.each([
    ["a bad MAC", { mac: "nope" }, "mac"],
    ["a reason with odd characters", { powerReason: "Idle!" }, "powerReason"],
  ])("%s is malformed", (_n, over, field) => {
    expect(() => decodeAnnouncementPayload(encodeAnnouncement({ ...base, ...over }), 4096)).toThrow(new RegExp(field));
  });
  test("find requests carry wakeable", () => {
    expect(decodeFindRequest(encodeFindRequest({ want: zeroUnits(), farmId: 1, limit: 0, wakeable: true }))).toMatchObject({ wakeable: true });
    expect(decodeFindRequest(encodeFindRequest({ want: zeroUnits(), farmId: 1, limit: 0 })).wakeable).toBeUndefined();
  });
});

describe("PowerMessage envelopes", () => {
  const signer = signerFromSeed("ed25519", new Uint8Array(32).fill(7));
  const m = { farmId: 1, fromNodeId: 2, fromTwinId: 0, kind: "intent" as const, targetNodeId: 2, timestampMs: 123 };
  test("sealed and opened with the signer's key", () => {
    const o = openPowerMessage(sealPowerMessage(signer, m));
    expect(o.ok && o.message).toEqual(m);
    expect(o.ok && Buffer.from(o.envelope.signer).equals(Buffer.from(signer.publicKey))).toBe(true);
  });
  test("a flipped byte is bad_signature; both or neither sender is malformed", () => {
    const bytes = sealPowerMessage(signer, m);
    bytes[bytes.length - 1] ^= 1;
    expect(openPowerMessage(bytes)).toMatchObject({ ok: false, code: "bad_signature" });
    expect(openPowerMessage(sealPowerMessage(signer, { ...m, fromTwinId: 4 }))).toMatchObject({ ok: false, code: "malformed" });
    expect(openPowerMessage(sealPowerMessage(signer, { ...m, fromNodeId: 0 }))).toMatchObject({ ok: false, code: "malformed" });
  });
});

describe("power.* config", () => {
  const load = (power: Record<string, unknown>) => {
    const c = defaultConfig();
    applyFile(c, { power }, "/tmp/c.json");
    return c.power;
  };
  test("seconds become the policy's ms; off by default", () => {
    expect(defaultConfig().power.manage).toBe(false);
    expect(load({ manage: true, driver: "zos", mac: "0A:1B:2C:3D:4E:5F", minStateSeconds: 10, claimQuietSeconds: 10, checkSeconds: 2, windowSeconds: 1, wakeThreshold: 0.9 })).toMatchObject({
      manage: true, driver: "zos", mac: "0a:1b:2c:3d:4e:5f", policy: { minStateMs: 10_000, claimQuietMs: 10_000, checkMs: 2000, windowMs: 1000, wakeThreshold: 0.9 },
    });
  });
  test.each([
    [{ driver: "ipmi" }, "power.driver"],
    [{ mac: "zz" }, "power.mac"],
    [{ wakeThreshold: 2 }, "power.wakeThreshold"],
    [{ windowSeconds: 400 }, "power.windowSeconds"],
    [{ minStateSeconds: 60 }, "power.minStateSeconds"],
    [{ checkSeconds: -1 }, "power.checkSeconds"],
    [{ farmerKey: "0x12" }, "power.farmerKey"],
    [{ sleep: true }, "power.sleep"],
  ])("%j names %s", (power, field) => {
    expect(() => load(power)).toThrow(expect.objectContaining({ field }));
  });
});
