import { DASHBOARD_DEFAULTS } from "../../dashboard/options";
import { NATS_OPTION, type Command } from "../framework";

export const dashboardCommand: Command = {
  name: "dashboard",
  help: `usage: capacity-agent dashboard [--nats URL] [--farm F] [--port P] [--host H] [--registry FILE]
                                [--pretty] [--log-level LEVEL]

Serves a web page (http://H:P/) showing every node of farm F from the signed gossip: capacity bars
per unit (used / reservable), free capacity, power state, heartbeat age, agent version, and the
farm's totals, updated live (server-sent events). Click a node for its deployments and usage
state (asked of the node, tfgrid.v1.node.<N>.status) and its last usage proofs (asked of the
chain). Every announcement is verified against the registry's key for the node it names (the
registry file, else the chain), as the agents do; the dashboard holds no node key and changes
nothing. Without --farm it shows every farm it hears.
  --nats URL         NATS server(s) (default $CAPACITY_AGENT_NATS or nats://127.0.0.1:4222)
  --farm F           the farm to show (default: every farm)
  --port P           HTTP port (default ${DASHBOARD_DEFAULTS.port}; 0 picks a free one, logged as dashboard_listening)
  --host H           address to listen on (default ${DASHBOARD_DEFAULTS.host}; the page has no login: keep it local
                     or behind a proxy that authenticates)
  --registry FILE    registry to verify announcements against (default $CAPACITY_AGENT_REGISTRY, else the chain)
  --pretty           human-readable logs instead of JSON
  --log-level LEVEL  fatal, error, warn, info (default), debug, trace, silent`,
  options: { ...NATS_OPTION, farm: { type: "string" }, port: { type: "string" }, host: { type: "string" }, registry: { type: "string" }, pretty: { type: "boolean" }, "log-level": { type: "string" } },
  async run(args, io) {
    // the dashboard's modules (NATS, protobufjs, pino, the HTTP server) load when it runs, not with --help
    const { runDashboard } = require("./dashboard-run") as typeof import("./dashboard-run");
    return runDashboard(args.values, io);
  },
};
