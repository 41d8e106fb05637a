/**
 * Dashboard sign-in on a real key ring: a link works once and lapses; the
 * cookie is checked by its MAC, dies with its key and at logout; a change
 * needs the CSRF token and this origin; a viewer only looks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, type Principal } from '../city/index.js';
import { ForbiddenError, UnauthenticatedError } from '../core/index.js';
import { COOKIE, DashboardAuth, LINK_TTL_MS } from './auth.js';

let dir = '';
let keys: KeyRing;
let admin: Principal;
let operator: Principal;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gc-uiauth-'));
  keys = await KeyRing.open(path.join(dir, 'auth.db'));
  admin = (await keys.create({ kind: 'admin', name: 'admin' })).principal;
  operator = (await keys.create({ kind: 'operator', name: 'ops' })).principal;
});
afterAll(async () => {
  await keys.close();
  await rm(dir, { recursive: true, force: true });
});

/** A request as node:http gives it: a method, headers and a cookie. */
function req(
  cookie: string | undefined,
  o: { method?: string; headers?: Record<string, string> } = {},
) {
  return {
    method: o.method ?? 'GET',
    headers: {
      host: '127.0.0.1:8080',
      ...(cookie ? { cookie: `other=1; ${COOKIE}=${cookie}` } : {}),
      ...o.headers,
    },
  } as unknown as IncomingMessage;
}

describe('dashboard auth', () => {
  it('a link logs in once, lapses after its time, and is refused to agents', async () => {
    let now = 1_000_000;
    const auth = new DashboardAuth(keys, () => now);
    const { token } = auth.mint(admin, 'operator', 2);
    const s = auth.redeem(token);
    expect(s.maxAgeS).toBe(7200);
    expect(() => auth.redeem(token)).toThrow(UnauthenticatedError);
    const late = auth.mint(admin, 'viewer', 1).token;
    now += LINK_TTL_MS + 1;
    expect(() => auth.redeem(late)).toThrow(/lapsed/);
    expect(() => auth.redeem('made-up')).toThrow(UnauthenticatedError);
    const agent = (await keys.create({ kind: 'agent', name: 'coder-1' })).principal;
    expect(() => auth.mint(agent, 'viewer', 1)).toThrow(ForbiddenError);
  });

  it('the cookie holds only when its MAC does, until it lapses or logs out', () => {
    let now = 5_000_000;
    const auth = new DashboardAuth(keys, () => now);
    const { cookie } = auth.redeem(auth.mint(operator, 'operator', 1).token);
    const s = auth.session(req(cookie))!;
    expect(s).toMatchObject({ role: 'operator', principal: { name: 'ops', kind: 'operator' } });
    expect(s.csrf.length).toBeGreaterThan(20);
    // Another role, or another key, with the same MAC: refused.
    expect(auth.session(req(cookie.replace('.operator.', '.viewer.')))).toBeUndefined();
    expect(auth.session(req(cookie.replace(operator.key_id, admin.key_id)))).toBeUndefined();
    expect(auth.session(req(`${cookie.slice(0, -2)}xx`))).toBeUndefined();
    expect(auth.session(req('v1.operator'))).toBeUndefined();
    expect(auth.session(req(undefined))).toBeUndefined();
    // Another server of the city (same secret) accepts it.
    expect(new DashboardAuth(keys, () => now).session(req(cookie))?.principal.name).toBe('ops');
    auth.end(s);
    expect(auth.session(req(cookie))).toBeUndefined();
    const next = auth.redeem(auth.mint(operator, 'operator', 1).token).cookie;
    now += 3_600_001;
    expect(auth.session(req(next))).toBeUndefined();
  });

  it('dies with the key that made it', async () => {
    const k = await keys.create({ kind: 'operator', name: 'temp' });
    const auth = new DashboardAuth(keys);
    const { cookie } = auth.redeem(auth.mint(k.principal, 'operator', 1).token);
    expect(auth.session(req(cookie))).toBeDefined();
    await keys.revoke(k.principal.key_id);
    expect(auth.session(req(cookie))).toBeUndefined();
    expect(() => auth.authenticateApi(req(cookie), '/v0/beads')).toThrow(UnauthenticatedError);
  });

  it('API calls: reads pass, changes need the token and this origin, viewers only look', () => {
    const auth = new DashboardAuth(keys);
    const op = auth.redeem(auth.mint(admin, 'operator', 1).token).cookie;
    const csrf = auth.session(req(op))!.csrf;
    expect(auth.authenticateApi(req(undefined), '/v0/beads')).toBeUndefined();
    expect(auth.authenticateApi(req(op), '/v0/beads')?.name).toBe('admin');
    const post = (headers: Record<string, string>) =>
      auth.authenticateApi(req(op, { method: 'POST', headers }), '/v0/sessions/x/nudge');
    expect(() => post({})).toThrow(/CSRF/);
    expect(() => post({ 'x-gc-csrf': 'wrong' })).toThrow(/CSRF/);
    expect(post({ 'x-gc-csrf': csrf })?.name).toBe('admin');
    expect(post({ 'x-gc-csrf': csrf, origin: 'http://127.0.0.1:8080' })?.name).toBe('admin');
    expect(() => post({ 'x-gc-csrf': csrf, origin: 'http://evil.example' })).toThrow(
      /cross-origin/,
    );
    expect(() => post({ 'x-gc-csrf': csrf, 'sec-fetch-site': 'cross-site' })).toThrow(/cross-site/);

    const view = auth.redeem(auth.mint(admin, 'viewer', 1).token).cookie;
    const vcsrf = auth.session(req(view))!.csrf;
    expect(auth.authenticateApi(req(view), '/v0/beads')?.name).toBe('admin');
    expect(() => auth.authenticateApi(req(view), '/v0/mail/inbox')).toThrow(ForbiddenError);
    expect(() => auth.authenticateApi(req(view), '/v0/keys')).toThrow(ForbiddenError);
    expect(() =>
      auth.authenticateApi(
        req(view, { method: 'POST', headers: { 'x-gc-csrf': vcsrf } }),
        '/v0/beads',
      ),
    ).toThrow(/may only look/);
  });
});
