import type { SchemeName } from "../identity/keys";

export interface TwinRecord {
  id: number;
  publicKey: Uint8Array;
  /**
   * The key's signature scheme; "any" when the registry binds an account but not a scheme
   * (tfchain stores accounts): a signature is then accepted if it verifies under either scheme
   * for that public key (ed25519 or sr25519).
   */
  scheme: SchemeName | "any";
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

/** Whether a record's scheme admits a signature made with `scheme` (the record's own, or any when it names none). */
export function schemeAdmits(recordScheme: SchemeName | "any", scheme: SchemeName): boolean {
  return recordScheme === "any" || recordScheme === scheme;
}
