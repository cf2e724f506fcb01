import * as crypto from "node:crypto";
import type { Permissions } from "./permissions";

/**
 * NATS decentralised auth (operator, accounts, users) without nsc: the JWTs nats-server trusts in
 * operator mode, made with nkeys. A NATS JWT is `b64url(header).b64url(claims).b64url(sig)`,
 * header `{"typ":"JWT","alg":"ed25519-nkey"}`, signed with the issuer's nkey over the first two
 * parts; claims carry `jti` (base32 of the SHA-256 of the claims), `iat`, `iss` (the issuer's
 * public key), `sub` (the subject's public key), `name` and `nats` (version 2 claims). The
 * operator signs accounts, an account signs its users. scripts/bus-config --jwt uses this; the
 * server is configured with the operator JWT and a MEMORY resolver preloaded with the accounts.
 */

/** what signs: an nkeys KeyPair (operator or account) */
export interface JwtSigner {
  getPublicKey(): string;
  sign(data: Uint8Array): Uint8Array;
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(buf: Uint8Array): string {
  let bits = 0;
  let v = 0;
  let out = "";
  for (const x of buf) {
    v = ((v << 8) | x) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += B32[(v >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(v << (5 - bits)) & 31];
  return out;
}

const b64u = (b: Uint8Array | string): string => Buffer.from(b).toString("base64url");

/** A signed NATS JWT for `subject` (a public key) issued by `issuer`. `iat` in seconds. */
export function encodeJwt(issuer: JwtSigner, subject: string, name: string, nats: Record<string, unknown>, iat = Math.floor(Date.now() / 1000)): string {
  const claims: Record<string, unknown> = { jti: "", iat, iss: issuer.getPublicKey(), name, sub: subject, nats };
  claims.jti = base32(crypto.createHash("sha256").update(JSON.stringify(claims)).digest());
  const data = `${b64u(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${b64u(issuer.sign(new TextEncoder().encode(data)))}`;
}

/** The claims of a JWT (not verified: for tests and inspection). */
export function decodeJwtClaims(jwt: string): Record<string, unknown> {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Error("not a JWT (three dot-separated parts)");
  return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as Record<string, unknown>;
}

const NO_LIMITS = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export function operatorJwt(operator: JwtSigner, name: string, systemAccount: string): string {
  return encodeJwt(operator, operator.getPublicKey(), name, { type: "operator", version: 2, system_account: systemAccount });
}

/** An account with no limits and no default permissions (every user of it carries its own). */
export function accountJwt(operator: JwtSigner, accountPublicKey: string, name: string): string {
  return encodeJwt(operator, accountPublicKey, name, { limits: NO_LIMITS, default_permissions: { pub: {}, sub: {} }, type: "account", version: 2 });
}

/** A user of `account` with the layout's permissions (permissions.ts); allowResponses -> `resp` (one reply per request). */
export function userJwt(account: JwtSigner, userPublicKey: string, name: string, p: Permissions): string {
  return encodeJwt(account, userPublicKey, name, {
    pub: { allow: p.publish },
    sub: { allow: p.subscribe },
    ...(p.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
    subs: -1,
    data: -1,
    payload: -1,
    type: "user",
    version: 2,
  });
}

/** A creds file as nsc writes it: the user JWT and the user's seed. */
export function credsFileText(jwt: string, seed: string): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    jwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    seed,
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}
