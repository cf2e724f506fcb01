/**
 * Type definitions for tfchain runtimes whose metadata (v13 and older) carries type names but not
 * their layout. @polkadot/api needs them to encode calls and decode storage and events, and so
 * does chopsticks (its `registered-types`), which decodes every extrinsic it is given.
 *
 * Written for this project from the runtime's call, storage and event signatures (spec_version 49,
 * TF Chain Devnet of 2022-07) and checked against it: the integration test reads each stored value
 * back and re-encodes it to the same bytes. Runtimes with metadata v14 (e.g. spec_version 132)
 * describe their own types; these definitions are not applied to them.
 */
import type { OverrideBundleType, RegistryTypes } from "@polkadot/types/types";

/** Highest spec_version these definitions are applied to (the last one they were checked against). */
export const LEGACY_TYPES_MAX_SPEC = 49;
export const TFCHAIN_SPEC_NAME = "substrate-threefold";

/** The runtime's own types, as @polkadot/api type definitions. */
export const TFGRID_LEGACY_TYPES: RegistryTypes = {
  // frame_system of this runtime counts consumers and providers, not yet sufficients (its storage
  // has UpgradedToDualRefCount, no UpgradedToTripleRefCount): with the triple layout a balance
  // set through dev_setStorage lands 4 bytes off (free x 2^32)
  AccountInfo: "AccountInfoWithDualRefCount",
  Address: "MultiAddress",
  LookupSource: "MultiAddress",
  BalanceOf: "Balance",
  // tftPriceModule.bufferRange (BufferIndex, BufferIndex) is 4 bytes in spec 49's storage
  BufferIndex: "u16",
  U16F16: "[u8; 4]",
  ValueStruct: { value: "U16F16" },
  StorageVersion: { _enum: ["V1Struct", "V2Struct", "V3Struct", "V4Struct", "V5Struct"] },

  // pallet-tfgrid
  CertificationType: { _enum: ["Diy", "Certified"] },
  CertificationCodeType: { _enum: ["Farm", "Entity"] },
  CertificationCodes: { version: "u32", id: "u32", name: "Vec<u8>", description: "Vec<u8>", certification_code_type: "CertificationCodeType" },
  PublicIP: { ip: "Vec<u8>", gateway: "Vec<u8>", contract_id: "u64" },
  Farm: {
    version: "u32",
    id: "u32",
    name: "Vec<u8>",
    twin_id: "u32",
    pricing_policy_id: "u32",
    certification_type: "CertificationType",
    public_ips: "Vec<PublicIP>",
  },
  EntityProof: { entity_id: "u32", signature: "Vec<u8>" },
  Entity: { version: "u32", id: "u32", name: "Vec<u8>", account_id: "AccountId", country: "Vec<u8>", city: "Vec<u8>" },
  Twin: { version: "u32", id: "u32", account_id: "AccountId", ip: "Vec<u8>", entities: "Vec<EntityProof>" },
  Resources: { hru: "u64", sru: "u64", cru: "u64", mru: "u64" },
  Location: { longitude: "Vec<u8>", latitude: "Vec<u8>" },
  PublicConfig: { ipv4: "Vec<u8>", ipv6: "Vec<u8>", gw4: "Vec<u8>", gw6: "Vec<u8>", domain: "Vec<u8>" },
  Interface: { name: "Vec<u8>", mac: "Vec<u8>", ips: "Vec<Vec<u8>>" },
  Node: {
    version: "u32",
    id: "u32",
    farm_id: "u32",
    twin_id: "u32",
    resources: "Resources",
    location: "Location",
    country: "Vec<u8>",
    city: "Vec<u8>",
    public_config: "Option<PublicConfig>",
    created: "u64",
    farming_policy_id: "u32",
    interfaces: "Vec<Interface>",
    certification_type: "CertificationType",
    secure_boot: "bool",
    virtualized: "bool",
    serial_number: "Vec<u8>",
  },
  Unit: { _enum: ["Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terrabytes"] },
  Policy: { value: "u32", unit: "Unit" },
  PricingPolicy: {
    version: "u32",
    id: "u32",
    name: "Vec<u8>",
    su: "Policy",
    cu: "Policy",
    nu: "Policy",
    ipu: "Policy",
    unique_name: "Policy",
    domain_name: "Policy",
    foundation_account: "AccountId",
    certified_sales_account: "AccountId",
  },
  FarmingPolicy: {
    version: "u32",
    id: "u32",
    name: "Vec<u8>",
    cu: "u32",
    su: "u32",
    nu: "u32",
    ipv4: "u32",
    timestamp: "u64",
    certification_type: "CertificationType",
  },
  TermsAndConditions: { account_id: "AccountId", timestamp: "u64", document_link: "Vec<u8>", document_hash: "Vec<u8>" },

  // pallet-smart-contract
  NodeContract: { node_id: "u32", deployment_data: "Vec<u8>", deployment_hash: "Vec<u8>", public_ips: "u32", public_ips_list: "Vec<PublicIP>" },
  NameContract: { name: "Vec<u8>" },
  ContractData: { _enum: { NodeContract: "NodeContract", NameContract: "NameContract" } },
  Cause: { _enum: ["CanceledByUser", "OutOfFunds"] },
  ContractState: { _enum: { Created: "Null", Deleted: "Cause" } },
  Contract: { version: "u32", state: "ContractState", contract_id: "u64", twin_id: "u32", contract_type: "ContractData" },
  ContractBillingInformation: { previous_nu_reported: "u64", last_updated: "u64", amount_unbilled: "u64" },
  ContractResources: { contract_id: "u64", used: "Resources" },
  Consumption: { contract_id: "u64", timestamp: "u64", cru: "u64", sru: "u64", hru: "u64", mru: "u64", nru: "u64" },
  NruConsumption: { contract_id: "u64", timestamp: "u64", window: "u64", nru: "u64" },
  DiscountLevel: { _enum: ["None", "Default", "Bronze", "Silver", "Gold"] },
  ContractBill: { contract_id: "u64", timestamp: "u64", discount_level: "DiscountLevel", amount_billed: "u128" },

  // bridge and validator pallets (only so that their events and storage decode)
  StellarSignature: { signature: "Vec<u8>", stellar_pubkey: "Vec<u8>" },
  MintTransaction: { amount: "u64", target: "AccountId", block: "BlockNumber", votes: "u32" },
  BurnTransaction: { block: "BlockNumber", amount: "u64", target: "Vec<u8>", signatures: "Vec<StellarSignature>", sequence_number: "u64" },
  RefundTransaction: { block: "BlockNumber", amount: "u64", target: "Vec<u8>", tx_hash: "Vec<u8>", signatures: "Vec<StellarSignature>", sequence_number: "u64" },
  Burn: { target: "AccountId", amount: "BalanceOf", block: "BlockNumber", message: "Vec<u8>" },
  ValidatorRequestState: { _enum: ["Created", "Approved", "Validating"] },
  Validator: {
    validator_node_account: "AccountId",
    stash_account: "AccountId",
    description: "Vec<u8>",
    tf_connect_id: "Vec<u8>",
    info: "Vec<u8>",
    state: "ValidatorRequestState",
  },
};

/** `typesBundle` for @polkadot/api: the legacy definitions for tfchain runtimes up to LEGACY_TYPES_MAX_SPEC. */
export function tfchainTypesBundle(): OverrideBundleType {
  return { spec: { [TFCHAIN_SPEC_NAME]: { types: [{ minmax: [0, LEGACY_TYPES_MAX_SPEC], types: TFGRID_LEGACY_TYPES }] } } };
}
