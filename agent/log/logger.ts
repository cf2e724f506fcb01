import pino from "pino";
import { redactValue } from "./redact";

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
  const base = {
    level: options.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (obj: Record<string, unknown>) => redactValue(obj, secrets) as Record<string, unknown> },
  };
  if (options.pretty && !destination) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: process.stdout.isTTY, translateTime: "SYS:standard", ignore: "pid" } } });
  }
  return pino(base, destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything, for pure tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
