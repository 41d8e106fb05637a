/**
 * Who a browser is: one-time login links, the session cookie they are
 * exchanged for, and the CSRF token every action carries.
 *
 * - A link (`/ui/login?token=...`) is made for a principal (an admin or
 *   operator key) and a role (viewer: looks only; operator: acts, within
 *   the key's own scopes). It works once and lapses after LINK_TTL_MS. Only
 *   a hash of its token is kept, in the memory of the server that made it
 *   (the leader, which serves the dashboard).
 * - The session is a signed cookie (HttpOnly, SameSite=Strict):
 *   `v1.<role>.<key id>.<expiry>.<nonce>.<mac>`, the MAC made with the
 *   city's server secret (KeyRing.sign), so every server of the city can
 *   check it and it survives a restart. It dies with its key: revoking the
 *   key that made the link ends the session at the next request.
 * - The CSRF token is a second MAC of the nonce, put in each page; an
 *   action must send it in `X-GC-CSRF` (the cookie alone never acts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { KeyRing, Principal } from '../city/index.js';
import { ForbiddenError, UnauthenticatedError } from '../core/index.js';

export type UiRole = 'viewer' | 'operator';

export interface UiSession {
  principal: Principal;
  role: UiRole;
  csrf: string;
  nonce: string;
  expires: number;
}

export const COOKIE = 'gc_ui';
export const CSRF_HEADER = 'x-gc-csrf';
/** How long a login link stays good. */
export const LINK_TTL_MS = 10 * 60_000;
/** Links not yet used that one server keeps at most (the oldest go first). */
const MAX_LINKS = 1000;

/** The API paths a viewer may not read (mail, keys and the config are for operators). */
const OPERATOR_READS = /^\/v0\/(mail|keys|agents|config|runs)(\/|$)/;

const sha = (s: string) => createHash('sha256').update(s).digest('base64url');

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export class DashboardAuth {
  private readonly links = new Map<
    string,
    { key_id: string; role: UiRole; expires: number; hours: number }
  >();
  /** Nonces of sessions logged out, until they would have lapsed. */
  private readonly ended = new Map<string, number>();

  constructor(
    private readonly keys: KeyRing,
    private readonly now: () => number = Date.now,
  ) {}

  /** A one-time login token for `principal` in `role`, with its link's lapse time. */
  mint(principal: Principal, role: UiRole, hours: number): { token: string; expires: number } {
    if (principal.kind !== 'admin' && principal.kind !== 'operator') {
      throw new ForbiddenError(`${principal.kind} ${principal.name} may not open the dashboard`);
    }
    const now = this.now();
    for (const [k, l] of this.links) if (l.expires <= now) this.links.delete(k);
    while (this.links.size >= MAX_LINKS) this.links.delete(this.links.keys().next().value!);
    const token = randomBytes(32).toString('base64url');
    const expires = now + LINK_TTL_MS;
    this.links.set(sha(token), { key_id: principal.key_id, role, expires, hours });
    return { token, expires };
  }

  /** Spend a login token: the cookie value of its new session, and how long it lasts. */
  redeem(token: string): { cookie: string; maxAgeS: number } {
    const k = sha(token);
    const link = this.links.get(k);
    this.links.delete(k);
    const now = this.now();
    if (!link || link.expires <= now) {
      throw new UnauthenticatedError(
        'this login link is not valid: it was used already, it lapsed (links last 10 minutes), or it was made by another server',
        { fix: 'run gc dashboard for a new link' },
      );
    }
    if (!this.keys.byId(link.key_id)) {
      throw new UnauthenticatedError('the key that made this link was revoked', {
        fix: 'run gc dashboard with a valid key',
      });
    }
    const expires = now + link.hours * 3_600_000;
    const body = `v1.${link.role}.${link.key_id}.${expires}.${randomBytes(16).toString('base64url')}`;
    return {
      cookie: `${body}.${this.keys.sign('dashboard-session', body)}`,
      maxAgeS: link.hours * 3600,
    };
  }

  /** The browser session a request's cookie holds; undefined when it has none that is valid. */
  session(req: IncomingMessage): UiSession | undefined {
    const raw = readCookie(req, COOKIE);
    if (!raw) return undefined;
    const parts = raw.split('.');
    if (parts.length !== 6 || parts[0] !== 'v1') return undefined;
    const [, role, keyId, exp, nonce, mac] = parts as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const body = parts.slice(0, 5).join('.');
    if (role !== 'viewer' && role !== 'operator') return undefined;
    if (!this.keys.signed('dashboard-session', body, mac)) return undefined;
    const expires = Number(exp);
    if (!(expires > this.now()) || this.ended.has(nonce)) return undefined;
    const principal = this.keys.byId(keyId);
    if (!principal) return undefined;
    return { principal, role, nonce, expires, csrf: this.keys.sign('dashboard-csrf', nonce) };
  }

  /** Log a session out: its cookie no longer works on this server. */
  end(s: UiSession): void {
    const now = this.now();
    for (const [n, until] of this.ended) if (until <= now) this.ended.delete(n);
    this.ended.set(s.nonce, s.expires);
  }

  /**
   * An API request carrying the dashboard cookie (and no key): its
   * principal, once the session is valid, a change carries the CSRF token
   * and comes from this origin, and a viewer only reads what viewers may.
   * Undefined when the request has no dashboard cookie at all.
   */
  authenticateApi(req: IncomingMessage, path: string): Principal | undefined {
    if (!readCookie(req, COOKIE)) return undefined;
    const s = this.session(req);
    if (!s) {
      throw new UnauthenticatedError('dashboard session ended or not valid', {
        fix: 'run gc dashboard for a new login link',
      });
    }
    const method = req.method ?? 'GET';
    const change = method !== 'GET' && method !== 'HEAD';
    if (change) checkSameOrigin(req, s);
    if (s.role === 'viewer' && (change || OPERATOR_READS.test(path))) {
      throw new ForbiddenError(
        `a viewer's dashboard session may only look (${method} ${path} is for operators)`,
        { fix: 'ask for an operator link: gc dashboard --role operator' },
      );
    }
    return s.principal;
  }
}

/** A change must carry the page's CSRF token and, when the browser says, come from this origin. */
export function checkSameOrigin(req: IncomingMessage, s: UiSession, token?: string): void {
  const sent = token ?? String(req.headers[CSRF_HEADER] ?? '');
  if (!sent || sent !== s.csrf) {
    throw new ForbiddenError('missing or wrong CSRF token', {
      fix: 'reload the dashboard page and try again',
    });
  }
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin') {
    throw new ForbiddenError(`cross-site request refused (Sec-Fetch-Site: ${String(site)})`);
  }
  const origin = req.headers.origin;
  if (origin && origin !== 'null') {
    let host = '';
    try {
      host = new URL(origin).host;
    } catch {
      host = '';
    }
    if (host !== req.headers.host) {
      throw new ForbiddenError(`cross-origin request refused (Origin: ${origin})`);
    }
  }
}
