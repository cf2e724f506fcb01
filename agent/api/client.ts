import type { Bus } from "../bus/bus";
import type { Subjects } from "../bus/subjects";
import { encode, toSafeNumber, unitsFromWire } from "../wire/codec";
import { decode } from "../wire/codec";
import { envelopeReady, open } from "../identity/envelope";
import { DOMAIN } from "../identity/domains";
import { readDecisionReply, readStatusReply, STATUS_PAGE_MAX, type Decided, type StatusView } from "./messages";
import type { Units } from "../capacity/units";
import { AgentError } from "../errors";
import { readDecisionsReply, type DecisionsView } from "./decisions";

export class NodeUnreachable extends AgentError<"node_unreachable"> {
  constructor(node: number, cause: unknown) {
    super("node_unreachable", `node ${node} did not answer (${(cause as Error)?.message ?? cause}); is its agent running and connected to this NATS?`, { cause });
    this.name = "NodeUnreachable";
  }
}

/** A client of the node API (deployers, the CLI, tests). */
export class NodeClient {
  constructor(
    private readonly bus: Bus,
    private readonly subjects: Subjects,
    private readonly timeoutMs = 5000,
  ) {}

  private async request(node: number, subject: string, body: Uint8Array): Promise<Uint8Array> {
    let data: Uint8Array;
    try {
      data = (await this.bus.request(subject, body, { timeout: this.timeoutMs })).data;
    } catch (err) {
      throw new NodeUnreachable(node, err);
    }
    await envelopeReady(data, { maxBytes: 64 * 1024 * 1024, maxRepeated: 1 << 20 });
    return data;
  }

  async deploy(node: number, request: Uint8Array): Promise<Decided> {
    return readDecisionReply(await this.request(node, this.subjects.nodeDeploy(node), request));
  }

  async delete(node: number, request: Uint8Array): Promise<Decided> {
    return readDecisionReply(await this.request(node, this.subjects.nodeDelete(node), request));
  }

  /** One page of a node's status: deployments with an id above `after`, at most `limit` (0: the node's default). */
  async statusPage(node: number, after = 0, limit = 0): Promise<StatusView> {
    return readStatusReply(await this.request(node, this.subjects.nodeStatus(node), encode("StatusRequest", { after, limit })));
  }

  /** A node's status with every deployment: pages (of the largest size by default) until there are no more. */
  async status(node: number, pageSize = STATUS_PAGE_MAX): Promise<StatusView> {
    const first = await this.statusPage(node, 0, pageSize);
    const deployments = [...first.deployments];
    let page = first;
    while (page.more && page.deployments.length > 0) {
      page = await this.statusPage(node, page.deployments[page.deployments.length - 1].id, pageSize);
      deployments.push(...page.deployments);
    }
    return { ...first, deployments, deploymentCount: Math.max(first.deploymentCount, deployments.length), more: false };
  }

  /** The node's recent decisions, newest first (`limit` 0: every one it keeps, at most 100). */
  async decisions(node: number, limit = 0): Promise<DecisionsView> {
    return readDecisionsReply(await this.request(node, this.subjects.nodeDecisions(node), encode("DecisionsRequest", { limit })));
  }

  async get(node: number, id: number): Promise<{ found: false; code: string; message: string } | { found: true; id: number; twinId: number; version: number; units: Units }> {
    const bytes = await this.request(node, this.subjects.nodeGet(node), encode("GetRequest", { id }));
    const o = open(bytes, DOMAIN.GetReply, { maxBytes: 64 * 1024 * 1024, maxRepeated: 1 << 20 });
    if (!o.ok) throw new Error(`node reply: ${o.refusal.message}`);
    const r = decode("GetReply", o.value.payload, { maxBytes: 64 * 1024 * 1024, maxRepeated: 1 << 20 });
    if (!r.found || !r.summary) return { found: false, code: r.rejection?.code ?? "not_found", message: r.rejection?.message ?? "not found" };
    return { found: true, id: toSafeNumber(r.summary.id, "id"), twinId: r.summary.twinId, version: r.summary.version, units: unitsFromWire(r.summary.units) };
  }
}
