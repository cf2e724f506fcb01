/**
 * Every call the tfchain adapter makes, built from a runtime's metadata and decoded back: here
 * against tfchain spec_version 132 (metadata v14 of 2023-04, test data outside the repository;
 * skipped with a message when absent). The adapter runs against spec 49 in the integration test;
 * this checks it builds valid calls for today's tfchain too.
 */
import * as fs from "node:fs";
import { expandMetadata, Metadata, TypeRegistry } from "@polkadot/types";
import { GiB, zeroUnits } from "../../agent/capacity/units";
import { adapterIntents, buildCall, callArgs, callFn, createTwinIntent, type CallFn, type CallTable } from "../../agent/tfchain/calls";
import { TfchainError } from "../../agent/tfchain/errors";
import { errorCode, invalidTxCode } from "../../agent/tfchain/backend";
import { describeWith, tfchainMetadata132 } from "../utils/tfchain";

const total = { ...zeroUnits(), cru: 4, mru: 8 * GiB, sru: 256 * GiB, hru: 1024 * GiB };
const envelope = new Uint8Array(Array.from({ length: 200 }, (_, i) => i));

describeWith(tfchainMetadata132(), "the tfchain spec-132 encoding test")("adapter calls on tfchain spec 132 (metadata of 2023-04)", () => {
  const registry = new TypeRegistry();
  const metadata = new Metadata(registry, new Uint8Array(fs.readFileSync(tfchainMetadata132())));
  registry.setMetadata(metadata);
  const tx = expandMetadata(registry, metadata).tx as unknown as CallTable;

  it("is the runtime the test data says", () => {
    expect(metadata.version).toBe(14);
    expect(callFn(tx, "tfgridModule", "changePowerState")).toBeDefined();
  });

  it.each(adapterIntents({ total, envelope }).map((i) => [`${i.section}.${i.method}${i.method === "changePowerState" ? ` ${String(i.values.power_state)}` : ""}`, i] as const))("%s encodes and decodes back", (_name, intent) => {
    const call = buildCall<{ toU8a(): Uint8Array }>(registry, tx, intent);
    const bytes = call.toU8a();
    const back = registry.createType("Call", bytes);
    expect(back.section).toBe(intent.section);
    expect(back.method).toBe(intent.method);
    expect(Buffer.from(back.toU8a()).equals(Buffer.from(bytes))).toBe(true);
    const args = back.toJSON() as { args: Record<string, unknown> };
    if (intent.method === "remark") expect(args.args.remark).toBe("0x" + Buffer.from(envelope).toString("hex"));
    if (intent.method === "createNode" || intent.method === "updateNode") {
      expect(args.args.resources).toEqual({ hru: total.hru, sru: total.sru, cru: total.cru, mru: total.mru });
      expect(args.args.farm_id).toBe(1);
    }
  });

  it("fills spec 132's optional createTwin arguments (relay, pk) with None", () => {
    const fn = callFn(tx, "tfgridModule", "createTwin");
    expect(callArgs(registry, fn, createTwinIntent())).toEqual([null, null]);
  });

  it("refuses a call whose required argument the adapter does not know, with unsupported_runtime", () => {
    const fn = callFn(tx, "tfgridModule", "createFarm");
    expect(() => callArgs(registry, fn as CallFn, { section: "tfgridModule", method: "createFarm", values: {} })).toThrow(TfchainError);
    expect(() => callFn(tx, "tfgridModule", "noSuchCall")).toThrow(/no call tfgridModule.noSuchCall/);
  });
});

describe("refusal codes", () => {
  it.each([
    ["TwinExists", "twin_exists"],
    ["FarmNotExists", "farm_not_exists"],
    ["UserDidNotSignTermsAndConditions", "user_did_not_sign_terms_and_conditions"],
    ["CannotCreateNode", "cannot_create_node"],
  ])("runtime error %s -> %s", (name, code) => expect(errorCode(name)).toBe(code));

  it.each([
    ['1010: {"invalid":{"payment":null}}', "insufficient_funds"],
    ["1010: Invalid Transaction: Inability to pay some fees , e.g. account balance too low", "insufficient_funds"],
    ['1010: {"invalid":{"badProof":null}}', "bad_signature"],
    ['1010: {"invalid":{"stale":null}}', "stale_nonce"],
    ['1010: {"invalid":{"ancientBirthBlock":null}}', "ancient_birth_block"],
    ['1010: {"invalid":{"future":null}}', "future_nonce"],
    ["1010: something else", "invalid_transaction"],
  ])("pool refusal %s -> %s", (msg, code) => expect(invalidTxCode(msg)).toBe(code));
});
