import { AgentError, isAgentError } from "../../agent/errors";
import { AgentStartError } from "../../agent/agent";
import { NodeRefused } from "../../agent/api/messages";
import { NodeUnreachable } from "../../agent/api/client";
import { PricingError } from "../../agent/billing/pricing";
import { BusAuthError } from "../../agent/bus/auth";
import { NoRespondersError } from "../../agent/bus/memory";
import { NatsUrlFileError } from "../../agent/bus/url-file";
import { ChainError } from "../../agent/chain/errors";
import { NatsUnauthorized, NatsUnavailable } from "../../agent/cli/client";
import { UsageError } from "../../agent/cli/framework";
import { ConfigError } from "../../agent/config/errors";
import { GossipError } from "../../agent/gossip/errors";
import { HardwareError } from "../../agent/hardware/errors";
import { IdentityError } from "../../agent/identity/errors";
import { PowerError } from "../../agent/power/errors";
import { RegistryError } from "../../agent/registry/file";
import { StoreError } from "../../agent/store/errors";
import { TfchainError } from "../../agent/tfchain/errors";
import { WireError } from "../../agent/wire/codec";
import { parseDeployment } from "../../agent/admission/spec";

const cause = new Error("underneath");

// every module's error class: [error, code, name, message] as the module has always made them
test.each<[string, Error, string, string, string]>([
  ["AgentStartError", new AgentStartError("key_mismatch", "m", { cause }), "key_mismatch", "AgentStartError", "m"],
  ["NodeRefused", new NodeRefused("rate_limited", "slow down"), "rate_limited", "NodeRefused", "node refused: rate_limited: slow down"],
  ["NodeUnreachable", new NodeUnreachable(3, cause), "node_unreachable", "NodeUnreachable", "node 3 did not answer (underneath); is its agent running and connected to this NATS?"],
  ["PricingError", new PricingError("bad price", "chain.pricing.cuPerHour"), "invalid_options", "PricingError", "bad price"],
  ["BusAuthError", new BusAuthError("nats.nkeySeedFile", "cannot read", { cause }), "nats_credentials_invalid", "Error", "nats.nkeySeedFile: cannot read"],
  ["NoRespondersError", new NoRespondersError("a.b"), "no_responders", "NoRespondersError", "no responders: a.b"],
  ["NatsUrlFileError", new NatsUrlFileError("bad file"), "invalid_nats_url_file", "Error", "bad file"],
  ["ChainError", new ChainError("chain_unavailable", "m", { cause, noResponders: true }), "chain_unavailable", "ChainError", "m"],
  ["NatsUnavailable", new NatsUnavailable("m"), "nats_unavailable", "Error", "m"],
  ["NatsUnauthorized", new NatsUnauthorized("m"), "nats_unauthorized", "Error", "m"],
  ["UsageError", new UsageError("m"), "usage", "Error", "m"],
  ["ConfigError", new ConfigError("nodeId", "expected a number", { cause }), "invalid_config", "ConfigError", "nodeId: expected a number"],
  ["GossipError", new GossipError("bad_reply", "m", { field: "f", cause }), "bad_reply", "GossipError", "m"],
  ["HardwareError", new HardwareError("probe_failed", "m", { step: "cpu" }, { cause }), "probe_failed", "HardwareError", "m"],
  ["IdentityError", new IdentityError("key_missing", "m", { path: "/k", cause }), "key_missing", "IdentityError", "m"],
  ["PowerError", new PowerError("no_mac", "m"), "no_mac", "PowerError", "m"],
  ["RegistryError", new RegistryError("twins[0]", "m", { code: "already_registered" }), "already_registered", "RegistryError", "twins[0]: m"],
  ["StoreError", new StoreError("store_full", "/d/agent.db", "m", { cause }), "store_full", "StoreError", "m"],
  ["TfchainError", new TfchainError("bad_reply", "m", { cause }), "bad_reply", "TfchainError", "m"],
  ["WireError", new WireError("too_large", "m", { cause }), "too_large", "WireError", "m"],
])("%s is an AgentError with its code, name and message", (_, err, code, name, message) => {
  expect(err).toBeInstanceOf(AgentError);
  expect(err).toBeInstanceOf(Error);
  expect(isAgentError(err, code)).toBe(true);
  expect(isAgentError(err, "something_else")).toBe(false);
  expect((err as AgentError).code).toBe(code);
  expect(err.name).toBe(name);
  expect(err.message).toBe(message);
});

test("cause and detail are kept; fields of a module stay where they were", () => {
  const s = new StoreError("io", "/d/agent.db", "m", { cause });
  expect(s.cause).toBe(cause);
  expect(s.file).toBe("/d/agent.db");
  const h = new HardwareError("invalid_option", "hardware.x: bad", { field: "hardware.x" });
  expect(h.detail).toEqual({ field: "hardware.x" });
  expect(h.payload).toEqual({ field: "hardware.x" });
  expect(h.field).toBe("hardware.x");
  expect(new ChainError("refused", "m", { refusal: "malformed" }).refusal).toBe("malformed");
  expect(new AgentError("x", "m").cause).toBeUndefined();
  expect(isAgentError(new Error("plain"))).toBe(false);
});

test("an invalid deployment spec is refused with its path (the spec parser's internal error carries it)", () => {
  const r = parseDeployment({ id: 1, twinId: 1, version: 1, workloads: [{ name: "a", type: "zmount", size: "1GiB", memroy: 1 }] });
  expect(r).toMatchObject({ ok: false, refusal: { code: "invalid_spec", path: "workloads[0].memroy" } });
});
