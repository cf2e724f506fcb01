/**
 * One node for the fault scenarios: a real nats-server, the chain stand-in and an agent as real
 * processes, real keys (node 1, farm 1, twin 7), a short usage period, write limits raised so the
 * load is decided rather than rate limited. The agent can be SIGKILLed and restarted on its data.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NodeClient } from "../../agent/api/client";
import { buildDeleteRequest, buildDeployRequest } from "../../agent/api/messages";
import { parseDeployment, type DeploymentSpec } from "../../agent/admission/spec";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { cryptoReady, loadKeyFile, type Signer } from "../../agent/identity/keys";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, type NatsServerHandle } from "../utils/nats";
import { natsBus } from "../../agent/bus/nats";

export interface FaultNode {
  dir: string;
  nats: NatsServerHandle;
  chain: AgentProcess;
  agent: AgentProcess;
  agentArgs: string[];
  nc: NatsConnection;
  client: NodeClient;
  chainClient: ChainClient;
  owner: Signer;
  node: Signer;
  subjects: Subjects;
  /** start the agent again on the same data (after a kill) */
  restart(): Promise<AgentProcess>;
  close(): Promise<void>;
}

export function deployment(id: number, version: number, kind: number): DeploymentSpec {
  const workloads = kind % 2 === 0 ? [{ name: "data", type: "zmount", size: "1GiB" }] : [{ name: "vm", type: "zmachine", cpu: 1, memory: "256MiB", rootfs: "1GiB" }];
  const r = parseDeployment({ id, twinId: 7, version, workloads });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
}

export function deployBytes(n: FaultNode, id: number, version: number, kind: number): Uint8Array {
  return buildDeployRequest(deployment(id, version, kind), [{ twinId: 7, signer: n.owner }]);
}

export function deleteBytes(n: FaultNode, id: number): Uint8Array {
  return buildDeleteRequest(id, 7, n.owner, Date.now());
}

export async function startFaultNode(opts: { periodSeconds?: number; prefix?: string; extraConfig?: Record<string, unknown>; natsUrl?: string } = {}): Promise<FaultNode> {
  await cryptoReady();
  const dir = tmpDir(opts.prefix ?? "fault-");
  const nats = await startNats();
  const keys: Record<string, string> = {};
  for (const name of ["node", "owner"]) {
    keys[name] = path.join(dir, `${name}.json`);
    const r = await cli(["keys", "new", "--out", keys[name]]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const registry = path.join(dir, "registry.json");
  for (const args of [["--node", "1", "--farm", "1", "--key", keys.node], ["--twin", "7", "--key", keys.owner]]) {
    const r = await cli(["registry", "add", "--file", registry, ...args]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const hw = JSON.parse((await cli(["hardware", "--json"])).stdout) as { disks: Array<{ name: string }> };
  const config = path.join(dir, "config.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      hardware: { diskOverrides: Object.fromEntries(hw.disks.map((d) => [d.name, "ssd"])) },
      api: { limits: { writeRate: 10_000, writeBurst: 10_000, readRate: 10_000, readBurst: 10_000 } },
      ...opts.extraConfig,
    }),
  );
  // these scenarios are about faults, not billing: a chain whose prices are zero bills twin 7
  // nothing, so it never falls into debt (twin_in_debt) however many periods a scenario runs
  const pricing = path.join(dir, "pricing.json");
  fs.writeFileSync(pricing, JSON.stringify({ cuPerHour: 0, suPerHour: 0, ipv4PerHour: 0, nuPerGib: 0 }));
  const chain = await startChain(["--nats", nats.url, "--data", path.join(dir, "chain"), "--pricing", pricing]);
  const agentArgs = ["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "1", "--farm-id", "1", "--key", keys.node, "--registry", registry, "--config", config, "--period", String(opts.periodSeconds ?? 3600)];
  const nc = await connect({ servers: nats.url, name: "fault-client", maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const subjects = new Subjects();
  const n: FaultNode = {
    dir,
    nats,
    chain,
    agent: await startAgent(agentArgs),
    agentArgs,
    nc,
    client: new NodeClient(natsBus(nc), subjects, 3000),
    chainClient: new ChainClient(natsBus(nc), subjects),
    owner: await loadKeyFile(keys.owner),
    node: await loadKeyFile(keys.node),
    subjects,
    restart: async () => {
      n.agent = await startAgent(agentArgs);
      return n.agent;
    },
    close: async () => {
      await n.nc.close().catch(() => undefined);
      await n.agent.stop();
      await n.chain.stop();
      await n.nats.stop();
    },
  };
  return n;
}
