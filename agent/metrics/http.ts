import * as http from "node:http";
import type { Logger } from "../log/logger";
import type { Health } from "./health";
import type { MetricsRegistry } from "./metrics";

/**
 * Serves GET /metrics (Prometheus text) and GET /healthz on host:port. /healthz answers JSON
 * (`{"status":"ok"|"degraded"|"down","nats":{...},"chain":{...}|null}`): 200 when ok or degraded,
 * 503 when down (NATS is not connected).
 */
export class MetricsServer {
  private server: http.Server | null = null;
  constructor(
    private readonly options: { host: string; port: number },
    private readonly modules: { registry: MetricsRegistry; logger: Logger; health: () => Health },
  ) {}

  start(): Promise<void> {
    const log = this.modules.logger.child({ module: "metrics" });
    this.server = http.createServer((req, res) => {
      if (req.method === "GET" && req.url === "/metrics") {
        this.modules.registry.expose().then(
          (text) => {
            res.writeHead(200, { "content-type": this.modules.registry.contentType });
            res.end(text);
          },
          (err: unknown) => {
            log.error({ event: "metrics_failed", err: String(err) }, "could not collect the metrics");
            res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
          },
        );
      } else if (req.method === "GET" && req.url === "/healthz") {
        const h = this.modules.health();
        res.writeHead(h.status === "down" ? 503 : 200, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(JSON.stringify(h) + "\n");
      } else {
        res.writeHead(404).end();
      }
    });
    return new Promise((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.options.port, this.options.host, () => {
        const addr = this.server!.address() as { port: number };
        log.info({ event: "metrics_listening", host: this.options.host, port: addr.port }, "metrics endpoint listening");
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
