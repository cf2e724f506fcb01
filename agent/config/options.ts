import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_POLICY, OVERPROVISION_RANGE, type CapacityPolicy } from "../capacity/model";
import { parseSize } from "../capacity/size";
import { UNIT_NAMES } from "../capacity/units";
import { LOG_LEVELS } from "../log/logger";
import { API_LIMITS_DEFAULTS, parseApiLimits, type ApiLimits } from "../api/limits";
import { BusAuthError, checkCredentials, credentialsFromFlags, hasCredentials, mergeCredentials, parseCredentials, type BusCredentials } from "../bus/auth";
import { PowerError } from "../power/errors";
import { parsePowerOptions, type PowerPolicyOptions } from "../power/options";
import { parseChainUrl } from "../tfchain/options";
import { ConfigError } from "./errors";
import { intInRange } from "../util/ints";

/**
 * The agent's configuration. One JSON file (`--config`), environment variables and flags; flags
 * win over the environment, the environment over the file, the file over the defaults below.
 * Every field is validated and an error names the bad field.
 */
export interface AgentConfig {
  /** node id on the grid (tfchain node id); default 1 for a dev node */
  nodeId: number;
  /** farm the node belongs to; default 1 */
  farmId: number;
  /** the node's own twin; default: the node id */
  twinId: number;
  /**
   * whether nodeId / twinId were given explicitly (file, environment, flag). With the chain, the
   * chain assigns both; an explicit one must match what it assigns (else node_id_mismatch /
   * twin_id_mismatch and the agent does not start)
   */
  idsExplicit: { nodeId: boolean; twinId: boolean };
  /** where the store, dev keys and the dev registry live; default ./.capacity-agent */
  dataDir: string;
  /** node key file; default <dataDir>/node-key.json, created on first start when missing */
  keyFile: string;
  /** JSON registry file; default <dataDir>/registry.json (a dev registry naming this node) */
  registryFile: string;
  /** true when the key and registry are the dev defaults created in dataDir */
  devIdentity: boolean;
  nats: {
    /** server URLs; default ["nats://127.0.0.1:4222"] */
    servers: string[];
    /** with no --nats given and nothing answering: start a nats-server child on a free port (default true; false when credentials are set) */
    embedded: boolean;
    /** credentials, TLS and inbox prefix (bus/auth.ts, docs/bus-security.md); default none: an open bus */
    credentials: BusCredentials;
  };
  /** subject prefix; default "tfgrid.v1" */
  subjectPrefix: string;
  power: {
    /** "up" or "standby"; a node in standby refuses new deployments with node_standby */
    state: "up" | "standby";
    /** a rented (dedicated) node may host GPU workloads; default false */
    rented: boolean;
    /**
     * power management by the nodes themselves (docs/power.md): apply the policy with the farm's
     * other nodes, go to standby when idle, wake peers when capacity is needed (default false)
     */
    manage: boolean;
    /** how the node goes to standby and wakes peers: "dev" (only marks the state), "zos" (wake-on-lan), "command" */
    driver: "dev" | "zos" | "command";
    /** this node's MAC ("aa:bb:cc:dd:ee:ff"), announced so peers can wake it by wake-on-lan; default none */
    mac: string;
    /** the node has a public config (gateway, public IPs): it never goes to standby (default false) */
    publicConfig: boolean;
    /** the farm's twin, allowed to send power wake/standby; default: the farm's owner on the chain */
    farmerTwinId: number | null;
    /** or: the farmer twin's public key (0x hex): a twin registered with this key may send them (local grids) */
    farmerKey: string | null;
    /** the policy's numbers (seconds for durations): wakeThreshold 0.8, standbyThreshold 0.8, minStateSeconds 1800, claimQuietSeconds 1800, periodicWakeSeconds 86400, randomWakesPerMonth 10, checkSeconds 300, windowSeconds 60 */
    policy: Partial<PowerPolicyOptions>;
    /** command driver: shell commands (wake gets NODE_ID and NODE_MAC) */
    standbyCommand: string;
    wakeCommand: string;
    /** zos driver: where wake-on-lan packets go (default 255.255.255.255:9) */
    wol: { address: string; port: number };
    /** dev driver: seconds a woken dev node takes to "boot" (announced as waking meanwhile); default 0 */
    devBootSeconds: number;
  };
  capacity: CapacityPolicy;
  /** raw hardware options, validated by the hardware module */
  hardware: Record<string, unknown>;
  api: {
    /** largest accepted request in bytes; default 256 KiB */
    maxRequestBytes: number;
    /** how far a delete request's timestamp may be from the node's clock; default 300000 ms */
    deleteSkewMs: number;
    /**
     * what an unauthenticated sender can make the node API do (api/limits.ts): per-requester read
     * and write rates, reply bytes per second, queue lengths; defaults in API_LIMITS_DEFAULTS
     */
    limits: ApiLimits;
  };
  gossip: {
    /** heartbeat interval in seconds; default 30 */
    heartbeatSeconds: number;
    /** "farm" (default: own farm's subjects only) or "grid" (every farm) */
    scope: "farm" | "grid";
    /** most peers kept per farm (default 1000) and in all (default 20000) */
    maxPeersPerFarm?: number;
    maxPeers?: number;
    /** find and sync answers per second per requester connection (default 20) and in all (default 500) */
    requestRate?: number;
    answersPerSecond?: number;
    /** peers answers per second per requester connection (default 50) and in all (default 100) */
    peersRate?: number;
    peersPerSecond?: number;
  };
  usage: {
    /** metering period in seconds, aligned to the clock; default 3600, at most MAX_PERIOD_SECONDS (4 h) */
    periodSeconds: number;
  };
  chain: {
    /** register with the chain, resolve keys through it and send usage proofs to it (default true) */
    enabled: boolean;
    /** pin the chain's key (0x hex): replies signed by any other key are refused; default: not pinned */
    publicKey: string | null;
    /**
     * at the first start (no node id learned from the chain yet in dataDir), how long to wait for
     * the chain to assign the node id, ms (default 10000; 0 = do not wait). When no chain runs on
     * the bus at all (NATS: no responders), or the wait ends, the agent starts under the configured
     * node id (warning node_id_unconfirmed) and keeps registering in the background.
     */
    registerWaitMs: number;
    /** registry lookups sent to the chain per second, twins and nodes each; more resolve from the cache or as unknown (default 50) */
    lookupsPerSecond: number;
    /**
     * ws:// or wss:// URL of a tfchain node: the agent registers, resolves keys and sends usage
     * proofs on tfchain instead of the stand-in (null: the stand-in on NATS, the default)
     */
    url: string | null;
    /** with chain.url: connecting to tfchain at start gives up after this, ms (default 15000; then the agent does not start: chain_unavailable) */
    connectTimeoutMs: number;
    /**
     * with chain.url: the public key (0x hex) of the verifier (`capacity-agent verifier --key`)
     * whose verdicts on this node's proofs the agent trusts: the twins in debt and their grace ends
     * (docs/billing.md "The verdict path"). null (default): no verdict is trusted, so on tfchain no
     * twin is refused as twin_in_debt and no grace is enforced (said at start in the log).
     */
    verifierKey: string | null;
  };
  log: { level: string; pretty: boolean };
  /** Prometheus endpoint (GET /metrics, /healthz); off unless a port is set */
  metrics: { host: string; port: number | null };
}

export function defaultConfig(): AgentConfig {
  const dataDir = path.resolve(".capacity-agent");
  return {
    nodeId: 1,
    farmId: 1,
    twinId: 1,
    dataDir,
    keyFile: path.join(dataDir, "node-key.json"),
    registryFile: path.join(dataDir, "registry.json"),
    devIdentity: true,
    idsExplicit: { nodeId: false, twinId: false },
    nats: { servers: ["nats://127.0.0.1:4222"], embedded: true, credentials: {} },
    subjectPrefix: "tfgrid.v1",
    power: { state: "up", rented: false, manage: false, driver: "dev", mac: "", publicConfig: false, farmerTwinId: null, farmerKey: null, policy: {}, standbyCommand: "", wakeCommand: "", wol: { address: "255.255.255.255", port: 9 }, devBootSeconds: 0 },
    capacity: { ...DEFAULT_POLICY, overprovision: { ...DEFAULT_POLICY.overprovision } },
    hardware: {},
    api: { maxRequestBytes: 256 * 1024, deleteSkewMs: 300_000, limits: { ...API_LIMITS_DEFAULTS } },
    gossip: { heartbeatSeconds: 30, scope: "farm" },
    usage: { periodSeconds: 3600 },
    chain: { enabled: true, publicKey: null, registerWaitMs: 10_000, lookupsPerSecond: 50, url: null, connectTimeoutMs: 15_000, verifierKey: null },
    log: { level: "info", pretty: false },
    metrics: { host: "127.0.0.1", port: null },
  };
}

/** Flags and environment variables, already named by the config field they set. */
export interface ConfigOverrides {
  config?: string;
  nats?: string;
  data?: string;
  nodeId?: string;
  farmId?: string;
  twinId?: string;
  key?: string;
  registry?: string;
  pretty?: boolean;
  logLevel?: string;
  heartbeat?: string;
  period?: string;
  metricsPort?: string;
  /** run without the chain (chain.enabled = false) */
  noChain?: boolean;
  /** tfchain node URL (chain.url) */
  chainUrl?: string;
  /** the verifier's public key (chain.verifierKey) */
  verifierKey?: string;
  /** subject prefix (subjectPrefix); the environment only, as for the client commands */
  subjectPrefix?: string;
  /** the NATS credential flags as given (--nats-nkey ...: bus/auth.ts NATS_AUTH_FLAGS); their variables are read there */
  natsAuth?: Record<string, unknown>;
}

/** Environment variables: CAPACITY_AGENT_<FLAG>, e.g. CAPACITY_AGENT_NODE_ID, CAPACITY_AGENT_NATS. */
export const ENV_VARS: Record<Exclude<keyof ConfigOverrides, "natsAuth">, string> = {
  config: "CAPACITY_AGENT_CONFIG",
  nats: "CAPACITY_AGENT_NATS",
  data: "CAPACITY_AGENT_DATA",
  nodeId: "CAPACITY_AGENT_NODE_ID",
  farmId: "CAPACITY_AGENT_FARM_ID",
  twinId: "CAPACITY_AGENT_TWIN_ID",
  key: "CAPACITY_AGENT_KEY",
  registry: "CAPACITY_AGENT_REGISTRY",
  pretty: "CAPACITY_AGENT_PRETTY",
  logLevel: "CAPACITY_AGENT_LOG_LEVEL",
  heartbeat: "CAPACITY_AGENT_HEARTBEAT",
  period: "CAPACITY_AGENT_PERIOD",
  metricsPort: "CAPACITY_AGENT_METRICS_PORT",
  noChain: "CAPACITY_AGENT_NO_CHAIN",
  chainUrl: "CAPACITY_AGENT_CHAIN_URL",
  verifierKey: "CAPACITY_AGENT_VERIFIER_KEY",
  subjectPrefix: "CAPACITY_AGENT_SUBJECT_PREFIX",
};

export function overridesFromEnv(env: NodeJS.ProcessEnv): ConfigOverrides {
  const o: ConfigOverrides = {};
  for (const [k, name] of Object.entries(ENV_VARS) as Array<[Exclude<keyof ConfigOverrides, "natsAuth">, string]>) {
    const v = env[name];
    if (v === undefined || v === "") continue;
    if (k === "pretty" || k === "noChain") o[k] = v === "1" || v.toLowerCase() === "true";
    else (o as Record<string, string>)[k] = v;
  }
  return o;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function intField(v: unknown, field: string, min: number, max: number): number {
  const r = intInRange(v, min, max, { digits: true });
  if (!r.ok) throw new ConfigError(field, r.problem);
  return r.value;
}

function numField(v: unknown, field: string, min: number, max: number): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(field, `expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function sizeField(v: unknown, field: string): number {
  const r = parseSize(v);
  if (!r.ok) throw new ConfigError(field, r.refusal);
  return r.value;
}

function subjectPrefixField(v: unknown, field: string): string {
  const p = strField(v, field);
  if (!SUBJECT_TOKEN_RE.test(p)) throw new ConfigError(field, "expected dot-separated tokens of letters, digits, _ or -");
  return p;
}

/** A tfchain node URL: ws:// or wss:// with a host. */
function hexKeyField(v: unknown, field: string): string {
  if (typeof v !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(v)) throw new ConfigError(field, "expected a 32-byte public key as 0x hex (66 characters), as in a key file's publicKey");
  return v;
}

function chainUrlField(v: unknown, field: string): string {
  try {
    return parseChainUrl(v, field);
  } catch (err) {
    throw new ConfigError(field, `expected a ws:// or wss:// URL of a tfchain node (e.g. ws://127.0.0.1:9944), got ${JSON.stringify(v)}`, { cause: err });
  }
}

function boolField(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new ConfigError(field, "expected true or false");
  return v;
}

function strField(v: unknown, field: string): string {
  if (typeof v !== "string" || v === "") throw new ConfigError(field, "expected a non-empty string");
  return v;
}

function checkKeys(o: Obj, allowed: string[], prefix: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(prefix ? `${prefix}.${k}` : k, `unknown field (known: ${allowed.join(", ")})`);
  }
}

const NATS_URL_RE = /^(nats|tls|ws|wss):\/\/[^\s]+$|^[A-Za-z0-9.\-[\]:]+:\d+$/;

export function parseServers(v: unknown, field: string): string[] {
  const list = typeof v === "string" ? v.split(",").map((s) => s.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError(field, "expected one or more NATS server URLs");
  return list.map((s, i) => {
    if (typeof s !== "string" || !NATS_URL_RE.test(s)) throw new ConfigError(`${field}[${i}]`, `not a NATS server URL: ${JSON.stringify(s)} (e.g. nats://127.0.0.1:4222)`);
    return s;
  });
}

/**
 * Longest usage period: a proof's byte-second totals are uint64, and 4 h keeps a node with up to
 * 1.1 PiB reserved inside that (24 h would overflow above ~194 TiB).
 */
export const MAX_PERIOD_SECONDS = 14_400;

const SUBJECT_TOKEN_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** the `nats` fields of bus/auth.ts BusCredentials */
const CREDENTIAL_FIELDS = ["user", "password", "passwordFile", "token", "tokenFile", "nkeySeedFile", "credsFile", "inboxPrefix", "tls"];

function asConfigError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BusAuthError) throw new ConfigError(err.field, err.message.slice(err.field.length + 2), { cause: err });
    throw err;
  }
}

/** Config file keys of the power policy: the option each sets, and the factor (seconds -> ms). */
const POWER_SECONDS: Record<string, [keyof PowerPolicyOptions, number]> = {
  wakeThreshold: ["wakeThreshold", 1],
  standbyThreshold: ["standbyThreshold", 1],
  minStateSeconds: ["minStateMs", 1000],
  claimQuietSeconds: ["claimQuietMs", 1000],
  periodicWakeSeconds: ["periodicWakeMs", 1000],
  randomWakesPerMonth: ["randomWakesPerMonth", 1],
  checkSeconds: ["checkMs", 1000],
  windowSeconds: ["windowMs", 1000],
};

function configFieldOf(optionField: string): string {
  const name = optionField.replace(/^power\./, "");
  const key = Object.entries(POWER_SECONDS).find(([, [f]]) => f === name)?.[0] ?? name;
  return `power.${key}`;
}

/** Apply a parsed JSON config file onto `c` (validating every field). */
export function applyFile(c: AgentConfig, raw: unknown, source: string): void {
  if (!isObj(raw)) throw new ConfigError(source, "expected a JSON object");
  checkKeys(raw, ["nodeId", "farmId", "twinId", "dataDir", "keyFile", "registryFile", "nats", "subjectPrefix", "power", "capacity", "hardware", "api", "gossip", "usage", "chain", "log", "metrics"], "");
  if (raw.nodeId !== undefined) c.nodeId = intField(raw.nodeId, "nodeId", 1, 0xffffffff);
  if (raw.farmId !== undefined) c.farmId = intField(raw.farmId, "farmId", 1, 0xffffffff);
  if (raw.twinId !== undefined) c.twinId = intField(raw.twinId, "twinId", 1, 0xffffffff);
  if (raw.dataDir !== undefined) c.dataDir = path.resolve(path.dirname(source), strField(raw.dataDir, "dataDir"));
  if (raw.keyFile !== undefined) c.keyFile = path.resolve(path.dirname(source), strField(raw.keyFile, "keyFile"));
  if (raw.registryFile !== undefined) c.registryFile = path.resolve(path.dirname(source), strField(raw.registryFile, "registryFile"));
  if (raw.subjectPrefix !== undefined) {
    c.subjectPrefix = subjectPrefixField(raw.subjectPrefix, "subjectPrefix");
  }
  if (raw.nats !== undefined) {
    if (!isObj(raw.nats)) throw new ConfigError("nats", "expected an object");
    checkKeys(raw.nats, ["servers", "embedded", ...CREDENTIAL_FIELDS], "nats");
    if (raw.nats.servers !== undefined) c.nats.servers = parseServers(raw.nats.servers, "nats.servers");
    if (raw.nats.embedded !== undefined) c.nats.embedded = boolField(raw.nats.embedded, "nats.embedded");
    const creds = Object.fromEntries(Object.entries(raw.nats).filter(([k]) => CREDENTIAL_FIELDS.includes(k)));
    // checked whole once the environment and flags are laid on top (a password may come from CAPACITY_AGENT_NATS_PASSWORD)
    c.nats.credentials = asConfigError(() => parseCredentials(creds, "nats", path.dirname(source), true));
  }
  if (raw.power !== undefined) {
    if (!isObj(raw.power)) throw new ConfigError("power", "expected an object");
    checkKeys(raw.power, ["state", "rented", "manage", "driver", "mac", "publicConfig", "farmerTwinId", "farmerKey", "standbyCommand", "wakeCommand", "wol", "devBootSeconds", ...Object.keys(POWER_SECONDS)], "power");
    if (raw.power.state !== undefined) {
      if (raw.power.state !== "up" && raw.power.state !== "standby") throw new ConfigError("power.state", 'expected "up" or "standby"');
      c.power.state = raw.power.state;
    }
    if (raw.power.rented !== undefined) c.power.rented = boolField(raw.power.rented, "power.rented");
    const pw = raw.power;
    if (pw.manage !== undefined) c.power.manage = boolField(pw.manage, "power.manage");
    if (pw.driver !== undefined) {
      if (pw.driver !== "dev" && pw.driver !== "zos" && pw.driver !== "command") throw new ConfigError("power.driver", 'expected "dev", "zos" or "command"');
      c.power.driver = pw.driver;
    }
    if (pw.mac !== undefined) {
      const mac = strField(pw.mac, "power.mac");
      if (mac && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new ConfigError("power.mac", 'expected a MAC address like "aa:bb:cc:dd:ee:ff"');
      c.power.mac = mac.toLowerCase();
    }
    if (pw.publicConfig !== undefined) c.power.publicConfig = boolField(pw.publicConfig, "power.publicConfig");
    if (pw.farmerTwinId !== undefined) c.power.farmerTwinId = pw.farmerTwinId === null ? null : intField(pw.farmerTwinId, "power.farmerTwinId", 1, 0xffffffff);
    if (pw.farmerKey !== undefined) {
      c.power.farmerKey = pw.farmerKey === null ? null : strField(pw.farmerKey, "power.farmerKey");
      if (c.power.farmerKey !== null && !/^0x[0-9a-fA-F]{64}$/.test(c.power.farmerKey)) throw new ConfigError("power.farmerKey", "expected a 32-byte public key as 0x hex (66 characters), as in a key file's publicKey");
    }
    if (pw.standbyCommand !== undefined) c.power.standbyCommand = strField(pw.standbyCommand, "power.standbyCommand");
    if (pw.wakeCommand !== undefined) c.power.wakeCommand = strField(pw.wakeCommand, "power.wakeCommand");
    if (pw.devBootSeconds !== undefined) c.power.devBootSeconds = intField(pw.devBootSeconds, "power.devBootSeconds", 0, 3600);
    if (pw.wol !== undefined) {
      if (!isObj(pw.wol)) throw new ConfigError("power.wol", "expected an object {address, port}");
      checkKeys(pw.wol, ["address", "port"], "power.wol");
      if (pw.wol.address !== undefined) c.power.wol.address = strField(pw.wol.address, "power.wol.address");
      if (pw.wol.port !== undefined) c.power.wol.port = intField(pw.wol.port, "power.wol.port", 1, 65535);
    }
    for (const [key, [field, scale]] of Object.entries(POWER_SECONDS)) {
      const v = pw[key];
      if (v === undefined) continue;
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new ConfigError(`power.${key}`, "expected a non-negative number");
      c.power.policy[field] = scale === 1 ? v : Math.round(v * scale);
    }
    try {
      parsePowerOptions(c.power.policy);
    } catch (err) {
      if (err instanceof PowerError) throw new ConfigError(err.field ? configFieldOf(err.field) : "power", err.message.replace(/^power\.\w+: /, ""));
      throw err;
    }
  }
  if (raw.capacity !== undefined) {
    const cap = raw.capacity;
    if (!isObj(cap)) throw new ConfigError("capacity", "expected an object");
    checkKeys(cap, ["reservedMemoryFraction", "reservedMemoryMin", "reservedSsd", "reservedCpu", "reservedHdd", "overprovision"], "capacity");
    if (cap.reservedMemoryFraction !== undefined) c.capacity.reservedMemoryFraction = numField(cap.reservedMemoryFraction, "capacity.reservedMemoryFraction", 0, 0.9);
    if (cap.reservedMemoryMin !== undefined) c.capacity.reservedMemoryMin = sizeField(cap.reservedMemoryMin, "capacity.reservedMemoryMin");
    if (cap.reservedSsd !== undefined) c.capacity.reservedSsd = sizeField(cap.reservedSsd, "capacity.reservedSsd");
    if (cap.reservedHdd !== undefined) c.capacity.reservedHdd = sizeField(cap.reservedHdd, "capacity.reservedHdd");
    if (cap.reservedCpu !== undefined) c.capacity.reservedCpu = intField(cap.reservedCpu, "capacity.reservedCpu", 0, 1024);
    if (cap.overprovision !== undefined) {
      if (!isObj(cap.overprovision)) throw new ConfigError("capacity.overprovision", "expected an object of unit -> factor");
      checkKeys(cap.overprovision, [...UNIT_NAMES], "capacity.overprovision");
      for (const u of UNIT_NAMES) {
        const v = cap.overprovision[u];
        if (v === undefined) continue;
        const [lo, hi] = OVERPROVISION_RANGE[u];
        c.capacity.overprovision[u] = numField(v, `capacity.overprovision.${u}`, lo, hi);
      }
    }
  }
  if (raw.hardware !== undefined) {
    if (!isObj(raw.hardware)) throw new ConfigError("hardware", "expected an object");
    c.hardware = raw.hardware;
  }
  if (raw.api !== undefined) {
    if (!isObj(raw.api)) throw new ConfigError("api", "expected an object");
    checkKeys(raw.api, ["maxRequestBytes", "deleteSkewMs", "limits"], "api");
    if (raw.api.maxRequestBytes !== undefined) c.api.maxRequestBytes = intField(raw.api.maxRequestBytes, "api.maxRequestBytes", 1024, 8 * 1024 * 1024);
    if (raw.api.deleteSkewMs !== undefined) c.api.deleteSkewMs = intField(raw.api.deleteSkewMs, "api.deleteSkewMs", 1000, 86_400_000);
    if (raw.api.limits !== undefined) c.api.limits = parseApiLimits(raw.api.limits, (field, message) => new ConfigError(field, message));
  }
  if (raw.gossip !== undefined) {
    if (!isObj(raw.gossip)) throw new ConfigError("gossip", "expected an object");
    const bounds = ["maxPeersPerFarm", "maxPeers", "requestRate", "answersPerSecond", "peersRate", "peersPerSecond"] as const;
    checkKeys(raw.gossip, ["heartbeatSeconds", "scope", ...bounds], "gossip");
    for (const k of bounds) {
      if (raw.gossip[k] !== undefined) c.gossip[k] = intField(raw.gossip[k], `gossip.${k}`, 1, 10_000_000);
    }
    if (raw.gossip.heartbeatSeconds !== undefined) c.gossip.heartbeatSeconds = numField(raw.gossip.heartbeatSeconds, "gossip.heartbeatSeconds", 0.1, 3600);
    if (raw.gossip.scope !== undefined) {
      if (raw.gossip.scope !== "farm" && raw.gossip.scope !== "grid") throw new ConfigError("gossip.scope", 'expected "farm" or "grid"');
      c.gossip.scope = raw.gossip.scope;
    }
  }
  if (raw.usage !== undefined) {
    if (!isObj(raw.usage)) throw new ConfigError("usage", "expected an object");
    checkKeys(raw.usage, ["periodSeconds"], "usage");
    if (raw.usage.periodSeconds !== undefined) c.usage.periodSeconds = intField(raw.usage.periodSeconds, "usage.periodSeconds", 1, MAX_PERIOD_SECONDS);
  }
  if (raw.chain !== undefined) {
    if (!isObj(raw.chain)) throw new ConfigError("chain", "expected an object");
    checkKeys(raw.chain, ["enabled", "publicKey", "registerWaitMs", "lookupsPerSecond", "url", "connectTimeoutMs", "verifierKey"], "chain");
    if (raw.chain.verifierKey !== undefined) c.chain.verifierKey = raw.chain.verifierKey === null ? null : hexKeyField(raw.chain.verifierKey, "chain.verifierKey");
    if (raw.chain.connectTimeoutMs !== undefined) c.chain.connectTimeoutMs = intField(raw.chain.connectTimeoutMs, "chain.connectTimeoutMs", 1, 3_600_000);
    if (raw.chain.url !== undefined) c.chain.url = raw.chain.url === null ? null : chainUrlField(raw.chain.url, "chain.url");
    if (raw.chain.registerWaitMs !== undefined) c.chain.registerWaitMs = intField(raw.chain.registerWaitMs, "chain.registerWaitMs", 0, 3_600_000);
    if (raw.chain.lookupsPerSecond !== undefined) c.chain.lookupsPerSecond = intField(raw.chain.lookupsPerSecond, "chain.lookupsPerSecond", 1, 1_000_000);
    if (raw.chain.enabled !== undefined) c.chain.enabled = boolField(raw.chain.enabled, "chain.enabled");
    if (raw.chain.publicKey !== undefined) {
      if (raw.chain.publicKey !== null && (typeof raw.chain.publicKey !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(raw.chain.publicKey))) {
        throw new ConfigError("chain.publicKey", "expected a 32-byte public key as 0x hex (66 characters) or null");
      }
      c.chain.publicKey = raw.chain.publicKey;
    }
  }
  if (raw.metrics !== undefined) {
    if (!isObj(raw.metrics)) throw new ConfigError("metrics", "expected an object");
    checkKeys(raw.metrics, ["host", "port"], "metrics");
    if (raw.metrics.host !== undefined) c.metrics.host = strField(raw.metrics.host, "metrics.host");
    if (raw.metrics.port !== undefined) c.metrics.port = raw.metrics.port === null ? null : intField(raw.metrics.port, "metrics.port", 0, 65535);
  }
  if (raw.log !== undefined) {
    if (!isObj(raw.log)) throw new ConfigError("log", "expected an object");
    checkKeys(raw.log, ["level", "pretty"], "log");
    if (raw.log.level !== undefined) {
      if (typeof raw.log.level !== "string" || !LOG_LEVELS.includes(raw.log.level)) throw new ConfigError("log.level", `expected one of ${LOG_LEVELS.join(", ")}`);
      c.log.level = raw.log.level;
    }
    if (raw.log.pretty !== undefined) c.log.pretty = boolField(raw.log.pretty, "log.pretty");
  }
}

/**
 * Build the configuration: defaults, then the file (from flags, else the environment), then the
 * environment, then the flags. `explicitNats` tells whether a NATS URL was given anywhere (if so,
 * no embedded server is started).
 */
export function loadConfig(flags: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const c = defaultConfig();
  const fromEnv = overridesFromEnv(env);
  const configFile = flags.config ?? fromEnv.config;
  let fileSetData = false;
  let fileSetKey = false;
  let fileSetRegistry = false;
  let twinSet = false;
  let nodeSet = false;
  if (configFile) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(configFile, "utf8"));
    } catch (err) {
      throw new ConfigError("--config", `cannot read ${configFile} as JSON: ${(err as Error).message}`, { cause: err });
    }
    applyFile(c, raw, path.resolve(configFile));
    const r = raw as Obj;
    fileSetData = r.dataDir !== undefined;
    fileSetKey = r.keyFile !== undefined;
    fileSetRegistry = r.registryFile !== undefined;
    twinSet = r.twinId !== undefined;
    nodeSet = r.nodeId !== undefined;
    // servers named in the file mean "use these" unless the file also asks for the fallback
    if (isObj(r.nats) && r.nats.servers !== undefined && r.nats.embedded === undefined) c.nats.embedded = false;
  }
  for (const [source, o] of [["env", fromEnv], ["flag", flags]] as const) {
    const name = (k: keyof typeof ENV_VARS, flag: string): string => (source === "env" ? ENV_VARS[k] : flag);
    if (o.data !== undefined) {
      c.dataDir = path.resolve(o.data);
      fileSetData = true;
    }
    if (o.nodeId !== undefined) {
      c.nodeId = intField(o.nodeId, name("nodeId", "--node-id"), 1, 0xffffffff);
      nodeSet = true;
    }
    if (o.farmId !== undefined) c.farmId = intField(o.farmId, name("farmId", "--farm-id"), 1, 0xffffffff);
    if (o.twinId !== undefined) {
      c.twinId = intField(o.twinId, name("twinId", "--twin-id"), 1, 0xffffffff);
      twinSet = true;
    }
    if (o.nats !== undefined) {
      c.nats.servers = parseServers(o.nats, name("nats", "--nats"));
      c.nats.embedded = false;
    }
    if (o.key !== undefined) {
      c.keyFile = path.resolve(o.key);
      fileSetKey = true;
    }
    if (o.registry !== undefined) {
      c.registryFile = path.resolve(o.registry);
      fileSetRegistry = true;
    }
    if (o.pretty !== undefined) c.log.pretty = o.pretty;
    if (o.logLevel !== undefined) {
      if (!LOG_LEVELS.includes(o.logLevel)) throw new ConfigError(name("logLevel", "--log-level"), `expected one of ${LOG_LEVELS.join(", ")}`);
      c.log.level = o.logLevel;
    }
    if (o.heartbeat !== undefined) c.gossip.heartbeatSeconds = numField(o.heartbeat, name("heartbeat", "--heartbeat"), 0.1, 3600);
    if (o.period !== undefined) c.usage.periodSeconds = intField(o.period, name("period", "--period"), 1, MAX_PERIOD_SECONDS);
    if (o.metricsPort !== undefined) c.metrics.port = intField(o.metricsPort, name("metricsPort", "--metrics-port"), 0, 65535);
    if (o.noChain) c.chain.enabled = false;
    if (o.chainUrl !== undefined) c.chain.url = chainUrlField(o.chainUrl, name("chainUrl", "--chain-url"));
    if (o.verifierKey !== undefined) c.chain.verifierKey = hexKeyField(o.verifierKey, name("verifierKey", "--verifier-key"));
    if (o.subjectPrefix !== undefined) c.subjectPrefix = subjectPrefixField(o.subjectPrefix, name("subjectPrefix", "subjectPrefix"));
  }
  if (!c.chain.enabled && c.chain.url !== null) {
    throw new ConfigError("chain.url", "a tfchain URL is set (chain.url, --chain-url or CAPACITY_AGENT_CHAIN_URL) but the chain is off (chain.enabled false or --no-chain): drop one of them");
  }
  // credentials: the file's, then the environment's and the flags' (a source naming a method replaces the method below it)
  c.nats.credentials = asConfigError(() => {
    const merged = mergeCredentials(c.nats.credentials, credentialsFromFlags(flags.natsAuth ?? {}, env, false));
    checkCredentials(merged, "nats");
    return merged;
  });
  // a secured bus is never replaced by an open embedded server
  if (hasCredentials(c.nats.credentials)) c.nats.embedded = false;
  // the node's twin defaults to the node id when nothing set it
  if (!twinSet) c.twinId = c.nodeId;
  c.idsExplicit = { nodeId: nodeSet, twinId: twinSet };
  if (fileSetData) {
    if (!fileSetKey) c.keyFile = path.join(c.dataDir, "node-key.json");
    if (!fileSetRegistry) c.registryFile = path.join(c.dataDir, "registry.json");
  }
  c.devIdentity = !fileSetKey && !fileSetRegistry;
  return c;
}
