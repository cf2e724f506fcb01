/**
 * Pricing policy versions (docs/billing.md "Policy versions"): the chain stand-in restarted with
 * another `--pricing FILE` prices new proofs with a new version and keeps the old one, so `bills
 * verify` of a bill priced before the change still holds (it recomputes with that bill's policy,
 * not today's). Real processes: nats-server, the chain stand-in (restarted on the same data dir),
 * one agent; real keys and stores on disk.
 */
import { natsBus } from "../../agent/bus/nats";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment } from "../../agent/admission/spec";
import { parsePricing, price } from "../../agent/billing/pricing";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import type { TwinBill } from "../../agent/chain/wire";
import { cryptoReady, loadKeyFile } from "../../agent/identity/keys";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { eventually } from "../utils/grid";
import { startNats, type NatsServerHandle } from "../utils/nats";

const PERIOD_MS = 3000;
const A = { cuPerHour: 100_000, suPerHour: 50_000, ipv4PerHour: 40_000, nuPerGib: 15_000 };
const B = { cuPerHour: 300_000, suPerHour: 150_000, ipv4PerHour: 120_000, nuPerGib: 45_000 };

let nats: NatsServerHandle;
let chainProc: AgentProcess | undefined;
let agent: AgentProcess | undefined;
let nc: NatsConnection | undefined;

afterAll(async () => {
  await nc?.close();
  await agent?.stop();
  await chainProc?.stop();
  await nats?.stop();
});

test("a bill priced before `chain --pricing` changed verifies with its own policy version; new bills name the new version", async () => {
  await cryptoReady();
  nats = await startNats();
  const dir = tmpDir("billing-versions-");
  const hw = JSON.parse((await cli(["hardware", "--json"])).stdout) as { disks: Array<{ name: string }> };
  const config = path.join(dir, "config.json");
  fs.writeFileSync(config, JSON.stringify({ hardware: { ipv4u: 2, diskOverrides: Object.fromEntries(hw.disks.map((d) => [d.name, "ssd"])) } }));
  const pricingA = path.join(dir, "a.json");
  const pricingB = path.join(dir, "b.json");
  fs.writeFileSync(pricingA, JSON.stringify(A));
  fs.writeFileSync(pricingB, JSON.stringify(B));
  const chainArgs = ["--nats", nats.url, "--data", path.join(dir, "chain")];
  chainProc = await startChain([...chainArgs, "--pricing", pricingA]);
  agent = await startAgent(["--nats", nats.url, "--data", path.join(dir, "node"), "--farm-id", "1", "--config", config, "--period", String(PERIOD_MS / 1000)]);
  nc = await connect({ servers: nats.url });
  const chain = new ChainClient(natsBus(nc), new Subjects());
  await eventually(async () => chain.node(1), 15_000, "node 1 registered");

  const keyFile = path.join(dir, "twin.json");
  expect((await cli(["keys", "new", "--out", keyFile])).code).toBe(0);
  const signer = await loadKeyFile(keyFile);
  const reg = await chain.registerTwin(signer);
  if (!reg.ok) throw new Error(reg.message);
  const twin = reg.id;
  expect((await cli(["chain", "fund", "--twin", String(twin), "--amount", String(10n ** 12n), "--nats", nats.url])).code).toBe(0);
  const spec = parseDeployment({ id: 7, twinId: twin, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: 1, memory: "1GiB", rootfs: "2GiB" }, { name: "pub", type: "ipv4" }] });
  if (!spec.ok) throw new Error(spec.refusal.message);
  const client = new NodeClient(natsBus(nc), new Subjects());
  await eventually(async () => ((await client.deploy(1, buildDeployRequest(spec.value, [{ twinId: twin, signer }]))).accepted ? true : null), 15_000, "the deployment");

  const billed = (pred: (b: TwinBill) => boolean, what: string): Promise<TwinBill> =>
    eventually(async () => (await chain.bills(twin))?.bills.find((b) => b.amount > 0n && pred(b)) ?? null, 10 * PERIOD_MS + 20_000, what);
  const old = await billed((b) => b.pricingVersion === 1, "a bill priced with version 1");
  expect(old.amount).toBe(price(old.amounts, parsePricing(A)));

  // the chain restarts with other prices
  await chainProc.stop();
  chainProc = await startChain([...chainArgs, "--pricing", pricingB]);
  const fresh = await billed((b) => b.pricingVersion === 2, "a bill priced with version 2");
  expect(fresh.amount).toBe(price(fresh.amounts, parsePricing(B)));
  const now = (await chain.bills(twin))!;
  expect(now.pricing).toMatchObject({ ...parsePricing(B), version: 2 });
  // the old bill under today's policy would not hold: verify must use its own version
  expect(price(old.amounts, parsePricing(B))).not.toBe(old.amount);
  const list = JSON.parse((await cli(["bills", "list", "--twin", String(twin), "--nats", nats.url, "--json"])).stdout) as Array<{ sequence: number; pricingVersion?: number }>;
  expect(list.find((r) => r.sequence === old.sequence)?.pricingVersion).toBe(1);
  expect(list.find((r) => r.sequence === fresh.sequence)?.pricingVersion).toBe(2);
  for (const b of [old, fresh]) {
    const v = await cli(["bills", "verify", "--twin", String(twin), "--node", "1", "--sequence", String(b.sequence), "--nats", nats.url, "--json"]);
    expect({ sequence: b.sequence, code: v.code, out: JSON.parse(v.stdout) as unknown }).toEqual({ sequence: b.sequence, code: 0, out: expect.objectContaining({ holds: true, amount: b.amount.toString(), recomputed: b.amount.toString() }) });
  }
  // restarting with the old prices again makes a new version (versions are never rewritten)
  await chainProc.stop();
  chainProc = await startChain([...chainArgs, "--pricing", pricingA]);
  const third = await billed((b) => b.pricingVersion === 3, "a bill priced with version 3");
  expect(third.amount).toBe(price(third.amounts, parsePricing(A)));
}, 150_000);
