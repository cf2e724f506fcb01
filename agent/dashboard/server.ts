/**
 * The farm dashboard's HTTP shell (node:http): the page, the farm's state as JSON, live updates
 * as server-sent events, and one node's details (its status over the node API, its proofs from
 * the chain). Reads only: it holds no key of a node and changes nothing.
 *
 *   GET /                  page.html (one static file, no build step, no CDN)
 *   GET /api/state         DashboardState (model.ts)
 *   GET /api/events        text/event-stream: `state` events (on every accepted announcement, at
 *                          most every 250 ms, and every second for the heartbeat ages)
 *   GET /api/node/<id>     {"status": node status | null, "statusError", "decisions": [...] (newest first),
 *                          "decisionsTotal", "decisionsError", "proofs": [...], "proofsError"}
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { NodeClient } from "../api/client";
import type { StatusView } from "../api/messages";
import type { ChainClient } from "../chain/client";
import type { Logger } from "../log/logger";
import type { DashboardState } from "./model";
import { DASHBOARD_DEFAULTS, type DashboardOptions } from "./options";

export { DASHBOARD_DEFAULTS, type DashboardOptions };

export interface DashboardModules {
  state: () => DashboardState;
  /** called with a function to run when the view changed; returns an unsubscribe */
  onChange: (fn: () => void) => () => void;
  node: NodeClient;
  /** null: no chain to ask for proofs */
  chain: ChainClient | null;
  logger: Logger;
}

/** page.html sits next to this file in the sources; tsc does not copy it, so dist/ looks in agent/. */
function pagePath(): string {
  const here = path.join(__dirname, "page.html");
  if (fs.existsSync(here)) return here;
  return path.resolve(__dirname, "..", "..", "..", "agent", "dashboard", "page.html");
}

function statusJson(s: StatusView): Record<string, unknown> {
  const { signer: _signer, ...rest } = s;
  return rest;
}

export class DashboardServer {
  private server: http.Server | null = null;
  private readonly clients = new Set<http.ServerResponse>();
  private tick: NodeJS.Timeout | null = null;
  private pending: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly log: Logger;
  private page = "";

  constructor(
    private readonly options: DashboardOptions,
    private readonly m: DashboardModules,
  ) {
    this.log = m.logger.child({ module: "dashboard" });
  }

  /** The bound port (after start). */
  get port(): number {
    return (this.server?.address() as { port: number } | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    this.page = fs.readFileSync(pagePath(), "utf8");
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        this.log.warn({ event: "dashboard_request_failed", url: req.url, err: String(err) }, "a dashboard request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: "internal", message: "the dashboard could not answer; see its log" }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.options.port, this.options.host, () => resolve());
    });
    this.unsubscribe = this.m.onChange(() => this.schedule());
    this.tick = setInterval(() => this.broadcast(), 1000);
    this.tick.unref();
    this.log.info({ event: "dashboard_listening", host: this.options.host, port: this.port, url: `http://${this.options.host}:${this.port}/` }, "dashboard listening");
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.broadcast();
    }, 250);
    this.pending.unref();
  }

  private broadcast(): void {
    if (this.clients.size === 0) return;
    const data = `event: state\ndata: ${JSON.stringify(this.m.state())}\n\n`;
    for (const c of this.clients) c.write(data);
  }

  private json(res: http.ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://dashboard");
    if (req.method !== "GET") return this.json(res, 405, { code: "method_not_allowed", message: "the dashboard answers GET only" });
    if (url.pathname === "/" || url.pathname === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'" });
      res.end(this.page);
      return;
    }
    if (url.pathname === "/api/state") return this.json(res, 200, this.m.state());
    if (url.pathname === "/api/events") {
      if (this.clients.size >= this.options.maxClients) return this.json(res, 503, { code: "too_many_clients", message: `the dashboard serves at most ${this.options.maxClients} live pages; close one and reload` });
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(this.m.state())}\n\n`);
      this.clients.add(res);
      req.on("close", () => this.clients.delete(res));
      return;
    }
    const node = /^\/api\/node\/(\d{1,10})$/.exec(url.pathname);
    if (node) {
      const id = Number(node[1]);
      if (id < 1 || id > 0xffffffff) return this.json(res, 400, { code: "invalid_node", message: "a node id is an integer from 1 to 4294967295" });
      const [status, decisions, proofs] = await Promise.all([
        this.m.node.status(id).then(
          (s) => ({ value: statusJson(s), error: null }),
          (err: unknown) => ({ value: null, error: (err as Error).message }),
        ),
        this.m.node.decisions(id, this.options.decisions).then(
          (d) => ({ value: d.decisions, total: d.total, error: null }),
          (err: unknown) => ({ value: [], total: 0, error: (err as Error).message }),
        ),
        this.recentProofs(id),
      ]);
      return this.json(res, 200, {
        nodeId: id,
        status: status.value,
        statusError: status.error,
        decisions: decisions.value,
        decisionsTotal: decisions.total,
        decisionsError: decisions.error,
        proofs: proofs.value,
        proofsError: proofs.error,
      });
    }
    return this.json(res, 404, { code: "not_found", message: "no such page; the dashboard serves /, /api/state, /api/events and /api/node/<id>" });
  }

  /** The node's last proofs the chain holds (newest first). */
  private async recentProofs(id: number): Promise<{ value: unknown[]; error: string | null }> {
    const chain = this.m.chain;
    if (!chain) return { value: [], error: "no chain: proofs are not shown" };
    try {
      const head = await chain.head(id);
      if (!head) return { value: [], error: null };
      const from = Math.max(1, head.sequence - this.options.proofs + 1);
      const list = await chain.proofs(id, from, this.options.proofs);
      const value = list
        .map((p) => ({
          sequence: p.header.sequence,
          periodStartMs: p.header.periodStartMs,
          periodEndMs: p.header.periodEndMs,
          records: p.header.recordCount,
          downtimeMs: p.header.downtimeMs,
          acceptedMs: p.acceptedMs,
        }))
        .reverse();
      return { value, error: null };
    } catch (err) {
      return { value: [], error: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    if (this.tick) clearInterval(this.tick);
    if (this.pending) clearTimeout(this.pending);
    for (const c of this.clients) c.end();
    this.clients.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
