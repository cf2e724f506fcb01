import type { SchemeName } from "../identity/keys";

export interface TwinRecord {
  id: number;
  publicKey: Uint8Array;
  scheme: SchemeName;
}

export interface NodeRecord {
  id: number;
  farmId: number;
  twinId: number;
  publicKey: Uint8Array;
  scheme: SchemeName;
}

/**
 * Binds twin and node ids to public keys, as tfchain does. Implementations: a JSON file
 * (FileRegistry), the chain stand-in over NATS, a Substrate adapter. Lookups of unknown ids
 * resolve to undefined; only I/O failure rejects.
 */
export interface Registry {
  twin(id: number): Promise<TwinRecord | undefined>;
  node(id: number): Promise<NodeRecord | undefined>;
  close?(): Promise<void>;
}
