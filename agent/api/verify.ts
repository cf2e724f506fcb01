import type { Rejection } from "../admission/admit";
import { deploymentUnits, parseDeployment, type DeploymentSpec } from "../admission/spec";
import type { Units } from "../capacity/units";
import { ok, refused, type Result } from "../result";
import { DOMAIN } from "../identity/domains";
import { schemeFromWire, verifyDomain } from "../identity/keys";
import { schemeAdmits, type Registry } from "../registry/types";
import { decode, WireError, type DecodeLimits } from "../wire/codec";
import type { WireDeployRequest } from "../wire/generated";
import { sha256Hex } from "./messages";

/** What a refused request said about itself, as far as it could be read (for the refusal's log line). */
export interface RequestAbout {
  id?: number;
  version?: number;
  twinId?: number;
  /** the twins whose signatures the request carries (claimed, not necessarily valid) */
  signers?: number[];
}

/** A request that verified: its spec, what it reserves, the hash of its deployment bytes, who signed. */
export interface VerifiedRequest {
  spec: DeploymentSpec;
  units: Units;
  hash: string;
  signers: number[];
}

/** Why a request was refused, and what it said about itself (for the refusal's log line). */
export interface RequestRefusal {
  rejection: Rejection;
  about?: RequestAbout;
}

export type Verified = Result<VerifiedRequest, RequestRefusal>;

function fail(code: Rejection["code"], message: string, extra: Partial<Rejection> = {}, about?: RequestAbout): Verified {
  return refused({ rejection: { code, message, ...extra }, about });
}

/** id, version and owner of a deployment that did not parse, when those fields at least are numbers. */
function aboutRaw(raw: unknown, signers: number[]): RequestAbout {
  const r = (raw ?? {}) as Record<string, unknown>;
  const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isSafeInteger(v) ? v : typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : undefined);
  return { id: num(r.id), version: num(r.version), twinId: num(r.twinId), signers };
}

/**
 * Check a deploy request from the outside: size and shape, the spec, then the signatures under
 * the weighted multi-signature rules (GRID.md): every signature present must verify with its
 * twin's registered key and scheme (either scheme when the registry names none: tfchain); the owning twin's signature is always needed; required
 * signers must all sign; the weights of valid signatures must reach weightRequired.
 */
export async function verifyDeployRequest(bytes: Uint8Array, registry: Registry, limits: DecodeLimits): Promise<Verified> {
  let req: WireDeployRequest;
  let raw: unknown;
  try {
    req = decode("DeployRequest", bytes, limits);
    raw = decode("Deployment", req.deployment, limits);
  } catch (err) {
    if (err instanceof WireError) return fail(err.code, err.message);
    throw err;
  }
  const signers = req.signatures.map((s) => s.twinId);
  const parsed = parseDeployment(raw);
  if (!parsed.ok) return fail("invalid_spec", parsed.refusal.message, { path: parsed.refusal.path }, aboutRaw(raw, signers));
  const spec = parsed.value;
  const about: RequestAbout = { id: spec.id, version: spec.version, twinId: spec.twinId, signers };
  if (req.signatures.length === 0) return fail("unauthorized", `deployment ${spec.id} carries no signature; the owning twin ${spec.twinId} must sign it`, {}, about);
  const requested = new Map(spec.signatureRequirement.requests.map((r) => [r.twinId, r]));
  const signed = new Set<number>();
  let weight = 0;
  for (const [i, s] of req.signatures.entries()) {
    const request = requested.get(s.twinId);
    if (!request) return fail("unauthorized", `signatures[${i}]: twin ${s.twinId} is not among the deployment's signers`, {}, about);
    if (signed.has(s.twinId)) return fail("malformed", `signatures[${i}]: twin ${s.twinId} signed twice`, {}, about);
    const twin = await registry.twin(s.twinId);
    if (!twin) return fail("unauthorized", `signatures[${i}]: twin ${s.twinId} is not in the registry`, {}, about);
    const scheme = schemeFromWire(s.scheme);
    if (!scheme || !schemeAdmits(twin.scheme, scheme)) return fail("bad_signature", `signatures[${i}]: twin ${s.twinId} signs with ${twin.scheme}, not ${scheme ?? `scheme ${s.scheme}`}`, {}, about);
    if (!verifyDomain(scheme, twin.publicKey, DOMAIN.Deployment, req.deployment, s.signature)) {
      return fail("bad_signature", `signatures[${i}]: the signature of twin ${s.twinId} does not verify`, {}, about);
    }
    signed.add(s.twinId);
    weight += request.weight;
  }
  if (!signed.has(spec.twinId)) return fail("unauthorized", `the owning twin ${spec.twinId} did not sign deployment ${spec.id}`, {}, about);
  for (const r of spec.signatureRequirement.requests) {
    if (r.required && !signed.has(r.twinId)) return fail("unauthorized", `required signer twin ${r.twinId} did not sign`, {}, about);
  }
  if (weight < spec.signatureRequirement.weightRequired) {
    return fail("unauthorized", `signature weight ${weight} is below the required ${spec.signatureRequirement.weightRequired}`, {}, about);
  }
  return ok({ spec, units: deploymentUnits(spec), hash: sha256Hex(req.deployment), signers });
}
