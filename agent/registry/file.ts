import * as fs from "node:fs";
import { writePrivateFile } from "../store/files";
import { parsePublicKey, type SchemeName } from "../identity/keys";
import type { NodeRecord, Registry, TwinRecord } from "./types";
import { AgentError } from "../errors";

/** invalid_registry: the file or a field in it is wrong; already_registered: the id is bound to another key. */
export type RegistryErrorCode = "invalid_registry" | "already_registered";

export class RegistryError extends AgentError<RegistryErrorCode> {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown; code?: RegistryErrorCode }) {
    super(options?.code ?? "invalid_registry", `${field}: ${message}`, { cause: options?.cause });
    this.name = "RegistryError";
    this.field = field;
  }
}

export interface RegistryFileJson {
  twins?: Array<{ id: number; publicKey: string; scheme?: SchemeName }>;
  nodes?: Array<{ id: number; farmId: number; twinId?: number; publicKey: string; scheme?: SchemeName }>;
}

function id(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > 0xffffffff) {
    throw new RegistryError(field, "expected an integer id from 1 to 4294967295");
  }
  return v;
}

function scheme(v: unknown, field: string): SchemeName {
  if (v === undefined) return "ed25519";
  if (v !== "ed25519" && v !== "sr25519") throw new RegistryError(field, 'expected "ed25519" or "sr25519"');
  return v;
}

function key(v: unknown, field: string): Uint8Array {
  try {
    return parsePublicKey(v, field);
  } catch {
    throw new RegistryError(field, "expected a 32-byte public key as 0x hex");
  }
}

/** Parse and validate the registry file format; errors name the bad field. */
export function parseRegistry(raw: unknown, source = "registry"): { twins: Map<number, TwinRecord>; nodes: Map<number, NodeRecord> } {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new RegistryError(source, "expected an object with twins and nodes");
  const r = raw as Record<string, unknown>;
  const twins = new Map<number, TwinRecord>();
  const nodes = new Map<number, NodeRecord>();
  for (const [name, list] of [["twins", r.twins], ["nodes", r.nodes]] as const) {
    if (list !== undefined && !Array.isArray(list)) throw new RegistryError(`${source}.${name}`, "expected a list");
  }
  ((r.twins as unknown[]) ?? []).forEach((t, i) => {
    const f = `${source}.twins[${i}]`;
    if (t === null || typeof t !== "object") throw new RegistryError(f, "expected an object");
    const o = t as Record<string, unknown>;
    const rec: TwinRecord = { id: id(o.id, `${f}.id`), publicKey: key(o.publicKey, `${f}.publicKey`), scheme: scheme(o.scheme, `${f}.scheme`) };
    if (twins.has(rec.id)) throw new RegistryError(`${f}.id`, `twin ${rec.id} is listed twice`);
    twins.set(rec.id, rec);
  });
  ((r.nodes as unknown[]) ?? []).forEach((n, i) => {
    const f = `${source}.nodes[${i}]`;
    if (n === null || typeof n !== "object") throw new RegistryError(f, "expected an object");
    const o = n as Record<string, unknown>;
    const rec: NodeRecord = {
      id: id(o.id, `${f}.id`),
      farmId: id(o.farmId, `${f}.farmId`),
      twinId: o.twinId === undefined ? 0 : id(o.twinId, `${f}.twinId`),
      publicKey: key(o.publicKey, `${f}.publicKey`),
      scheme: scheme(o.scheme, `${f}.scheme`),
    };
    if (nodes.has(rec.id)) throw new RegistryError(`${f}.id`, `node ${rec.id} is listed twice`);
    nodes.set(rec.id, rec);
  });
  return { twins, nodes };
}

/**
 * The JSON registry file. It is re-read when its modification time changes (checked at most
 * once per `recheckMs` on lookups), so twins added to the file are known without a restart. A file
 * that becomes invalid keeps the last good contents and reports the error through `onError`.
 */
export class FileRegistry implements Registry {
  private twins = new Map<number, TwinRecord>();
  private nodes = new Map<number, NodeRecord>();
  private mtimeMs = -1;
  private checkedAt = 0;

  constructor(
    private readonly file: string,
    private readonly options: { recheckMs?: number; onError?: (err: RegistryError) => void; now?: () => number } = {},
  ) {
    this.load(true);
  }

  private load(strict: boolean): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch (err) {
      const e = new RegistryError(this.file, "registry file cannot be read", { cause: err });
      if (strict) throw e;
      this.options.onError?.(e);
      return;
    }
    if (st.mtimeMs === this.mtimeMs) return;
    try {
      const parsed = parseRegistry(JSON.parse(fs.readFileSync(this.file, "utf8")), this.file);
      this.twins = parsed.twins;
      this.nodes = parsed.nodes;
      this.mtimeMs = st.mtimeMs;
    } catch (err) {
      const e = err instanceof RegistryError ? err : new RegistryError(this.file, "registry file is not valid JSON", { cause: err });
      if (strict) throw e;
      this.mtimeMs = st.mtimeMs;
      this.options.onError?.(e);
    }
  }

  private maybeReload(): void {
    const now = (this.options.now ?? Date.now)();
    if (now - this.checkedAt < (this.options.recheckMs ?? 1000)) return;
    this.checkedAt = now;
    this.load(false);
  }

  async twin(id: number): Promise<TwinRecord | undefined> {
    let t = this.twins.get(id);
    if (!t) {
      this.maybeReload();
      t = this.twins.get(id);
    }
    return t;
  }

  async node(id: number): Promise<NodeRecord | undefined> {
    let n = this.nodes.get(id);
    if (!n) {
      this.maybeReload();
      n = this.nodes.get(id);
    }
    return n;
  }
}

export interface RegistryEntry {
  kind: "twin" | "node";
  id: number;
  publicKey: string;
  scheme: SchemeName;
  farmId?: number;
  twinId?: number;
}

/**
 * Add an entry to a registry file (used by `capacity-agent registry add` and dev setup). Adding
 * what is already there changes nothing. An id already bound to another key (or, for a node,
 * another farm or twin) is refused with `already_registered` unless `force` is set, because
 * replacing it silently hands the id to someone else. Errors name the file. `replaceKey` (the
 * chain assigned this key's node the id): the entry replaces the key's other node entries.
 */
export function upsertRegistryFile(file: string, entry: RegistryEntry, options: { force?: boolean; replaceKey?: boolean } = {}): void {
  let data: RegistryFileJson = { twins: [], nodes: [] };
  if (fs.existsSync(file)) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (err) {
      throw new RegistryError(file, `registry file is not valid JSON (${(err as Error).message}); fix or remove it`, { cause: err });
    }
    parseRegistry(raw, file);
    data = raw as RegistryFileJson;
  }
  data.twins ??= [];
  data.nodes ??= [];
  const sameKey = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  if (entry.kind === "twin") {
    const i = data.twins.findIndex((t) => t.id === entry.id);
    const had = i >= 0 ? data.twins[i] : undefined;
    if (had && sameKey(had.publicKey, entry.publicKey) && (had.scheme ?? "ed25519") === entry.scheme) return;
    if (had && !options.force) {
      throw new RegistryError(`${file}.twins[${i}]`, `twin ${entry.id} is already bound to key ${had.publicKey} (${had.scheme ?? "ed25519"}); to replace it with ${entry.publicKey} (${entry.scheme}) add --force`, { code: "already_registered" });
    }
    data.twins = data.twins.filter((t) => t.id !== entry.id);
    data.twins.push({ id: entry.id, publicKey: entry.publicKey, scheme: entry.scheme });
  } else {
    const farmId = entry.farmId ?? 1;
    const i = data.nodes.findIndex((n) => n.id === entry.id);
    const had = i >= 0 ? data.nodes[i] : undefined;
    if (had && sameKey(had.publicKey, entry.publicKey) && (had.scheme ?? "ed25519") === entry.scheme && had.farmId === farmId && had.twinId === entry.twinId) return;
    if (had && !options.force && !options.replaceKey) {
      throw new RegistryError(`${file}.nodes[${i}]`, `node ${entry.id} is already registered (farm ${had.farmId}, twin ${had.twinId ?? "-"}, key ${had.publicKey}); to replace it add --force`, { code: "already_registered" });
    }
    // replaceKey: the key's node has this id now (the chain assigned it); drop its other entries
    data.nodes = data.nodes.filter((n) => n.id !== entry.id && !(options.replaceKey && sameKey(n.publicKey, entry.publicKey)));
    data.nodes.push({ id: entry.id, farmId, twinId: entry.twinId, publicKey: entry.publicKey, scheme: entry.scheme });
  }
  const text = JSON.stringify(data, null, 2) + "\n";
  // unchanged (a dev agent restarting): no write, so a start on a full disk does not fail here
  if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) return;
  writePrivateFile(file, text);
}
