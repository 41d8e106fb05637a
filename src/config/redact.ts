/**
 * A config as it may be shown (gc config show, GET /v0/config): secrets
 * replaced. Keys that name secrets and every env value are redacted; a
 * URL's password (the database URL) is masked.
 */

/** `scheme://user:***@host/...` for a URL with a password; other text unchanged. */
export function maskUrlPassword(text: string): string {
  try {
    const u = new URL(text);
    if (!u.password) return text;
    u.password = '***';
    return u.toString();
  } catch {
    return text;
  }
}

export function redactConfig(value: unknown, key = ''): unknown {
  if (/(token|secret|password|passwd|api_?key|credential)/i.test(key)) return '[redacted]';
  if (Array.isArray(value)) return value.map((v) => redactConfig(v));
  if (typeof value === 'string' && /url$/i.test(key)) return maskUrlPassword(value);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] =
        k === 'env' && v && typeof v === 'object'
          ? Object.fromEntries(Object.keys(v).map((e) => [e, '[redacted]']))
          : redactConfig(v, k);
    }
    return out;
  }
  return value;
}
