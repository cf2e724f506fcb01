import * as path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { parseDeployment } from "../../agent/admission/spec";
import { NodeClient } from "../../agent/api/client";
import { buildDeployRequest } from "../../agent/api/messages";
import { natsBus } from "../../agent/bus/nats";
import { Subjects } from "../../agent/bus/subjects";
import { ChainClient } from "../../agent/chain/client";
import { loadKeyFile } from "../../agent/identity/keys";
import { startAgent, startChain, tmpDir, type AgentProcess } from "./agent";
import { startNats, type NatsServerHandle } from "./nats";
import { newKeys, registryFile, ssdConfig, stopAll } from "./setup";

/**
 * Node 1 of farm 1 metering for the chain stand-in, as real processes on a real nats-server:
 * key files (node; owner, twin 7; and any others named), a registry file binding node and owner,
 * the all-SSD config, `capacity-agent chain` and `capacity-agent run --period`, a client
 * connection, and the owner's deployments accepted by the node. chainProc and agent may be
 * replaced: a test restarts them with chainArgs and agentArgs.
 */
export interface MeteredNode {
  nats: NatsServerHandle;
  dir: string;
  keys: Record<string, string>;
  chainArgs: string[];
  agentArgs: string[];
  chainProc: AgentProcess;
  agent: AgentProcess;
  nc: NatsConnection;
  chain: ChainClient;
  client: NodeClient;
  /** when every deployment was in place */
  deployedAt: number;
  stop(): Promise<void>;
}

export async function startMeteredNode(opts: {
  dirPrefix: string;
  periodS: number;
  otherKeys?: string[];
  hardware?: Record<string, unknown>;
  deployments: Array<{ id: number; workloads: readonly Record<string, unknown>[] }>;
}): Promise<MeteredNode> {
  const nats = await startNats();
  const dir = tmpDir(opts.dirPrefix);
  const keys = await newKeys(dir, ["node", "owner", ...(opts.otherKeys ?? [])]);
  const registry = await registryFile(dir, { nodes: [{ id: 1, farm: 1, key: keys.node }], twins: [{ id: 7, key: keys.owner }] });
  const config = await ssdConfig(dir, opts.hardware);
  const chainArgs = ["--nats", nats.url, "--data", path.join(dir, "chain")];
  const chainProc = await startChain(chainArgs);
  const agentArgs = ["--nats", nats.url, "--data", path.join(dir, "data"), "--node-id", "1", "--farm-id", "1", "--key", keys.node, "--registry", registry, "--config", config, "--period", String(opts.periodS)];
  const agent = await startAgent(agentArgs);
  const nc = await connect({ servers: nats.url });
  const subjects = new Subjects();
  const client = new NodeClient(natsBus(nc), subjects);
  const owner = await loadKeyFile(keys.owner);
  for (const d of opts.deployments) {
    const r = parseDeployment({ id: d.id, twinId: 7, version: 1, workloads: d.workloads });
    if (!r.ok) throw new Error(r.refusal.message);
    const reply = await client.deploy(1, buildDeployRequest(r.value, [{ twinId: 7, signer: owner }]));
    if (!reply.accepted) throw new Error(`deployment ${d.id} refused: ${JSON.stringify(reply)}`);
  }
  const node: MeteredNode = {
    nats,
    dir,
    keys,
    chainArgs,
    agentArgs,
    chainProc,
    agent,
    nc,
    chain: new ChainClient(natsBus(nc), subjects),
    client,
    deployedAt: Date.now(),
    stop: () => stopAll(node.nc, node.agent, node.chainProc, node.nats),
  };
  return node;
}
