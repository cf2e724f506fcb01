/**
 * The account and permission layout of a grid's NATS bus (docs/bus-security.md), as pure
 * functions: who may publish and subscribe to what, and the nats-server configuration that
 * enforces it for nkey users. scripts/bus-config writes it with fresh nkeys for a local grid.
 *
 * - a node publishes only its own announcements (`<p>.capacity.<farm>.<node>`), asks its farm's
 *   sync, and calls the chain (register, proof submission, queries); it receives only its own node
 *   subjects (`<p>.node.<node>.>`), so it answers no other node's requests; it reads announcements,
 *   find and sync requests, and answers requests it received (allow_responses);
 * - a deployer (a farmer's dashboard too) requests node subjects (deploy, delete, get, status,
 *   decisions, peers, usage audits, power), find and sync, registers twins and farms and queries the
 *   chain; it reads announcements but answers nothing;
 * - the chain alone receives the chain's subjects and publishes the chain's events;
 * - every user reads only its own reply inboxes (`_INBOX.<user>.>`, nats.js `inboxPrefix`), so no
 *   user reads another's replies; the server lets in no one without credentials.
 */

export type PrincipalKind = "node" | "deployer" | "chain";

export interface Principal {
  kind: PrincipalKind;
  /** user name: node-<id>, deployer-<name>, chain; also the inbox token */
  name: string;
  /** the user's nkey public key (U...) */
  publicKey: string;
  /** for nodes */
  nodeId?: number;
  farmId?: number;
}

export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** may publish to the reply subject of a request it received (once, for a short while) */
  allowResponses: boolean;
}

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** The reply inbox prefix of a user: `_INBOX.<name>` (its clients connect with this inboxPrefix). */
export function inboxPrefixFor(name: string): string {
  if (!NAME_RE.test(name)) throw new Error(`a user name is letters, digits, _ or - (1 to 64), got ${JSON.stringify(name)}`);
  return `_INBOX.${name}`;
}

export function nodeName(nodeId: number): string {
  return `node-${nodeId}`;
}

/** What `p` may publish and subscribe to, under the subject prefix (default tfgrid.v1). */
export function permissionsOf(p: Principal, prefix = "tfgrid.v1"): Permissions {
  const inbox = `${inboxPrefixFor(p.name)}.>`;
  switch (p.kind) {
    case "node": {
      if (!Number.isInteger(p.nodeId) || !Number.isInteger(p.farmId)) throw new Error(`node principal ${p.name} needs a node id and a farm id`);
      return {
        publish: [
          `${prefix}.capacity.${p.farmId}.${p.nodeId}`,
          `${prefix}.capacity.sync.${p.farmId}`,
          `${prefix}.chain.twin.register`,
          `${prefix}.chain.node.register`,
          `${prefix}.chain.proof.submit`,
          `${prefix}.chain.proof.settle`,
          `${prefix}.chain.node.power`,
          `${prefix}.chain.query`,
          // power management (docs/power.md): intents and objections in its farm, wake requests to peers
          `${prefix}.power.${p.farmId}`,
          `${prefix}.node.*.power`,
        ],
        subscribe: [`${prefix}.capacity.>`, `${prefix}.node.${p.nodeId}.>`, `${prefix}.power.${p.farmId}`, inbox],
        allowResponses: true,
      };
    }
    case "deployer":
      return {
        publish: [`${prefix}.node.*.>`, `${prefix}.capacity.find`, `${prefix}.capacity.sync.*`, `${prefix}.chain.twin.register`, `${prefix}.chain.farm.register`, `${prefix}.chain.query`],
        subscribe: [`${prefix}.capacity.*.*`, `${prefix}.chain.events.>`, inbox],
        allowResponses: false,
      };
    case "chain":
      return {
        publish: [`${prefix}.chain.events.>`],
        // every call subject of the chain (a list here would fall behind each new call)
        subscribe: [`${prefix}.chain.>`, inbox],
        allowResponses: true,
      };
  }
}

export interface ServerConfigOptions {
  host: string;
  port: number;
  prefix?: string;
  principals: Principal[];
  /** TLS: server certificate and key, the CA that signs clients' certificates; verify: clients must present one */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
  /** largest message the server accepts (default: nats-server's 1 MiB) */
  maxPayload?: number;
}

const q = (s: string): string => JSON.stringify(s);
const list = (xs: string[]): string => `[${xs.map(q).join(", ")}]`;

function listenLines(o: Omit<ServerConfigOptions, "principals" | "prefix">): string[] {
  const lines: string[] = [];
  lines.push("# capacity-agent grid bus (scripts/bus-config; docs/bus-security.md)");
  lines.push(`host: ${q(o.host)}`, `port: ${o.port}`);
  if (o.maxPayload) lines.push(`max_payload: ${o.maxPayload}`);
  if (o.tls) {
    lines.push("tls {", `  cert_file: ${q(o.tls.certFile)}`, `  key_file: ${q(o.tls.keyFile)}`);
    if (o.tls.caFile) lines.push(`  ca_file: ${q(o.tls.caFile)}`);
    if (o.tls.verify) lines.push("  verify: true");
    lines.push("  timeout: 2", "}");
  }
  return lines;
}

/**
 * Operator mode (decentralised JWT auth): the server trusts the operator's JWT and knows the
 * accounts from a MEMORY resolver; users are not listed, they bring a JWT the account signed
 * (jwt.ts userJwt, with the permissions of permissionsOf) in their creds file.
 */
export function serverConfigJwt(o: Omit<ServerConfigOptions, "principals" | "prefix"> & { operatorJwt: string; systemAccount: string; accounts: Record<string, string> }): string {
  const lines = listenLines(o);
  lines.push(`operator: ${o.operatorJwt}`, `system_account: ${o.systemAccount}`, "resolver: MEMORY", "resolver_preload: {");
  for (const [pub, jwt] of Object.entries(o.accounts)) lines.push(`  ${pub}: ${jwt}`);
  lines.push("}");
  return lines.join("\n") + "\n";
}

/** A nats-server configuration (its own format) with one nkey user per principal and their permissions. */
export function serverConfig(o: ServerConfigOptions): string {
  const lines = listenLines(o);
  lines.push("authorization {", "  users = [");
  for (const p of o.principals) {
    const perm = permissionsOf(p, o.prefix);
    lines.push(`    # ${p.name}`);
    lines.push(`    { nkey: ${q(p.publicKey)}, permissions: {`);
    lines.push(`        publish: { allow: ${list(perm.publish)} }`);
    lines.push(`        subscribe: { allow: ${list(perm.subscribe)} }`);
    if (perm.allowResponses) lines.push("        allow_responses: true");
    lines.push("    } }");
  }
  lines.push("  ]", "}");
  return lines.join("\n") + "\n";
}
