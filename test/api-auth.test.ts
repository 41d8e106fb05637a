/**
 * The city API's authentication and scopes, over the real socket of a real
 * city server (fake session provider, real SQLite store and JSONL events).
 */
import { request } from 'node:http';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { adminKeyPath, readAdminKey } from '../src/city/index.js';
import type { FakeProvider } from '../src/runtime/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

let root = '';
let server: CityServer;
let admin = '';

function call(
  method: string,
  url: string,
  opts: { token?: string | undefined; actor?: string; body?: unknown; raw?: string } = {},
): Promise<Reply> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: path.join(root, '.gc', 'gc.sock'),
        method,
        path: url,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.actor ? { 'x-gc-actor': opts.actor } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Reply['body']) : {},
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-api-'));
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]
name = "apitest"
[daemon]
patrol_interval = "1h"
[api]
rate_per_s = 20
rate_burst = 40
[[agent]]
name = "w"
start_command = "sleep 600"
max_active_sessions = 2
[[agent]]
name = "sec"
start_command = "sleep 600"
max_active_sessions = 2
`,
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  admin = readAdminKey(root)!;
});

afterAll(async () => {
  await server.stop('test done');
  await rm(root, { recursive: true, force: true });
});

describe('API authentication', () => {
  it('the admin key file is outside the city and mode 0600', async () => {
    const file = adminKeyPath(root);
    expect(file.startsWith(root)).toBe(false);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(admin).toMatch(/^gck_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
  });

  it('no key, a malformed key, a wrong secret and a revoked key are 401', async () => {
    expect((await call('GET', '/v0/status')).status).toBe(401);
    expect((await call('GET', '/v0/status', { token: 'nonsense' })).status).toBe(401);
    const wrong = admin.slice(0, -4) + 'AAAA';
    const r = await call('GET', '/v0/status', { token: wrong });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('unauthenticated');
    const op = await call('POST', '/v0/keys', {
      token: admin,
      body: { kind: 'operator', name: 'ops' },
    });
    expect(op.status).toBe(200);
    const token = op.body.token as string;
    expect((await call('GET', '/v0/status', { token })).status).toBe(200);
    const keyId = (op.body.principal as { key_id: string }).key_id;
    expect((await call('DELETE', `/v0/keys/${keyId}`, { token: admin })).status).toBe(200);
    expect((await call('GET', '/v0/status', { token })).status).toBe(401);
  });

  it('keys and secrets never reach the event log', async () => {
    // Every kind of token, made here: an operator key, a registered agent's
    // key, and a session's token issued by the controller (then revoked).
    const op = await call('POST', '/v0/keys', {
      token: admin,
      body: { kind: 'operator', name: 'secret-op' },
    });
    expect(op.status).toBe(200);
    const reg = await call('POST', '/v0/agents', { token: admin, body: { name: 'secret-bot' } });
    expect(reg.status).toBe(200);
    await call('POST', '/v0/beads', {
      token: admin,
      body: { title: 'secret work', metadata: { 'gc.routed_to': 'sec' } },
    });
    await server.controller.tick();
    const fake = server.provider as FakeProvider;
    const session = fake.configOf('sec-1')?.env?.GC_TOKEN;
    expect(session).toMatch(/^gck_/);
    fake.kill('sec-1', 1);
    await server.controller.tick();
    const tokens = [admin, op.body.token as string, reg.body.token as string, session!];
    const ev = await call('GET', '/v0/events?limit=10000', { token: admin });
    expect((ev.body.items as unknown[]).length).toBeGreaterThan(3);
    const text = JSON.stringify(ev.body);
    for (const t of tokens) {
      expect(t).toMatch(/^gck_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      // The secret is everything after gck_<12-char id>_ (it may itself hold '_').
      expect(text).not.toContain(t.slice('gck_'.length + 12 + 1));
    }
    expect(text).not.toMatch(/gck_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/);
  });
});

describe('agent scopes', () => {
  let a1 = '';
  let a2 = '';
  beforeAll(async () => {
    a1 = (await server.keys.create({ kind: 'agent', name: 'ext-1' })).token;
    a2 = (await server.keys.create({ kind: 'agent', name: 'ext-2' })).token;
  });

  it('an agent acts only as itself', async () => {
    const bead = await call('POST', '/v0/beads', { token: admin, body: { title: 'x' } });
    const id = bead.body.id as string;
    const as2 = await call('POST', `/v0/beads/${id}/claim`, { token: a1, actor: 'ext-2' });
    expect(as2.status).toBe(403);
    expect(as2.body.error?.message).toMatch(/only the admin key may set X-GC-Actor/);
    const mine = await call('POST', `/v0/beads/${id}/claim`, { token: a1 });
    expect(mine.status).toBe(200);
    expect(mine.body.assignee).toBe('ext-1');
  });

  it('an agent closes and updates only beads it holds', async () => {
    const id = (await call('POST', '/v0/beads', { token: admin, body: { title: 'y' } })).body
      .id as string;
    await call('POST', `/v0/beads/${id}/claim`, { token: a1 });
    const other = await call('POST', `/v0/beads/${id}/close`, { token: a2, body: {} });
    expect(other.status).toBe(403);
    expect(
      (await call('PATCH', `/v0/beads/${id}`, { token: a2, body: { title: 'z' } })).status,
    ).toBe(403);
    expect(
      (await call('POST', `/v0/beads/${id}/unclaim`, { token: a2, body: { force: true } })).status,
    ).toBe(403);
    const own = await call('POST', `/v0/beads/${id}/close`, {
      token: a1,
      body: { reason: 'done' },
    });
    expect(own.status).toBe(200);
  });

  it('an agent can never stop, reload or suspend the city, kill sessions or make keys', async () => {
    for (const [method, url] of [
      ['POST', '/v0/control/stop'],
      ['POST', '/v0/control/reload'],
      ['POST', '/v0/control/suspend'],
      ['POST', '/v0/sessions/w-1/kill'],
      ['POST', '/v0/keys'],
      ['GET', '/v0/keys'],
      ['POST', '/v0/agents'],
    ] as const) {
      const r = await call(method, url, {
        token: a1,
        ...(method === 'POST' ? { body: { kind: 'admin', name: 'evil' } } : {}),
      });
      expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBe(403);
      expect(r.body.error?.code).toBe('forbidden');
    }
    expect((await call('GET', '/v0/ping', { token: admin })).status).toBe(200);
  });

  it("an agent's gc stop (CLI with GC_TOKEN) is refused and the city keeps running", async () => {
    const r = await gcBuilt(['--city', root, 'stop'], {
      env: { GC_TOKEN: a1, GC_SESSION_NAME: 'ext-1' },
    });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/may not stop the city/);
    expect((await call('GET', '/v0/ping', { token: admin })).body.state).toBe('running');
  });
});

describe('registry, session tokens, limits', () => {
  it('operators register external agents; the registry pages in registration order', async () => {
    const op = (
      await call('POST', '/v0/keys', {
        token: admin,
        body: { kind: 'operator', name: 'tenant', max_sessions: 3 },
      })
    ).body.token as string;
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call('POST', '/v0/agents', {
        token: op,
        body: { name: `bot-${i}`, webhook_url: 'https://example.com/hook' },
      });
      expect(r.status).toBe(200);
      names.push(`bot-${i}`);
      const t = r.body.token as string;
      expect((await call('GET', '/v0/hook', { token: t })).body.actor).toBe(`bot-${i}`);
    }
    const bad = await call('POST', '/v0/agents', {
      token: op,
      body: { name: 'web', webhook_url: 'http://x' },
    });
    expect(bad.status).toBe(400);
    const taken = await call('POST', '/v0/agents', { token: op, body: { name: 'bot-1' } });
    expect(taken.status).toBe(400);
    const seen: string[] = [];
    let after = 0;
    for (;;) {
      const page = await call('GET', `/v0/agents?limit=2&after=${after}`, { token: op });
      const items = page.body.items as { name: string; owner: string }[];
      seen.push(...items.map((x) => x.name));
      expect(items.every((x) => x.owner === 'tenant')).toBe(true);
      if (page.body.next_after === null) break;
      after = page.body.next_after as number;
    }
    expect(seen).toEqual(names);
  });

  it('each session gets its own token, revoked when the session ends', async () => {
    const fake = server.provider as FakeProvider;
    await call('POST', '/v0/beads', {
      token: admin,
      body: { title: 'work', metadata: { 'gc.routed_to': 'w' } },
    });
    await server.controller.tick();
    const token = fake.configOf('w-1')?.env?.GC_TOKEN;
    expect(token).toMatch(/^gck_/);
    const hook = await call('GET', '/v0/hook', { token });
    expect(hook.body.actor).toBe('w-1');
    fake.kill('w-1', 1);
    await server.controller.tick();
    expect((await call('GET', '/v0/hook', { token })).status).toBe(401);
    const fresh = fake.configOf('w-1')?.env?.GC_TOKEN;
    expect(fresh).not.toBe(token);
    expect((await call('GET', '/v0/hook', { token: fresh })).status).toBe(200);
  });

  it('bad bodies are 400 or 413 and the server keeps serving', async () => {
    const bad = await call('POST', '/v0/beads', { token: admin, raw: '{"title": ' });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toMatch(/request body: not JSON/);
    const arr = await call('POST', '/v0/beads', { token: admin, raw: '[1,2]' });
    expect(arr.status).toBe(400);
    const big = await call('POST', '/v0/beads', {
      token: admin,
      raw: JSON.stringify({ title: 'x'.repeat(1_100_000) }),
    });
    expect(big.status).toBe(413);
    expect((await call('GET', '/v0/ping', { token: admin })).status).toBe(200);
  });

  it('a principal over its rate gets 429 with Retry-After; others are not affected', async () => {
    const t = (await server.keys.create({ kind: 'agent', name: 'chatty' })).token;
    const replies = await Promise.all(
      Array.from({ length: 60 }, () => call('GET', '/v0/ping', { token: t })),
    );
    const limited = replies.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.body.error?.code).toBe('rate_limited');
    expect((await call('GET', '/v0/ping', { token: admin })).status).toBe(200);
  });
});

describe('gc auth (CLI)', () => {
  it('creates, lists and revokes keys; registers and lists agents', async () => {
    const g = (...args: string[]) => gcBuilt(['--city', root, ...args]);
    const created = await g(
      'auth',
      'key',
      'create',
      '--kind',
      'operator',
      '--name',
      'cli-op',
      '--json',
    );
    expect(created.code, created.stderr).toBe(0);
    const { token, principal } = JSON.parse(created.stdout) as {
      token: string;
      principal: { key_id: string };
    };
    expect((await call('GET', '/v0/status', { token })).status).toBe(200);
    const list = await g('auth', 'key', 'list', '--kind', 'operator', '--json');
    expect((JSON.parse(list.stdout) as { key_id: string }[]).map((k) => k.key_id)).toContain(
      principal.key_id,
    );
    expect(list.stdout).not.toContain(token.slice('gck_'.length + 12 + 1));
    const revoked = await g('auth', 'key', 'revoke', principal.key_id);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await call('GET', '/v0/status', { token })).status).toBe(401);
    const reg = await g('auth', 'agent', 'register', 'cli-bot', '--json');
    expect(reg.code, reg.stderr).toBe(0);
    const agents = await g('auth', 'agent', 'list', '--json');
    expect((JSON.parse(agents.stdout) as { name: string }[]).map((a) => a.name)).toContain(
      'cli-bot',
    );
    const bad = await g('auth', 'key', 'create', '--kind', 'agent', '--name', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/kind/);
  });
});
