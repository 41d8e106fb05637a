/**
 * The city API route by route, over a real server (subprocess sessions,
 * SQLite store, JSONL events) on its socket and on TCP: schemas and the
 * OpenAPI document, idempotent retries (across a restart too), mail with
 * its scopes, webhook pushes over real HTTPS, runs with streamed output and
 * limits, session pages, SSE resume, and a fuzz of malformed requests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { readAdminKey } from '../src/city/index.js';
import { RemoteCity } from '../src/client/index.js';
import { CONFIG_HOME } from './helpers/cli.js';
import { selfSignedCert } from './helpers/tls.js';
import { apiCall, freePort, readSse, type CallOptions } from './helpers/http.js';
import { until, waitFor } from './helpers/wait.js';

let root = '';
let server: CityServer;
let admin = '';
let port = 0;
let tls: { cert: string; key: string };
const sock = () => ({ socketPath: path.join(root, '.gc', 'gc.sock') });
const call = (method: string, url: string, opts: CallOptions = {}) =>
  apiCall(sock(), method, url, { token: admin, ...opts });

async function startServer(): Promise<CityServer> {
  return CityServer.start({
    root,
    sessionProvider: 'subprocess',
    stopGraceMs: 200,
    log: () => undefined,
    webhookCa: tls.cert,
  });
}

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-routes-'));
  tls = selfSignedCert();
  port = await freePort();
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]
name = "routes"
[daemon]
patrol_interval = "1h"
[api]
port = ${port}
max_runs = 3
rate_per_s = 100000
rate_burst = 100000
[mail]
max_unread = 5
webhook_allow_private = true
[[agent]]
name = "echo"
start_command = "echo \\"prompt: $GC_RUN_PROMPT\\"; for i in 1 2 3; do echo line-$i; sleep 0.2; done"
max_active_sessions = 0
env = { SERVICE_TOKEN = "s3cret-value" }
[[agent]]
name = "sleeper"
start_command = "sleep 600"
max_active_sessions = 0
[[agent]]
name = "pager"
start_command = "sleep 600"
min_active_sessions = 3
max_active_sessions = 3
`,
  );
  server = await startServer();
  admin = readAdminKey(root)!;
});

afterAll(async () => {
  await server.stop('test done');
  await rm(root, { recursive: true, force: true });
});

/** Register an external agent; returns its token. */
async function agent(name: string, webhook?: string): Promise<string> {
  const r = await call('POST', '/v0/agents', {
    body: { name, ...(webhook ? { webhook_url: webhook } : {}) },
  });
  expect(r.status, r.text).toBe(200);
  return r.body.token as string;
}

describe('transport, schemas, OpenAPI', () => {
  it('serves the same API on TCP when [api] port is set, with keys required', async () => {
    const tcp = { host: '127.0.0.1', port };
    expect((await apiCall(tcp, 'GET', '/v0/ping')).status).toBe(401);
    const r = await apiCall(tcp, 'GET', '/v0/ping', { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.city).toBe('routes');
    expect(server.tcpAddress).toBe(`127.0.0.1:${port}`);
  });

  it('publishes an OpenAPI 3 document generated from the request schemas', async () => {
    const r = await call('GET', '/v0/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.body as unknown as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              content: Record<
                string,
                { schema: { properties?: Record<string, unknown>; required?: string[] } }
              >;
            };
            parameters?: { name: string; in: string }[];
          }
        >
      >;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const create = doc.paths['/v0/beads']!.post!;
    const schema = create.requestBody!.content['application/json']!.schema;
    expect(schema.required).toContain('title');
    expect(Object.keys(schema.properties!)).toEqual(
      expect.arrayContaining(['title', 'labels', 'needs']),
    );
    expect(doc.paths['/v0/mail']!.post!.requestBody).toBeDefined();
    expect(doc.paths['/v0/beads/{id}/claim']!.post!.parameters!.map((p) => p.name)).toEqual(
      expect.arrayContaining(['id', 'Idempotency-Key']),
    );
    expect(doc.paths['/v0/beads']!.get!.parameters!.map((p) => p.name)).toEqual(
      expect.arrayContaining(['status', 'limit', 'cursor']),
    );
    expect(Object.keys(doc.paths).length).toBeGreaterThan(40);
  });

  it('every body is validated: the error names the field', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/v0/beads', {}, /body\.title/],
      ['POST', '/v0/beads', { title: 5 }, /body\.title/],
      ['POST', '/v0/beads', { title: 't', priority: 9 }, /body\.priority/],
      ['POST', '/v0/beads', { title: 't', labels: 'x' }, /body\.labels/],
      ['POST', '/v0/beads', { title: 't', bogus: 1 }, /unknown field bogus/],
      ['POST', '/v0/beads/claim-next', { lease_ms: -1 }, /body\.lease_ms/],
      ['POST', '/v0/mail', { to: 'a b', body: '' }, /body\.to/],
      ['POST', '/v0/mail', { to: 'x' }, /body\.body/],
      ['POST', '/v0/sling', { target: 'echo' }, /body\.bead/],
      ['POST', '/v0/keys', { kind: 'god', name: 'x' }, /body\.kind/],
      ['POST', '/v0/runs', { template: 'echo' }, /body\.prompt/],
      ['POST', '/v0/control/poke', { surprise: true }, /takes no body fields/],
    ];
    for (const [method, url, body, where] of cases) {
      const r = await call(method, url, { body });
      expect(r.status, `${method} ${url} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error!.message).toMatch(where);
    }
    const q = await call('GET', '/v0/beads?limit=abc&status=open');
    expect(q.status).toBe(400);
    expect(q.body.error!.message).toMatch(/query\.limit/);
  });

  it('redacts secrets from the config route and refuses agents', async () => {
    const r = await call('GET', '/v0/config');
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('s3cret-value');
    expect(r.text).toContain('[redacted]');
    const token = await agent('cfg-reader');
    expect((await call('GET', '/v0/config', { token })).status).toBe(403);
  });
});

describe('events of your own', () => {
  it("an agent records events as itself only, never one of gc's types", async () => {
    const token = await agent('emitter');
    const ok = await call('POST', '/v0/events', {
      token,
      body: { type: 'build.passed', subject: 'app', payload: { n: 1 } },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ type: 'build.passed', actor: 'emitter', payload: { n: 1 } });
    const forged = await call('POST', '/v0/events', {
      token,
      body: { type: 'build.passed', actor: 'mayor' },
    });
    expect(forged.status).toBe(400);
    for (const type of ['bead.closed', 'session.crashed', 'controller.stopped', 'mail:sent']) {
      const r = await call('POST', '/v0/events', { token, body: { type } });
      expect(r.status, type).toBe(400);
      expect(JSON.stringify(r.body)).toMatch(/gc's own/);
    }
    const mine = await call('GET', '/v0/events?actor=emitter');
    expect((mine.body.items as { type: string }[]).map((e) => e.type)).toEqual(['build.passed']);
  });
});

describe('beads and sessions', () => {
  it('agents create as themselves; only staff delete; sessions are looked up by name', async () => {
    const token = await agent('maker');
    const made = await call('POST', '/v0/beads', {
      token,
      body: { title: 'mine', from: 'someone-else' },
    });
    expect(made.body.from).toBe('maker');
    const id = made.body.id as string;
    expect((await call('DELETE', `/v0/beads/${id}`, { token })).status).toBe(403);
    expect((await call('DELETE', `/v0/beads/${id}`)).status).toBe(200);
    expect((await call('GET', `/v0/beads/${id}`)).status).toBe(404);
    const ev = await call('GET', `/v0/events?type=bead.deleted&subject=${id}`);
    expect((ev.body.items as unknown[]).length).toBe(1);
    expect((await call('GET', '/v0/sessions/nobody-here')).status).toBe(404);
    expect((await call('GET', '/v0/sessions/bad..name')).status).toBe(400);
  });
});

describe('idempotent writes', () => {
  it('a retried POST with the same key is answered once, then replayed', async () => {
    const key = `k-${randomBytes(6).toString('hex')}`;
    const headers = { 'idempotency-key': key };
    const a = await call('POST', '/v0/beads', { body: { title: 'once' }, headers });
    const b = await call('POST', '/v0/beads', { body: { title: 'once' }, headers });
    expect(a.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers['idempotent-replayed']).toBe('true');
    const other = await call('POST', '/v0/beads', { body: { title: 'different' }, headers });
    expect(other.status).toBe(400);
    expect(other.body.error!.message).toMatch(/Idempotency-Key/);
    // Errors are kept too: a claim that lost stays lost on retry.
    const bad = await call('POST', '/v0/beads/nope-1/close', {
      body: {},
      headers: { 'idempotency-key': `${key}-2` },
    });
    const bad2 = await call('POST', '/v0/beads/nope-1/close', {
      body: {},
      headers: { 'idempotency-key': `${key}-2` },
    });
    expect([bad.status, bad2.status]).toEqual([404, 404]);
    expect(bad2.headers['idempotent-replayed']).toBe('true');
    // Keys are per API key: another principal's same key is a new request.
    const token = await agent(`idem-${randomBytes(3).toString('hex')}`);
    const c = await call('POST', '/v0/beads', { token, body: { title: 'once' }, headers });
    expect(c.body.id).not.toBe(a.body.id);
    const list = await call('GET', `/v0/beads?status=open&limit=1000`);
    expect((list.body.items as { title: string }[]).filter((x) => x.title === 'once')).toHaveLength(
      2,
    );
  });
});

describe('mail over the API', () => {
  it('send, inbox, check, read, reply, thread, mark, archive, delete, count, as agents', async () => {
    const a = await agent('mail-a');
    const b = await agent('mail-b');
    const sent = await call('POST', '/v0/mail', {
      token: a,
      body: { to: 'mail-b', subject: 'hello', body: 'first ✓' },
    });
    expect(sent.status, sent.text).toBe(200);
    expect(sent.body).toMatchObject({ from: 'mail-a', to: 'mail-b', read: false, pushed: false });
    const id = sent.body.id as string;
    expect((await call('GET', '/v0/mail/count', { token: b })).body).toEqual({
      total: 1,
      unread: 1,
    });
    expect(
      ((await call('GET', '/v0/mail/check', { token: b })).body.items as unknown[]).length,
    ).toBe(1);
    const inbox = await call('GET', '/v0/mail/inbox', { token: b });
    expect(
      (inbox.body.items as { id: string; read: boolean }[]).map((m) => [m.id, m.read]),
    ).toEqual([[id, true]]);
    expect(
      ((await call('GET', '/v0/mail/inbox', { token: b })).body.items as unknown[]).length,
    ).toBe(0);
    expect((await call('POST', `/v0/mail/${id}/mark-unread`, { token: b })).body.read).toBe(false);
    expect((await call('POST', `/v0/mail/${id}/read`, { token: b })).body.read).toBe(true);
    const reply = await call('POST', `/v0/mail/${id}/reply`, {
      token: b,
      body: { body: 'got it' },
    });
    expect(reply.body).toMatchObject({
      from: 'mail-b',
      to: 'mail-a',
      thread_id: id,
      reply_to: id,
      subject: 'Re: hello',
    });
    const thread = await call('GET', `/v0/mail/${id}/thread`, { token: a });
    expect((thread.body.items as { id: string }[]).map((m) => m.id)).toEqual([id, reply.body.id]);
    expect((await call('POST', `/v0/mail/${id}/archive`, { token: b })).body.archived).toBe(true);
    const again = await call('POST', `/v0/mail/${id}/archive`, { token: b });
    expect(again.status).toBe(409);
    expect((await call('DELETE', `/v0/mail/${reply.body.id as string}`, { token: a })).status).toBe(
      200,
    );
    expect((await call('GET', `/v0/mail/${reply.body.id as string}`)).status).toBe(404);
  });

  it('agents read only their own mail and send only as themselves', async () => {
    const a = await agent('scope-a');
    const b = await agent('scope-b');
    await agent('scope-c');
    const m = await call('POST', '/v0/mail', {
      token: a,
      body: { to: 'scope-b', body: 'private' },
    });
    const id = m.body.id as string;
    expect((await call('GET', '/v0/mail/inbox?agent=scope-b', { token: a })).status).toBe(403);
    expect((await call('GET', '/v0/mail/count?agent=scope-b', { token: a })).status).toBe(403);
    // Agents see no registry; staff see the ones just registered.
    expect((await call('GET', '/v0/agents?limit=1000', { token: a })).status).toBe(403);
    const registered = (await call('GET', '/v0/agents?limit=1000')).body.items as {
      name: string;
    }[];
    expect(registered.map((r) => r.name)).toEqual(
      expect.arrayContaining(['scope-a', 'scope-b', 'scope-c']),
    );
    const stranger = await agent('scope-d');
    expect((await call('GET', `/v0/mail/${id}`, { token: stranger })).status).toBe(403);
    expect((await call('POST', `/v0/mail/${id}/archive`, { token: a })).status).toBe(403); // sender, not recipient
    expect((await call('POST', `/v0/mail/${id}/read`, { token: stranger })).status).toBe(403);
    expect((await call('GET', `/v0/mail/${id}`, { token: a })).status).toBe(200);
    const spoof = await call('POST', '/v0/mail', {
      token: a,
      actor: 'scope-b',
      body: { to: 'scope-c', body: 'x' },
    });
    expect(spoof.status).toBe(403);
    // Admin reads any mailbox.
    expect(
      ((await call('GET', '/v0/mail/check?agent=scope-b')).body.items as unknown[]).length,
    ).toBe(1);
    expect((await call('GET', '/v0/mail/check', { token: b })).status).toBe(200);
  });

  it('a full inbox refuses the send with 409 and keeps every message', async () => {
    const a = await agent('full-a');
    await agent('full-b');
    for (let i = 0; i < 5; i++) {
      expect(
        (await call('POST', '/v0/mail', { token: a, body: { to: 'full-b', body: `${i}` } })).status,
      ).toBe(200);
    }
    const r = await call('POST', '/v0/mail', {
      token: a,
      body: { to: 'full-b', body: 'overflow' },
    });
    expect(r.status).toBe(409);
    expect(r.body.error!.message).toMatch(/inbox of full-b is full/);
    expect((await call('GET', '/v0/mail/count?agent=full-b')).body).toEqual({
      total: 5,
      unread: 5,
    });
    const big = await call('POST', '/v0/mail', {
      token: a,
      body: { to: 'full-a', body: 'x'.repeat(64 * 1024 + 1) },
    });
    expect(big.status).toBe(400);
  });

  it('pushes mail to a registered webhook over HTTPS and marks it read; failures leave it in the inbox', async () => {
    const got: { id: string; body: string }[] = [];
    let fail = false;
    const hook: HttpsServer = createHttps({ key: tls.key, cert: tls.cert }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (fail) return void res.writeHead(400).end();
        got.push({ id: String(req.headers['x-gc-message-id']), body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(hook.address() as AddressInfo).port}/inbox?secret=zzz`;
      await agent('hooked', url);
      const sender = await agent('hook-sender');
      const sent = await call('POST', '/v0/mail', {
        token: sender,
        body: { to: 'hooked', subject: 'push me', body: 'b' },
      });
      expect(sent.body.pushed).toBe(true);
      const id = sent.body.id as string;
      await waitFor(
        async () => (await call('GET', `/v0/mail/${id}`)).body.read === true,
        'the pushed message to be marked read',
      );
      expect(got.map((g) => g.id)).toEqual([id]);
      expect((JSON.parse(got[0]!.body) as { message: { subject: string } }).message.subject).toBe(
        'push me',
      );
      expect((await call('GET', `/v0/mail/${id}`)).body.read).toBe(true);
      fail = true;
      const kept = await call('POST', '/v0/mail', {
        token: sender,
        body: { to: 'hooked', body: 'stays' },
      });
      const keptId = kept.body.id as string;
      await waitFor(async () => {
        const ev = await call('GET', `/v0/events?type=mail.push_failed&subject=${keptId}`);
        return (ev.body.items as unknown[]).length > 0;
      }, 'a mail.push_failed event');
      expect((await call('GET', `/v0/mail/${keptId}`)).body.read).toBe(false);
      const events = await call('GET', '/v0/events?type=mail.pushed');
      expect(events.text).not.toContain('zzz');
    } finally {
      await new Promise((r) => hook.close(r));
    }
  });
});

describe('sessions and runs', () => {
  it('a run streams its output as SSE, resumable by byte offset, and ends', async () => {
    const r = await call('POST', '/v0/runs', {
      body: { template: 'echo', prompt: 'do the thing' },
    });
    expect(r.status, r.text).toBe(200);
    const id = r.body.id as string;
    const frames = await readSse(sock(), `/v0/runs/${id}/stream`, {
      token: admin,
      until: (f) => f.some((x) => x.event === 'end'),
    });
    const text = frames
      .filter((f) => f.event === 'output')
      .map((f) => f.data as string)
      .join('');
    expect(text).toContain('prompt: do the thing');
    expect(text).toContain('line-3');
    // Resume from the middle: exactly the rest.
    const cut = frames.find((f) => f.event === 'output')!;
    const rest = await readSse(sock(), `/v0/runs/${id}/stream`, {
      token: admin,
      lastEventId: cut.id,
      until: (f) => f.some((x) => x.event === 'end'),
    });
    const first = cut.data as string;
    expect(
      first +
        rest
          .filter((f) => f.event === 'output')
          .map((f) => f.data as string)
          .join(''),
    ).toBe(text);
    const run = await until(
      'the run to end',
      async () => (await call('GET', `/v0/runs/${id}`)).body,
      (r) => r.state !== 'running',
    );
    expect(run).toMatchObject({ state: 'exited', exit_code: 0, template: 'echo' });
  });

  it('limits runs per operator (max_sessions) and city-wide; agents cannot start runs', async () => {
    const op = await call('POST', '/v0/keys', {
      body: { kind: 'operator', name: 'tenant', max_sessions: 1 },
    });
    const opToken = op.body.token as string;
    const first = await call('POST', '/v0/runs', {
      token: opToken,
      body: { template: 'sleeper', prompt: 'p' },
    });
    expect(first.status, first.text).toBe(200);
    const second = await call('POST', '/v0/runs', {
      token: opToken,
      body: { template: 'sleeper', prompt: 'p' },
    });
    expect(second.status).toBe(429);
    expect(second.body.error!.message).toMatch(/max_sessions/);
    expect(second.headers['retry-after']).toBeDefined();
    const a = await call('POST', '/v0/runs', { body: { template: 'sleeper', prompt: 'p' } });
    const b = await call('POST', '/v0/runs', { body: { template: 'sleeper', prompt: 'p' } });
    expect([a.status, b.status]).toEqual([200, 200]);
    const over = await call('POST', '/v0/runs', { body: { template: 'sleeper', prompt: 'p' } });
    expect(over.status).toBe(429);
    expect(over.body.error!.message).toMatch(/max_runs = 3/);
    const token = await agent('run-wannabe');
    expect(
      (await call('POST', '/v0/runs', { token, body: { template: 'sleeper', prompt: 'p' } }))
        .status,
    ).toBe(403);
    // The operator sees only its own runs; the controller left them alone.
    const mine = await call('GET', '/v0/runs', { token: opToken });
    expect((mine.body.items as { id: string }[]).map((x) => x.id)).toEqual([first.body.id]);
    const other = await call('POST', `/v0/runs/${a.body.id as string}/stop`, { token: opToken });
    expect(other.status).toBe(403);
    for (const id of [first.body.id, a.body.id, b.body.id] as string[]) {
      const s = await call('POST', `/v0/runs/${id}/stop`);
      expect(s.body.state).toBe('stopped');
    }
    expect(
      (
        await call('POST', '/v0/runs', {
          token: opToken,
          body: { template: 'sleeper', prompt: 'p' },
        })
      ).status,
    ).toBe(200);
  });

  it('pages sessions by name with a cursor', async () => {
    // The pager pool keeps three sessions; wait for the controller to see them.
    const all = await until(
      'three pager sessions',
      async () => (await call('GET', '/v0/sessions?limit=1000')).body.items as { name: string }[],
      (items) => items.filter((x) => x.name.startsWith('pager-')).length === 3,
    );
    const names = all.map((x) => x.name);
    expect(names).toEqual([...names].sort());
    for (const limit of [1, 2]) {
      const seen: string[] = [];
      let cursor: string | null = '';
      let pages = 0;
      while (cursor !== null) {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const page = await call('GET', `/v0/sessions?limit=${limit}${q}`);
        expect(page.status).toBe(200);
        const items = page.body.items as { name: string }[];
        expect(items.length).toBeLessThanOrEqual(limit);
        seen.push(...items.map((x) => x.name));
        cursor = page.body.next_cursor as string | null;
        pages++;
        if (pages > names.length + 1)
          throw new Error(`the cursor does not advance: ${seen.join(', ')}`);
      }
      expect(seen).toEqual(names);
      expect(pages).toBeGreaterThanOrEqual(Math.ceil(names.length / limit));
    }
    expect((await call('GET', '/v0/sessions?limit=0')).status).toBe(400);
  });
});

describe('event stream', () => {
  it('resumes after a disconnect with Last-Event-ID: nothing lost, nothing twice', async () => {
    const start = (await call('GET', '/v0/events/latest')).body.seq as number;
    for (let i = 0; i < 5; i++) await call('POST', '/v0/beads', { body: { title: `sse-${i}` } });
    const first = await readSse(sock(), `/v0/events/stream?after_seq=${start}`, {
      token: admin,
      until: (f) => f.length >= 3,
    });
    // Written while nobody listens.
    for (let i = 5; i < 10; i++) await call('POST', '/v0/beads', { body: { title: `sse-${i}` } });
    const last = first.at(-1)!.id;
    const total = ((await call('GET', '/v0/events/latest')).body.seq as number) - start;
    const rest = await readSse(sock(), '/v0/events/stream', {
      token: admin,
      lastEventId: last,
      until: (f) => f.length >= total - 3,
    });
    const seqs = [...first, ...rest].map((f) => Number(f.id));
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => start + 1 + i));
    expect(
      (await call('GET', '/v0/events/stream', { headers: { 'last-event-id': 'x' } })).status,
    ).toBe(400);
  });
});

/**
 * A city of its own for a test that stops and restarts its server, so the
 * shared server the other tests use is never replaced under them.
 */
async function restartableCity(): Promise<{
  root: string;
  server: CityServer;
  restart(): Promise<void>;
  call: (method: string, url: string, opts?: CallOptions) => ReturnType<typeof apiCall>;
  close(): Promise<void>;
}> {
  const own = await mkdtemp(path.join(os.tmpdir(), 'gc-routes-restart-'));
  await writeFile(
    path.join(own, 'city.toml'),
    '[workspace]\nname = "restarts"\n[daemon]\npatrol_interval = "1h"\n',
  );
  const start = () =>
    CityServer.start({ root: own, sessionProvider: 'fake', log: () => undefined });
  const city = {
    root: own,
    server: await start(),
    async restart() {
      await city.server.stop('restart test');
      city.server = await start();
    },
    call: (method: string, url: string, opts: CallOptions = {}) =>
      apiCall({ socketPath: path.join(own, '.gc', 'gc.sock') }, method, url, {
        token: readAdminKey(own)!,
        ...opts,
      }),
    async close() {
      await city.server.stop('test done');
      await rm(own, { recursive: true, force: true });
    },
  };
  return city;
}

describe('remote client across a server restart', () => {
  it('calls retry while the server is down; a retried write applies once', async () => {
    const city = await restartableCity();
    try {
      const client = new RemoteCity(
        path.join(city.root, '.gc', 'gc.sock'),
        'restarter',
        city.root,
        readAdminKey(city.root),
        { retryMs: 20_000 },
      );
      await city.server.stop('restart test');
      const pending = client.createBead({ title: 'made during restart' });
      // The write must be in its retry loop (refused at least once) before
      // the server comes back: wait for the refusal, not for a fixed time.
      await waitFor(() => client.retries > 0, 'the client to retry');
      city.server = await CityServer.start({
        root: city.root,
        sessionProvider: 'fake',
        log: () => undefined,
      });
      const bead = await pending;
      expect(bead.title).toBe('made during restart');
      const list = await city.call('GET', '/v0/beads?status=open&limit=1000');
      expect(
        (list.body.items as { title: string }[]).filter((x) => x.title === bead.title),
      ).toHaveLength(1);
    } finally {
      await city.close();
    }
  });

  it('an idempotency key survives the restart', async () => {
    const city = await restartableCity();
    try {
      const headers = { 'idempotency-key': `restart-${randomBytes(4).toString('hex')}` };
      const body = { title: 'kept across restart' };
      const a = await city.call('POST', '/v0/beads', { body, headers });
      await city.restart();
      const b = await city.call('POST', '/v0/beads', { body, headers });
      expect(b.body.id).toBe(a.body.id);
      expect(b.headers['idempotent-replayed']).toBe('true');
    } finally {
      await city.close();
    }
  });
});

describe('fuzz', () => {
  it('thousands of malformed requests get 4xx and the server keeps serving', async () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const routes = [
      ['POST', '/v0/beads'],
      ['PATCH', '/v0/beads/x-1'],
      ['POST', '/v0/beads/claim-next'],
      ['POST', '/v0/beads/x-1/deps'],
      ['POST', '/v0/mail'],
      ['POST', '/v0/mail/m-1/reply'],
      ['POST', '/v0/sling'],
      ['POST', '/v0/keys'],
      ['POST', '/v0/agents'],
      ['POST', '/v0/runs'],
      ['POST', '/v0/sessions/x/nudge'],
      ['GET', '/v0/beads?limit=%ZZ&status=nope'],
      ['GET', '/v0/events?after_seq=-1'],
      ['GET', '/v0/beads/%E0%A4%A'],
    ] as const;
    const bodies = [
      () => '{',
      () => '[]',
      () => 'null',
      () => '"str"',
      () => JSON.stringify({ title: 'x'.repeat(5000) }),
      () => JSON.stringify({ title: { $gt: '' }, priority: 'high' }),
      () => JSON.stringify({ to: '\u0000\u202e', body: 7 }),
      () => JSON.stringify({ target: ['a'], bead: 1e308 }),
      () => JSON.stringify({ name: '../../etc', kind: 'admin', max_sessions: -1 }),
      () => JSON.stringify({ template: 'echo', prompt: '' }),
      () => JSON.stringify({ text: '' }),
      () => '{"title": "\ud800"}'.slice(0, 1 + Math.floor(rnd() * 11)),
      () => randomBytes(1 + Math.floor(rnd() * 200)).toString('latin1'),
      () => JSON.stringify({ __proto__: { admin: true }, constructor: 1 }),
    ];
    const statuses = new Map<number, number>();
    const ok: string[] = [];
    const batch = 50;
    for (let i = 0; i < 2000; i += batch) {
      const replies = await Promise.all(
        Array.from({ length: batch }, () => {
          const [method, url] = pick(routes);
          const raw = method === 'GET' ? undefined : pick(bodies)();
          return call(method, url, { raw } as CallOptions).then(
            (r) => {
              if (r.status < 400) ok.push(`${method} ${url} ${raw} -> ${r.status}`);
              return r;
            },
            (e: Error) => ({ status: -1, text: e.message }),
          );
        }),
      );
      for (const r of replies) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const bad = [...statuses.keys()].filter((s) => s < 400 || s >= 500);
    expect(
      bad,
      `${JSON.stringify(Object.fromEntries(statuses))} ${ok.slice(0, 3).join('; ')}`,
    ).toEqual([]);
    expect((await call('GET', '/v0/ping')).status).toBe(200);
    const tcp = await apiCall({ host: '127.0.0.1', port }, 'GET', '/v0/ping', { token: admin });
    expect(tcp.status).toBe(200);
  });
});
