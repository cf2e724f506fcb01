import type { Bus } from "../../bus/bus";
import type { NodeClient } from "../../api/client";
import { withNodeClient } from "../client";
import { EXIT_OK, JSON_OPTION, NATS_OPTION, UsageError, intFlag, type Command, type Io } from "../framework";
import { formatBytes, isoTime, unitsLine } from "../format";
import type { StatusView, UsageStatusView } from "../../api/messages";
import { UNIT_NAMES, type UnitName } from "../../capacity/units";
import { redact } from "../../log/redact";
import type { DecisionEntry } from "../../api/decisions";
import { decisionLine } from "./decisions";

function usageLine(u: UsageStatusView): string {
  const through = isoTime(u.meteredUntilMs);
  const chain = u.chain ? `delivered up to #${u.deliveredSequence}, ${u.pending} pending${u.lastCode ? ` (chain said ${u.lastCode})` : ""}` : "kept, not sent (chain disabled)";
  const ends = new Map((u.grace ?? []).map((g) => [g.twinId, g]));
  const twin = (t: number): string => {
    const g = ends.get(t);
    if (!g?.graceEndMs) return String(t);
    return `${t} (${g.expired ? "grace ended, deployments deleted" : `until ${isoTime(g.graceEndMs)}`})`;
  };
  const grace = u.twinsInGrace?.length ? `; twins in grace (in debt on the chain, new deployments refused): ${u.twinsInGrace.map(twin).join(", ")}` : "";
  return `usage       proofs every ${u.periodMs / 1000} s, built up to #${u.lastSequence} (metered until ${through}), ${chain}${grace}`;
}

/** Clear the terminal and put the cursor home (ANSI): each --watch frame replaces the last. */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J";
const BYTE_UNITS = new Set<UnitName>(["mru", "sru", "hru"]);

function amount(u: UnitName, v: number): string {
  return BYTE_UNITS.has(u) ? formatBytes(v) : String(v);
}

/** One capacity line per unit: a bar of used / reservable, then the numbers. */
export function capacityBars(s: Pick<StatusView, "reservable" | "used" | "free">, width = 20): string[] {
  return UNIT_NAMES.map((u) => {
    const cap = s.reservable[u];
    const frac = cap > 0 ? Math.min(1, s.used[u] / cap) : 0;
    const filled = Math.round(frac * width);
    return `  ${u.padEnd(5)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%  used ${amount(u, s.used[u])} of ${amount(u, cap)}, free ${amount(u, s.free[u])}`;
  });
}

/** One --watch frame (pure): the node's capacity, power, the NATS and chain state, its last decisions and latest deployments. */
export function watchFrame(f: { node: number; nowMs: number; intervalMs: number; nats: string; status: StatusView | null; error: string | null; tookMs: number; latest: number; decisions?: { total: number; list: DecisionEntry[] } | null }): string {
  const head = `capacity-agent status --watch: node ${f.node}   ${isoTime(f.nowMs)}   (every ${f.intervalMs / 1000} s; Ctrl-C to quit)`;
  const s = f.status;
  if (!s) return [head, "", `nats        ${f.nats}`, `node        did not answer: ${f.error ?? "no reply"}`, "", "retrying..."].join("\n");
  const u = s.usage;
  const chain = !u ? "-" : u.chain ? `proofs delivered up to #${u.deliveredSequence}, ${u.pending} pending${u.lastCode ? `, chain said ${u.lastCode}` : ", ok"}` : "disabled (proofs kept, not sent)";
  const latest = [...s.deployments].sort((a, b) => b.id - a.id).slice(0, f.latest);
  return [
    head,
    "",
    `node ${s.nodeId} (farm ${s.farmId}, twin ${s.twinId})   power ${s.power.toUpperCase()}   agent ${s.agentVersion}${s.storeFull ? "   STORE FULL" : ""}`,
    `nats        ${f.nats}, node answered in ${f.tookMs} ms`,
    `chain       ${chain}`,
    "",
    "capacity (used of reservable)",
    ...capacityBars(s),
    "",
    ...(f.decisions
      ? [`decisions   ${f.decisions.total} since the agent started${f.decisions.list.length ? `, the last ${f.decisions.list.length}:` : ""}`, ...f.decisions.list.map((d) => `  ${decisionLine(d)}`), ""]
      : f.decisions === null
        ? ["decisions   - (the node does not serve node.<N>.decisions: an older agent)", ""]
        : []),
    `deployments ${s.deployments.length}${latest.length ? `, latest ${latest.length} by id:` : ""}`,
    ...latest.map((d) => `  #${d.id} v${d.version} twin ${d.twinId}: ${unitsLine(d.units)}`),
  ].join("\n");
}

async function watch(client: NodeClient, bus: Bus, io: Io, o: { node: number; intervalMs: number; count: number | undefined; json: boolean; decisions: number }): Promise<void> {
  for (let frame = 0; o.count === undefined || frame < o.count; frame++) {
    if (frame > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.intervalMs);
        io.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
      });
    }
    if (io.signal.aborted) return;
    const t0 = Date.now();
    let status: StatusView | null = null;
    let error: string | null = null;
    let decisions: { total: number; list: DecisionEntry[] } | null = null;
    try {
      // the last decisions ride along; a node that does not serve them (an older agent) still shows
      const [s, d] = await Promise.all([client.status(o.node), client.decisions(o.node, o.decisions).catch(() => null)]);
      status = s;
      decisions = d ? { total: d.total, list: d.decisions } : null;
    } catch (err) {
      error = (err as Error).message;
    }
    const nats = bus.isClosed() ? "closed" : `connected to ${redact(bus.getServer())}`;
    if (o.json) {
      io.out(JSON.stringify({ timeMs: t0, nats, error, status: status ? statusJson(status) : null, decisions: decisions?.list ?? null }));
    } else {
      io.out(CLEAR_SCREEN + watchFrame({ node: o.node, nowMs: t0, intervalMs: o.intervalMs, nats, status, error, tookMs: Date.now() - t0, latest: 5, decisions }));
    }
  }
}

function statusJson(s: StatusView): Record<string, unknown> {
  return {
    nodeId: s.nodeId,
    farmId: s.farmId,
    twinId: s.twinId,
    total: s.total,
    reserved: s.reserved,
    allocatable: s.allocatable,
    reservable: s.reservable,
    used: s.used,
    free: s.free,
    power: s.power,
    agentVersion: s.agentVersion,
    deployments: s.deployments,
    usage: s.usage,
    storeFull: s.storeFull,
  };
}

export const statusCommand: Command = {
  name: "status",
  help: `usage: capacity-agent status --node N [--nats URL] [--json]
       capacity-agent status --node N --watch [--interval-ms MS] [--count K] [--nats URL] [--json]

JSON: {"nodeId","farmId","total","reserved","reservable","used","free","power","deployments":[{"id","twinId","version","units"}],
       "usage":{"periodMs","lastSequence","deliveredSequence","pending","meteredUntilMs","lastCode","chain","twinsInGrace",
                 "grace":[{"twinId","graceEndMs","expired"}]}}
with units cru, mru, sru, hru, ipv4u, gpu (memory and storage in bytes). The node answers in pages
(100 deployments by default, up to 1000); status fetches every page: "deployments" is the full list. "usage" tells the last
usage proof built and the last the chain acknowledged, how many wait, and the chain's last answer.
With --watch the terminal is redrawn every interval: capacity bars per unit, power, the NATS
connection, the chain's last answer to the node's usage proofs, its last 8 decisions (accepted or
refused with the code, from node.<N>.decisions; capacity-agent decisions) and the latest deployments;
a node that does not answer is shown as such and asked again. With --json, one JSON line per
interval: {"timeMs","nats","error","status": <the JSON above> | null,"decisions": [...] | null}.
  --node N          the node
  --nats URL        NATS server(s)
  --json            print JSON
  --watch           redraw until Ctrl-C (or --count frames)
  --interval-ms MS  time between frames (default 2000, at least 100)
  --count K         stop after K frames (default: never)`,
  options: { node: { type: "string" }, ...NATS_OPTION, ...JSON_OPTION, watch: { type: "boolean" }, "interval-ms": { type: "string" }, count: { type: "string" } },
  async run({ values }, io) {
    const node = intFlag(values, "node", { required: true, max: 0xffffffff })!;
    const intervalMs = intFlag(values, "interval-ms", { min: 100, max: 3_600_000 });
    const count = intFlag(values, "count", { min: 1, max: 1_000_000_000 });
    if (!values.watch && (intervalMs !== undefined || count !== undefined)) throw new UsageError("--interval-ms and --count go with --watch");
    if (values.watch) {
      await withNodeClient(values, io, (client, bus) => watch(client, bus, io, { node, intervalMs: intervalMs ?? 2000, count, json: values.json === true, decisions: 8 }));
      return EXIT_OK;
    }
    const s = await withNodeClient(values, io, (client) => client.status(node));
    if (values.json) {
      io.out(JSON.stringify(statusJson(s)));
    } else {
      io.out(
        [
          `node ${s.nodeId} (farm ${s.farmId}, twin ${s.twinId}), power ${s.power}, agent ${s.agentVersion}`,
          `total       ${unitsLine(s.total)}`,
          `reserved    ${unitsLine(s.reserved)}`,
          `reservable  ${unitsLine(s.reservable)}`,
          `used        ${unitsLine(s.used)}`,
          `free        ${unitsLine(s.free)}`,
          `deployments ${s.deployments.length}`,
          ...s.deployments.map((d) => `  ${d.id} v${d.version} twin ${d.twinId}: ${unitsLine(d.units)}`),
          ...(s.usage ? [usageLine(s.usage)] : []),
          ...(s.storeFull ? ["store       FULL: new deployments, updates and deletes are refused (store_full) until the node's disk has room"] : []),
        ].join("\n"),
      );
    }
    return EXIT_OK;
  },
};
