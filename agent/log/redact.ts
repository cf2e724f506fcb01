/**
 * Credentials never reach a log line or the terminal. NATS (and other) URLs may carry them as
 * userinfo (`nats://user:pass@host`, `nats://token@host`) or in the query (`?token=...`), and a
 * library error may quote a configured password on its own. `redact` hides all three; every place
 * that prints a URL or an error (the logger, CLI errors, local-grid) goes through it.
 */
export const REDACTED = "***";

// scheme://userinfo@ : userinfo is everything up to the first @ that has no / ? # or space before it
const USERINFO_RE = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]+)@/gi;
// token=..., password=... and friends in a query string or a key=value text
const PARAM_RE = /\b(token|auth_token|password|pass|passwd|pwd|secret|jwt|nkey|seed|creds)=([^\s&#"',;]+)/gi;

/** Secrets that appear in `urls` (userinfo passwords, tokens, query tokens), raw and percent-decoded. */
export function secretsOf(urls: readonly string[]): string[] {
  const out = new Set<string>();
  const add = (s: string): void => {
    if (s.length < 3) return; // too short to hide without mangling ordinary text
    out.add(s);
    try {
      const d = decodeURIComponent(s);
      if (d.length >= 3) out.add(d);
    } catch {
      /* not percent-encoded */
    }
  };
  for (const url of urls) {
    for (const m of url.matchAll(USERINFO_RE)) {
      const info = m[2];
      const colon = info.indexOf(":");
      if (colon >= 0) add(info.slice(colon + 1));
      else add(info); // a lone userinfo is a token
    }
    for (const m of url.matchAll(PARAM_RE)) add(m[2]);
  }
  return [...out];
}

/**
 * `text` with URL credentials and known secrets replaced by ***: `nats://user:***@host`,
 * `nats://***@host` (a token), `token=***`. Hosts, ports and user names stay readable.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let s = text.replace(USERINFO_RE, (_all, scheme: string, info: string) => {
    const colon = info.indexOf(":");
    return colon >= 0 ? `${scheme}${info.slice(0, colon)}:${REDACTED}@` : `${scheme}${REDACTED}@`;
  });
  s = s.replace(PARAM_RE, (_all, key: string) => `${key}=${REDACTED}`);
  for (const secret of secrets) if (secret && s.includes(secret)) s = s.split(secret).join(REDACTED);
  return s;
}

/**
 * A deep copy of a log object with every string redacted. Errors become plain objects
 * ({type, message, code, stack}) so their messages are redacted too. Depth and size are bounded.
 */
export function redactValue(value: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (typeof value === "string") return redact(value, secrets);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown };
    const out: Record<string, unknown> = { type: e.name, message: redact(e.message, secrets) };
    if (e.code !== undefined) out.code = e.code;
    if (e.stack) out.stack = redact(e.stack, secrets);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  if (value instanceof Uint8Array || value instanceof Date) return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value; // class instances: left to their serializers
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = redactValue(v, secrets, depth + 1);
  return out;
}
