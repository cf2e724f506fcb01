/**
 * Power management on the real tfchain runtime (spec 49 under chopsticks, scripts/tfchain-dev):
 * `run --chain-url` with power.manage wires the power service to TfchainBackend.reportPower. The
 * farm's owner on tfchain is the farmer the node obeys (STANDBY); a power change is reported with
 * `tfgridModule.changePowerState` where the runtime has it. Spec 49 has no power call at all (no
 * changePowerState / changePowerTarget in its metadata): the agent says so once
 * (power_report_unsupported, code unsupported_runtime), keeps the change local (announced over
 * gossip) and does not try again. Skipped with a message when the chain spec is absent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cryptoReady } from "../../agent/identity/keys";
import { cli, startDaemon, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, waitFor, type NatsServerHandle } from "../utils/nats";
import { keyFiles } from "../utils/setup";
import { createFarm, describeWith, fundedKeyFiles, registerTwin, startTfchain, tfchainSpec, type TfchainHandle } from "../utils/tfchain";

jest.setTimeout(300_000);

describeWith(tfchainSpec(), "the tfchain power integration test")("power management on the real tfchain runtime (run --chain-url)", () => {
  let chain: TfchainHandle;
  let nats: NatsServerHandle;
  let agent: AgentProcess | undefined;
  const dir = tmpDir("tfchain-power-");
  const keys = keyFiles(dir, ["farmer", "node", "other"]);
  const config = path.join(dir, "config.json");
  let farmId = 0;
  let farmerTwin = 0;
  let otherTwin = 0;
  let nodeId = 0;

  beforeAll(async () => {
    await cryptoReady();
    chain = await startTfchain();
    nats = await startNats();
    await fundedKeyFiles(chain.url, Object.values(keys).map((file) => [file, "sr25519"]));
    farmerTwin = await registerTwin(chain.url, keys.farmer);
    otherTwin = await registerTwin(chain.url, keys.other);
    farmId = await createFarm(chain.url, keys.farmer, "power");
    // the node starts in standby (a node that was put to sleep); the policy checks once an hour, so
    // only the requests below change its state. No farmer in the config: the farm's owner on tfchain is it.
    fs.writeFileSync(config, JSON.stringify({ power: { state: "standby", manage: true, driver: "dev", checkSeconds: 3600, windowSeconds: 60, minStateSeconds: 1800 } }));
  }, 900_000); // the runtime and four extrinsics: minutes on a busy machine

  afterAll(async () => {
    await agent?.stop();
    await nats?.stop();
    await chain?.stop();
  });

  it("a wake by a tfchain twin brings the node up; the change goes to the chain, which (spec 49) keeps no power state: said once, then local only", async () => {
    agent = await startDaemon(["run", "--chain-url", chain.url, "--nats", nats.url, "--data", path.join(dir, "data"), "--farm-id", String(farmId), "--key", keys.node, "--config", config], "tfchain_connected");
    const started = await agent.waitForEvent("agent_started", 180_000);
    nodeId = started.nodeId as number;
    expect(agent.logs.find((l) => l.event === "power_started")).toBeTruthy();
    const st = JSON.parse((await cli(["status", "--node", String(nodeId), "--nats", nats.url, "--json"])).stdout) as { power: string; farmId: number };
    expect(st).toMatchObject({ power: "standby", farmId });

    // STANDBY is the farmer's: another tfchain twin is refused (the farm's owner is read from tfchain)
    const wakeArgs = (key: string, twin: number): string[] => ["--node", String(nodeId), "--farm", String(farmId), "--key", key, "--twin", String(twin), "--nats", nats.url, "--json"];
    const woke = await cli(["power", "wake", ...wakeArgs(keys.other, otherTwin)]);
    expect(JSON.parse(woke.stdout)).toMatchObject({ ok: true, code: "woken", power: "up" });
    const unsupported = await agent.waitForEvent("power_report_unsupported", 120_000);
    expect(unsupported).toMatchObject({ state: "up" });
    expect(String(unsupported.err)).toContain("unsupported_runtime");

    const refused = await cli(["power", "standby", ...wakeArgs(keys.other, otherTwin)]);
    expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, code: "unauthorized" });
    // the farm's owner may, but not for the farm's last up node
    const last = await cli(["power", "standby", ...wakeArgs(keys.farmer, farmerTwin)]);
    expect(JSON.parse(last.stdout)).toMatchObject({ ok: false, code: "last_node", power: "up" });

    // one warning, no retries, no other report failure
    await waitFor(async () => true, 500, "settle");
    expect(agent.logs.filter((l) => l.event === "power_report_unsupported")).toHaveLength(1);
    expect(agent.logs.filter((l) => l.event === "power_report_failed")).toHaveLength(0);
    const power = await cli(["power", "status", "--farm", String(farmId), "--nats", nats.url, "--json"]);
    expect(JSON.parse(power.stdout)).toEqual([{ nodeId, state: "up", since: expect.any(String), reason: "requested" }]);
  });
});
