import type { Registry } from "@polkadot/types/types";
import { TypeDefInfo } from "@polkadot/types/types";
import { u8aToHex } from "@polkadot/util";
import type { Units } from "../capacity/units";
import { TfchainError } from "./errors";

/**
 * The calls the adapter makes, built for the runtime it talks to: arguments are matched by name
 * against the call's metadata, so one description fits runtimes whose calls gained, lost or
 * renamed arguments (e.g. `create_twin(ip)` in spec 49, `create_twin(relay, pk)` in spec 132).
 * An argument the runtime wants that is not described here is an error
 * (`unsupported_runtime`), never a guess; an absent Option argument is None.
 */

/** A call as the adapter means it: pallet and call (camelCase, as @polkadot/api names them) and named values. */
export interface CallIntent {
  section: string;
  method: string;
  /** by argument name (snake_case as in the metadata; a leading `_` is ignored) */
  values: Record<string, unknown>;
}

/** Anything with call metadata: @polkadot/api's `api.tx.x.y` or a decorated metadata's `tx.x.y`. */
export interface CallFn {
  (...args: unknown[]): { toU8a(): Uint8Array; method?: unknown };
  meta: { fields: ArrayLike<{ name: { isSome: boolean; unwrap(): { toString(): string } }; type: { toNumber(): number } }> & Iterable<{ name: { isSome: boolean; unwrap(): { toString(): string } }; type: { toNumber(): number } }> };
}

export type CallTable = Record<string, Record<string, CallFn | undefined> | undefined>;

/** Find a call; `unsupported_runtime` when the runtime has none by that name. */
export function callFn(tx: CallTable, section: string, method: string): CallFn {
  const fn = tx[section]?.[method];
  if (!fn) throw new TfchainError("unsupported_runtime", `the runtime has no call ${section}.${method}; the adapter cannot do this on it`);
  return fn;
}

/** The positional arguments for `intent` on the runtime described by `registry` and `fn.meta`. */
export function callArgs(registry: Registry, fn: CallFn, intent: CallIntent): unknown[] {
  const out: unknown[] = [];
  for (const field of Array.from(fn.meta.fields)) {
    const raw = field.name.isSome ? field.name.unwrap().toString() : "";
    const name = raw.replace(/^_+/, "");
    if (Object.prototype.hasOwnProperty.call(intent.values, name) && intent.values[name] !== undefined) {
      out.push(intent.values[name]);
      continue;
    }
    const def = registry.lookup.getTypeDef(field.type.toNumber());
    if (def.info === TypeDefInfo.Option) {
      out.push(null);
      continue;
    }
    throw new TfchainError("unsupported_runtime", `${intent.section}.${intent.method} on this runtime wants an argument "${raw}" (${def.type}) the adapter does not know; it was built for other runtime versions (docs/tfchain.md)`);
  }
  return out;
}

/** Build the call for `intent` (an extrinsic to sign with @polkadot/api, or a Call from decorated metadata). */
export function buildCall<T>(registry: Registry, tx: CallTable, intent: CallIntent): T {
  const fn = callFn(tx, intent.section, intent.method);
  return fn(...callArgs(registry, fn, intent)) as unknown as T;
}

// ---- the intents (pure: values in, description out) ----

export function acceptTermsIntent(link: string, hash: string): CallIntent {
  return { section: "tfgridModule", method: "userAcceptTc", values: { document_link: link, document_hash: hash } };
}

/** Spec 49 wants a twin `ip` (the Yggdrasil address it used for RMB); later runtimes take an optional relay and pk. */
export function createTwinIntent(ip = "::1"): CallIntent {
  return { section: "tfgridModule", method: "createTwin", values: { ip } };
}

export function createFarmIntent(name: string): CallIntent {
  return { section: "tfgridModule", method: "createFarm", values: { name, public_ips: [] } };
}

/** What a node tells the chain about itself when registering or updating. */
export interface NodeDescription {
  farmId: number;
  total: Units;
  country?: string;
  city?: string;
  latitude?: string;
  longitude?: string;
  serialNumber?: string;
  virtualized?: boolean;
  secureBoot?: boolean;
}

/** tfchain counts cru (cores) and mru/sru/hru in bytes, like Units. */
export function resourcesOf(total: Units): { hru: number; sru: number; cru: number; mru: number } {
  return { hru: total.hru, sru: total.sru, cru: total.cru, mru: total.mru };
}

function nodeValues(n: NodeDescription): Record<string, unknown> {
  const country = n.country ?? "Unknown";
  const city = n.city ?? "Unknown";
  const latitude = n.latitude ?? "0";
  const longitude = n.longitude ?? "0";
  return {
    farm_id: n.farmId,
    resources: resourcesOf(n.total),
    // spec 49: Location{longitude, latitude} plus country/city arguments; later: LocationInput{city, country, latitude, longitude}
    location: { longitude, latitude, city, country },
    country,
    city,
    interfaces: [],
    secure_boot: n.secureBoot ?? false,
    virtualized: n.virtualized ?? false,
    serial_number: n.serialNumber ?? "capacity-agent",
  };
}

export function createNodeIntent(n: NodeDescription): CallIntent {
  return { section: "tfgridModule", method: "createNode", values: nodeValues(n) };
}

export function updateNodeIntent(nodeId: number, n: NodeDescription): CallIntent {
  return { section: "tfgridModule", method: "updateNode", values: { node_id: nodeId, ...nodeValues(n) } };
}

/** A usage proof travels as the bytes of its Signed{UsageProof} envelope in a remark. */
export function remarkIntent(bytes: Uint8Array): CallIntent {
  // as hex: @polkadot/api reads a Uint8Array for Bytes as already SCALE-encoded (length-prefixed)
  return { section: "system", method: "remark", values: { remark: u8aToHex(bytes) } };
}

/** Power state, where the runtime keeps one (changePowerState, spec >= ~120). */
export function powerIntent(up: boolean): CallIntent {
  return { section: "tfgridModule", method: "changePowerState", values: { power_state: up ? "Up" : "Down" } };
}

/** Every intent the adapter makes, with sample values (for the encoding test against other runtimes). */
export function adapterIntents(sample: { total: Units; envelope: Uint8Array }): CallIntent[] {
  const node: NodeDescription = { farmId: 1, total: sample.total };
  return [
    acceptTermsIntent("https://example.org/terms", "hash"),
    createTwinIntent(),
    createFarmIntent("farm-one"),
    createNodeIntent(node),
    updateNodeIntent(1, node),
    remarkIntent(sample.envelope),
    powerIntent(true),
    powerIntent(false),
  ];
}
