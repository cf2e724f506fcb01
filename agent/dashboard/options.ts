/** Dashboard options (agent/dashboard/server.ts), in a module of their own so `dashboard --help` loads nothing else. */
export interface DashboardOptions {
  host: string;
  port: number;
  /** most SSE clients at once (each holds a socket) */
  maxClients: number;
  /** proofs listed per node */
  proofs: number;
  /** recent decisions listed per node (node.<N>.decisions) */
  decisions: number;
}

export const DASHBOARD_DEFAULTS: DashboardOptions = { host: "127.0.0.1", port: 8090, maxClients: 64, proofs: 10, decisions: 20 };
