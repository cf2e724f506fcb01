import * as fs from "node:fs";
import * as path from "node:path";
import { AgentError } from "../errors";

/**
 * NATS credentials and TLS for the agent, the chain stand-in and client commands
 * (docs/bus-security.md). One way to authenticate at a time: user and password, a token, an nkey
 * seed file, or a creds file (a user JWT and its seed, decentralised auth). TLS is independent:
 * a CA to verify the server, and a client certificate and key when the server asks for one.
 * Secrets are read from files (or the config file / environment), never from flags, and every
 * secret read is handed to the logger's redaction (agent/log/redact.ts) so it reaches no log line.
 */
export interface BusCredentials {
  user?: string;
  password?: string;
  passwordFile?: string;
  token?: string;
  tokenFile?: string;
  /** a file holding a user nkey seed (SU...), e.g. written by scripts/bus-config */
  nkeySeedFile?: string;
  /** a NATS creds file (user JWT and nkey seed), as nsc writes them */
  credsFile?: string;
  /**
   * the prefix of this client's reply inboxes (default `_INBOX`): with per-user permissions each
   * user may subscribe only to its own `_INBOX.<user>.>`, so nobody reads another's replies
   */
  inboxPrefix?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** where each field was given, for errors (`nkeySeedFile` -> `--nats-nkey`); default `nats.<field>` */
  origins?: Record<string, string>;
}

export type AuthMethod = "user" | "token" | "nkey" | "creds";

export class BusAuthError extends AgentError<"nats_credentials_invalid"> {
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("nats_credentials_invalid", `${field}: ${message}`, options);
  }
}

/** Flags of every command that connects to NATS; each also reads CAPACITY_AGENT_<FLAG> (e.g. CAPACITY_AGENT_NATS_NKEY). */
export const NATS_AUTH_FLAGS = {
  "nats-user": { type: "string" as const },
  "nats-password-file": { type: "string" as const },
  "nats-token-file": { type: "string" as const },
  "nats-nkey": { type: "string" as const },
  "nats-creds": { type: "string" as const },
  "nats-ca": { type: "string" as const },
  "nats-cert": { type: "string" as const },
  "nats-key": { type: "string" as const },
  "nats-inbox-prefix": { type: "string" as const },
};

type FlagName = keyof typeof NATS_AUTH_FLAGS;

const FLAG_FIELD: Record<FlagName, string> = {
  "nats-user": "user",
  "nats-password-file": "passwordFile",
  "nats-token-file": "tokenFile",
  "nats-nkey": "nkeySeedFile",
  "nats-creds": "credsFile",
  "nats-ca": "tls.caFile",
  "nats-cert": "tls.certFile",
  "nats-key": "tls.keyFile",
  "nats-inbox-prefix": "inboxPrefix",
};

/** the environment variable of a flag: --nats-nkey -> CAPACITY_AGENT_NATS_NKEY */
export function envVarOf(flag: string): string {
  return `CAPACITY_AGENT_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** secrets given as values: only in the environment (or the config file), never as flags (ps shows flags) */
export const SECRET_ENV_VARS = { password: "CAPACITY_AGENT_NATS_PASSWORD", token: "CAPACITY_AGENT_NATS_TOKEN" } as const;

const METHOD_FIELDS: Record<AuthMethod, Array<keyof BusCredentials>> = {
  user: ["user", "password", "passwordFile"],
  token: ["token", "tokenFile"],
  nkey: ["nkeySeedFile"],
  creds: ["credsFile"],
};

function methodOf(field: keyof BusCredentials): AuthMethod | null {
  for (const [m, fields] of Object.entries(METHOD_FIELDS) as Array<[AuthMethod, Array<keyof BusCredentials>]>) if (fields.includes(field)) return m;
  return null;
}

const INBOX_RE = /^_INBOX(\.[A-Za-z0-9_-]+)*$/;

/**
 * `base` with `over` laid on top. A source that names another authentication method (user, token,
 * nkey, creds) replaces the method of the sources below it; fields of the same method, TLS files
 * and the inbox prefix are replaced one by one.
 */
export function mergeCredentials(base: BusCredentials, over: BusCredentials): BusCredentials {
  const overMethods = new Set((Object.keys(over) as Array<keyof BusCredentials>).map(methodOf).filter((m): m is AuthMethod => m !== null));
  const out: BusCredentials = {};
  for (const [k, v] of Object.entries(base) as Array<[keyof BusCredentials, unknown]>) {
    const m = methodOf(k);
    // another method above replaces this one; the same method merges field by field (a user from a flag, its password from the environment)
    if (m !== null && overMethods.size > 0 && !overMethods.has(m)) continue;
    // a password (token) from above replaces a password file (token file) from below, and the other way round
    if (((k === "password" || k === "passwordFile") && (over.password !== undefined || over.passwordFile !== undefined)) || ((k === "token" || k === "tokenFile") && (over.token !== undefined || over.tokenFile !== undefined))) continue;
    if (k !== "origins") (out as Record<string, unknown>)[k] = v;
  }
  for (const [k, v] of Object.entries(over) as Array<[keyof BusCredentials, unknown]>) {
    if (k === "tls") out.tls = { ...(out.tls ?? {}), ...(v as BusCredentials["tls"]) };
    else if (k !== "origins") (out as Record<string, unknown>)[k] = v;
  }
  const origins = { ...(base.origins ?? {}), ...(over.origins ?? {}) };
  if (Object.keys(origins).length > 0) out.origins = origins;
  return out;
}

/**
 * Validate a `nats` credentials object (from a config file: paths relative to `baseDir`).
 * `prefix` names the fields in errors (`nats.nkeySeedFile: ...`).
 */
export function parseCredentials(raw: Record<string, unknown>, prefix: string, baseDir: string, partial = false): BusCredentials {
  const c: BusCredentials = {};
  const str = (k: string): string => {
    const v = raw[k];
    if (typeof v !== "string" || v === "") throw new BusAuthError(`${prefix}.${k}`, "expected a non-empty string");
    return v;
  };
  const file = (v: string): string => path.resolve(baseDir, v);
  if (raw.user !== undefined) c.user = str("user");
  if (raw.password !== undefined) c.password = str("password");
  if (raw.passwordFile !== undefined) c.passwordFile = file(str("passwordFile"));
  if (raw.token !== undefined) c.token = str("token");
  if (raw.tokenFile !== undefined) c.tokenFile = file(str("tokenFile"));
  if (raw.nkeySeedFile !== undefined) c.nkeySeedFile = file(str("nkeySeedFile"));
  if (raw.credsFile !== undefined) c.credsFile = file(str("credsFile"));
  if (raw.inboxPrefix !== undefined) c.inboxPrefix = str("inboxPrefix");
  if (raw.tls !== undefined) {
    const t = raw.tls;
    if (t === null || typeof t !== "object" || Array.isArray(t)) throw new BusAuthError(`${prefix}.tls`, "expected an object {caFile, certFile, keyFile}");
    const tls = t as Record<string, unknown>;
    for (const k of Object.keys(tls)) if (!["caFile", "certFile", "keyFile"].includes(k)) throw new BusAuthError(`${prefix}.tls.${k}`, "unknown field (known: caFile, certFile, keyFile)");
    c.tls = {};
    for (const k of ["caFile", "certFile", "keyFile"] as const) {
      const v = tls[k];
      if (v === undefined) continue;
      if (typeof v !== "string" || v === "") throw new BusAuthError(`${prefix}.tls.${k}`, "expected a file path");
      c.tls[k] = file(v);
    }
  }
  // one source of several (flags, environment) may hold half of a pair: the merge is checked whole
  if (partial) {
    if (c.inboxPrefix !== undefined && !INBOX_RE.test(c.inboxPrefix)) throw new BusAuthError(`${prefix}.inboxPrefix`, `expected _INBOX or _INBOX.<token>..., got ${JSON.stringify(c.inboxPrefix)}`);
  } else checkCredentials(c, prefix);
  return c;
}

/**
 * Credentials from flags (`values` of a command) and the environment; flags win. Paths relative to
 * the working directory. `check` false: the caller lays them on a config file's and checks the whole.
 */
export function credentialsFromFlags(values: Record<string, unknown>, env: NodeJS.ProcessEnv, check = true): BusCredentials {
  const fromSource = (get: (flag: FlagName) => string | undefined, source: "env" | "flag"): BusCredentials => {
    const raw: Record<string, unknown> = {};
    for (const flag of Object.keys(NATS_AUTH_FLAGS) as FlagName[]) {
      const v = get(flag);
      if (v === undefined) continue;
      const field = FLAG_FIELD[flag];
      if (field.startsWith("tls.")) raw.tls = { ...((raw.tls as object | undefined) ?? {}), [field.slice(4)]: v };
      else raw[field] = v;
    }
    if (source === "env") {
      if (env[SECRET_ENV_VARS.password]) raw.password = env[SECRET_ENV_VARS.password];
      if (env[SECRET_ENV_VARS.token]) raw.token = env[SECRET_ENV_VARS.token];
    }
    try {
      const c = parseCredentials(raw, source === "env" ? "environment" : "flags", process.cwd(), true);
      const origins: Record<string, string> = {};
      for (const k of Object.keys(raw)) {
        if (k === "tls") for (const t of Object.keys(raw.tls as object)) origins[`tls.${t}`] = renameField(`x.tls.${t}`, source);
        else origins[k] = renameField(`x.${k}`, source);
      }
      return Object.keys(origins).length > 0 ? { ...c, origins } : c;
    } catch (err) {
      if (err instanceof BusAuthError) throw new BusAuthError(renameField(err.field, source), err.message.slice(err.field.length + 2));
      throw err;
    }
  };
  const fromEnv = fromSource((flag) => env[envVarOf(flag)] || undefined, "env");
  const fromFlags = fromSource((flag) => {
    const v = values[flag];
    return typeof v === "string" ? v : undefined;
  }, "flag");
  const merged = mergeCredentials(fromEnv, fromFlags);
  if (check) checkCredentials(merged, "nats");
  return merged;
}

/** `flags.tls.caFile` -> `--nats-ca`, `environment.nkeySeedFile` -> `CAPACITY_AGENT_NATS_NKEY` */
function renameField(field: string, source: "env" | "flag"): string {
  const rest = field.slice(field.indexOf(".") + 1);
  if (rest === "password" || rest === "token") return SECRET_ENV_VARS[rest];
  const flag = (Object.keys(FLAG_FIELD) as FlagName[]).find((f) => FLAG_FIELD[f] === rest);
  if (!flag) return field;
  return source === "env" ? envVarOf(flag) : `--${flag}`;
}

/** One method at a time; a user needs a password and the other way round; a client certificate needs its key. */
export function checkCredentials(c: BusCredentials, prefix: string): void {
  const methods = new Set((Object.keys(c) as Array<keyof BusCredentials>).map(methodOf).filter((m): m is AuthMethod => m !== null));
  if (methods.size > 1) throw new BusAuthError(prefix, `give one way to authenticate, not ${[...methods].join(" and ")} (user and password, a token, an nkey seed file, or a creds file)`);
  if (c.password !== undefined && c.passwordFile !== undefined) throw new BusAuthError(`${prefix}.password`, "give the password or a passwordFile, not both");
  if (c.token !== undefined && c.tokenFile !== undefined) throw new BusAuthError(`${prefix}.token`, "give the token or a tokenFile, not both");
  if (methods.has("user") && c.user === undefined) throw new BusAuthError(`${prefix}.user`, "a password needs a user name (user, --nats-user)");
  if (c.user !== undefined && c.password === undefined && c.passwordFile === undefined) throw new BusAuthError(`${prefix}.password`, "the user needs a password (passwordFile, --nats-password-file, or CAPACITY_AGENT_NATS_PASSWORD)");
  if (c.tls && (c.tls.certFile === undefined) !== (c.tls.keyFile === undefined)) throw new BusAuthError(`${prefix}.tls`, "a client certificate (certFile, --nats-cert) and its key (keyFile, --nats-key) go together");
  if (c.inboxPrefix !== undefined && !INBOX_RE.test(c.inboxPrefix)) throw new BusAuthError(`${prefix}.inboxPrefix`, `expected _INBOX or _INBOX.<token>..., got ${JSON.stringify(c.inboxPrefix)}`);
}

/** True when any credential, TLS or inbox option is set. */
export function hasCredentials(c: BusCredentials | undefined): boolean {
  return c !== undefined && Object.keys(c).some((k) => k !== "origins");
}

/** What nats.js connect() takes, and the secrets that must never be printed. */
export interface LoadedCredentials {
  options: {
    user?: string;
    pass?: string;
    token?: string;
    authenticator?: unknown;
    inboxPrefix?: string;
    tls?: { caFile?: string; certFile?: string; keyFile?: string };
  };
  secrets: string[];
  /** the method used, for logs (never the secret): user, token, nkey, creds or none */
  method: AuthMethod | "none";
  /** the nkey public key (U...) when authenticating with an nkey or creds */
  publicKey?: string;
}

function readSecretFile(file: string, field: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new BusAuthError(field, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return text;
}

const SEED_RE = /\bSU[A-Z2-7]{56}\b/;
const JWT_RE = /-----BEGIN NATS USER JWT-----\s*\n\s*([A-Za-z0-9_\-.=]+)\s*\n/;

/**
 * Read the credential files and build the connect options. Errors name the field and the file
 * and never quote a file's content.
 */
export function loadCredentials(c: BusCredentials | undefined, prefix = "nats"): LoadedCredentials {
  const out: LoadedCredentials = { options: {}, secrets: [], method: "none" };
  if (!c) return out;
  const field = (k: string): string => c.origins?.[k] ?? `${prefix}.${k}`;
  const { nkeys, nkeyAuthenticator, credsAuthenticator } = require("@nats-io/transport-node") as typeof import("@nats-io/transport-node");
  if (c.user !== undefined) {
    const pass = c.password ?? readSecretFile(c.passwordFile as string, field("passwordFile")).trim();
    if (pass === "") throw new BusAuthError(field("passwordFile"), `${c.passwordFile} is empty`);
    out.options.user = c.user;
    out.options.pass = pass;
    out.secrets.push(pass);
    out.method = "user";
  } else if (c.token !== undefined || c.tokenFile !== undefined) {
    const token = c.token ?? readSecretFile(c.tokenFile as string, field("tokenFile")).trim();
    if (token === "") throw new BusAuthError(field("tokenFile"), `${c.tokenFile} is empty`);
    out.options.token = token;
    out.secrets.push(token);
    out.method = "token";
  } else if (c.nkeySeedFile !== undefined) {
    const text = readSecretFile(c.nkeySeedFile, field("nkeySeedFile"));
    const m = SEED_RE.exec(text);
    if (!m) throw new BusAuthError(field("nkeySeedFile"), `${c.nkeySeedFile} holds no user nkey seed (a line SU...; scripts/bus-config writes them)`);
    const seed = new TextEncoder().encode(m[0]);
    try {
      out.publicKey = nkeys.fromSeed(seed).getPublicKey();
    } catch (err) {
      throw new BusAuthError(field("nkeySeedFile"), `${c.nkeySeedFile} holds no valid nkey seed`, { cause: err });
    }
    out.options.authenticator = nkeyAuthenticator(seed);
    out.secrets.push(m[0]);
    out.method = "nkey";
  } else if (c.credsFile !== undefined) {
    const text = readSecretFile(c.credsFile, field("credsFile"));
    const jwt = JWT_RE.exec(text);
    const seed = SEED_RE.exec(text);
    if (!jwt || !seed) throw new BusAuthError(field("credsFile"), `${c.credsFile} is not a NATS creds file (a USER JWT block and a USER NKEY SEED block)`);
    try {
      out.publicKey = nkeys.fromSeed(new TextEncoder().encode(seed[0])).getPublicKey();
    } catch (err) {
      throw new BusAuthError(field("credsFile"), `${c.credsFile} holds no valid nkey seed`, { cause: err });
    }
    out.options.authenticator = credsAuthenticator(new TextEncoder().encode(text));
    out.secrets.push(seed[0], jwt[1]);
    out.method = "creds";
  }
  if (c.tls) {
    for (const k of ["caFile", "certFile", "keyFile"] as const) {
      const f = c.tls[k];
      if (f === undefined) continue;
      try {
        fs.accessSync(f, fs.constants.R_OK);
      } catch (err) {
        throw new BusAuthError(field(`tls.${k}`), `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
    }
    out.options.tls = { ...c.tls };
  }
  if (c.inboxPrefix !== undefined) out.options.inboxPrefix = c.inboxPrefix;
  return out;
}

/** The reply inbox prefix of a connection (undefined: nats.js's `_INBOX`), for inboxes made by hand. */
export function inboxPrefixOf(nc: object): string | undefined {
  return (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
}
