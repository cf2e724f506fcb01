import type pino from "pino";
import { redactValue } from "./redact";
import { formatAmount, formatBytes, formatUnits } from "../capacity/size";
import type { Units } from "../capacity/units";

/** pino loads with the first logger made, not with the module graph (commands that log nothing start faster). */
function pinoLib(): typeof pino {
  return (require("pino") as { default: typeof pino }).default;
}

export type Logger = pino.Logger;

export interface LogOptions {
  /** pino level: fatal, error, warn, info, debug, trace, silent (default info) */
  level: string;
  /** human-readable lines instead of JSON (for people at a terminal) */
  pretty: boolean;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/**
 * The root logger: pino JSON on stdout (or pretty lines with --pretty). Modules take a child
 * `{module: "<name>"}` and log constant messages with a context object carrying `event`.
 * Every context object is redacted (agent/log/redact.ts): URL credentials and the configured
 * `secrets` (e.g. from secretsOf(natsServers)) never reach a log line.
 */
export function createLogger(options: LogOptions, destination?: pino.DestinationStream, secrets: readonly string[] = []): Logger {
  const pino = pinoLib();
  const base = {
    level: options.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (obj: Record<string, unknown>) => redactValue(obj, secrets) as Record<string, unknown> },
  };
  if (options.pretty && !destination) {
    // in this thread (not a transport worker) so that the prettifiers, functions, can be passed
    const pretty = require("pino-pretty") as (o: Record<string, unknown>) => pino.DestinationStream;
    return oneModuleKey(pino(base, pretty({ colorize: process.stdout.isTTY, translateTime: "SYS:standard", ignore: "pid", sync: true, customPrettifiers: PRETTIFIERS })));
  }
  return oneModuleKey(pino(base, destination ?? pino.destination({ dest: 1, sync: true })));
}

const UNIT_KEYS = ["total", "reserved", "allocatable", "reservable", "used", "free", "units"];
const TIME_KEYS = ["periodStart", "periodEnd", "periodStartMs", "periodEndMs", "meteredUntilMs", "timestampMs", "acceptedMs", "createdMs", "updatedMs", "sinceMs"];

function isUnits(v: unknown): v is Units {
  return typeof v === "object" && v !== null && typeof (v as Units).cru === "number" && typeof (v as Units).mru === "number";
}

/**
 * `--pretty` is for people: sizes in GiB (`requested 60 GiB` for unit sru), capacity as one line,
 * epoch milliseconds as ISO times. JSON logs keep the raw numbers.
 */
export const PRETTIFIERS: Record<string, (value: unknown, key: string, log: Record<string, unknown>) => string> = Object.fromEntries([
  ...UNIT_KEYS.map((k) => [k, (v: unknown, _k: string, log: Record<string, unknown>) => (isUnits(v) ? formatUnits(v) : typeof v === "number" && typeof log.unit === "string" ? formatAmount(log.unit, v) : JSON.stringify(v))]),
  ["requested", (v: unknown, _k: string, log: Record<string, unknown>) => (typeof v === "number" && typeof log.unit === "string" ? formatAmount(log.unit, v) : JSON.stringify(v))],
  ["disks", (v: unknown) => (Array.isArray(v) ? v.map((d: { name?: string; class?: string; sizeBytes?: number }) => `${d.name} ${String(d.class ?? "?").toUpperCase()} ${typeof d.sizeBytes === "number" ? formatBytes(d.sizeBytes) : "?"}`).join(", ") : JSON.stringify(v))],
  ...TIME_KEYS.map((k) => [k, (v: unknown) => (typeof v === "number" && v > 1e11 && v < 8.64e15 ? new Date(v).toISOString() : JSON.stringify(v))]),
]);

/** the logger a `{module}` child was made from (inherited by the child's own children) */
const BEFORE_MODULE = Symbol("beforeModule");
type ModuleAware = Logger & { [BEFORE_MODULE]?: Logger };

/**
 * pino appends child bindings, so `agentLog.child({module: "api"})` would write the key twice
 * (`"module":"agent","module":"api"`). A `{module}` child of a module logger is made instead from
 * the logger before the first module (keeping any other bindings added since): one `module` key.
 * Children inherit the overridden `child` (pino makes them with Object.create).
 */
function oneModuleKey(root: Logger): Logger {
  const plainChild = root.child as unknown as (this: Logger, bindings: pino.Bindings, opts?: pino.ChildLoggerOptions) => Logger;
  const child = function (this: ModuleAware, bindings: pino.Bindings, opts?: pino.ChildLoggerOptions): Logger {
    const before = this[BEFORE_MODULE];
    if (bindings && "module" in bindings && before) {
      const had = before.bindings();
      const extra: pino.Bindings = {};
      for (const [k, v] of Object.entries(this.bindings())) if (k !== "module" && !(k in had)) extra[k] = v;
      const c = plainChild.call(before, { ...extra, ...bindings }, opts) as ModuleAware;
      if (opts?.level === undefined && c.level !== this.level) c.level = this.level;
      c[BEFORE_MODULE] = before;
      return c;
    }
    const c = plainChild.call(this, bindings, opts) as ModuleAware;
    if (bindings && "module" in bindings && !before) c[BEFORE_MODULE] = this;
    return c;
  };
  (root as unknown as { child: typeof child }).child = child;
  return root;
}

/** A logger that drops everything, for pure tests and tools. */
export function silentLogger(): Logger {
  return pinoLib()({ level: "silent" });
}
