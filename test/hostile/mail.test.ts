/**
 * Mailbox abuse: one agent cannot fill another's mailbox for everyone (a
 * per-sender bound), mail from the city itself always gets through, and a
 * send that fails changes nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../../src/server/index.js';
import { readAdminKey } from '../../src/city/index.js';
import { CONFIG_HOME } from '../helpers/cli.js';
import { apiCall } from '../helpers/http.js';

let root: string;
let server: CityServer;
let admin: string;
let spammer: string;
let friend: string;

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-mailabuse-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "mb"\n[daemon]\npatrol_interval = "1h"\n[mail]\nmax_unread = 10\nmax_unread_per_sender = 3\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  admin = readAdminKey(root)!;
  spammer = (await server.keys.create({ kind: 'agent', name: 'spammer' })).token;
  friend = (await server.keys.create({ kind: 'agent', name: 'friend' })).token;
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

const send = (token: string, body: Record<string, unknown>, actor?: string) =>
  apiCall({ socketPath: server.socketPath }, 'POST', '/v0/mail', {
    token,
    body: { body: '', ...body },
    ...(actor ? { actor } : {}),
  });
const unread = async () => (await server.mail.count('victim')).unread;

describe('mailbox bounds', () => {
  it('one sender fills only its share; others and the city still get through', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await send(spammer, { to: 'victim', subject: `spam ${i}` })).status).toBe(200);
    }
    const refused = await send(spammer, { to: 'victim', subject: 'spam 4' });
    expect(refused.status).toBe(409);
    expect(refused.body.error?.message).toMatch(/spammer already has 3 unread/);
    expect((await send(friend, { to: 'victim', subject: 'hello' })).status).toBe(200);
    // Fill the box to its total bound with other senders (the admin acts as them).
    for (let i = 0; (await unread()) < 10; i++) {
      expect((await send(admin, { to: 'victim', subject: `x${i}` }, `sender-${i}`)).status).toBe(
        200,
      );
    }
    expect((await send(friend, { to: 'victim', subject: 'full' })).status).toBe(409);
    // The city's own notices are never refused.
    const notice = await send(admin, { to: 'victim', subject: 'your merge landed' }, 'refinery');
    expect(notice.status).toBe(200);
    expect(await unread()).toBe(11);
  });

  it('a send that fails stores nothing', async () => {
    const before = await server.ops.store.count({ type: 'message' });
    const bad = await send(admin, { to: 'bad name', subject: 's', notify: true });
    expect(bad.status).toBe(400);
    expect(await server.ops.store.count({ type: 'message' })).toBe(before);
    // A recipient that cannot be a session: stored, answered, nobody to nudge.
    const odd = await send(admin, { to: 'team.alpha', subject: 's', notify: true });
    expect(odd.status, odd.text).toBe(200);
    expect(odd.body.notified).toEqual([]);
  });
});

describe('create quotas', () => {
  it('an agent key creating beads and mail too fast gets 429s; staff keys do not', async () => {
    const qroot = await mkdtemp(path.join(os.tmpdir(), 'gc-quota-'));
    await writeFile(
      path.join(qroot, 'city.toml'),
      '[workspace]\nname = "q"\n[daemon]\npatrol_interval = "1h"\n[api]\nagent_creates_per_s = 0.01\nagent_creates_burst = 3\n',
    );
    const city = await CityServer.start({
      root: qroot,
      sessionProvider: 'fake',
      log: () => undefined,
    });
    try {
      const t = (await city.keys.create({ kind: 'agent', name: 'flooder' })).token;
      const post = (url: string, token: string, body: unknown) =>
        apiCall({ socketPath: city.socketPath }, 'POST', url, { token, body });
      for (let i = 0; i < 3; i++) {
        expect((await post('/v0/beads', t, { title: `b${i}` })).status).toBe(200);
      }
      const over = await post('/v0/beads', t, { title: 'one too many' });
      expect(over.status).toBe(429);
      expect(over.headers['retry-after']).toBeDefined();
      expect((await post('/v0/mail', t, { to: 'x', body: 'hi' })).status).toBe(429);
      const staff = readAdminKey(qroot)!;
      for (let i = 0; i < 5; i++) {
        expect((await post('/v0/beads', staff, { title: `s${i}` })).status).toBe(200);
      }
    } finally {
      await city.stop('test');
      await rm(qroot, { recursive: true, force: true });
    }
  });
});

describe('mail subjects in the event log', () => {
  it('an agent sees its own mail events in full and only ids and names of others', async () => {
    const secret = `private plan ${Date.now()}`;
    expect((await send(friend, { to: 'spammer', subject: secret })).status).toBe(200);
    expect((await send(admin, { to: 'friend', subject: `${secret} 2` }, 'bob')).status).toBe(200);
    const events = async (token: string) => {
      const r = await apiCall({ socketPath: server.socketPath }, 'GET', '/v0/events?limit=1000', {
        token,
      });
      expect(r.status).toBe(200);
      return (r.body.items as { type: string; actor: string; payload?: { to?: string } }[]).filter(
        (e) => e.type === 'mail.sent',
      );
    };
    const outsider = (await server.keys.create({ kind: 'agent', name: 'outsider' })).token;
    const seen = await events(outsider);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(seen)).not.toContain(secret);
    expect(seen.some((e) => e.actor === 'friend' && e.payload?.to === 'spammer')).toBe(true);
    // The sender and the recipient see the subject; so do the admin and operators.
    expect(JSON.stringify(await events(friend))).toContain(secret);
    expect(JSON.stringify(await events(spammer))).toContain(secret);
    expect(JSON.stringify(await events(admin))).toContain(secret);
    // The live stream redacts the same way.
    const streamed = await new Promise<string>((resolve, reject) => {
      const sock = connect(server.socketPath);
      let text = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no mail.sent events on the stream: ${text.slice(0, 500)}`));
      }, 10_000);
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        text += d.toString();
        if ((text.match(/event: mail\.sent/g) ?? []).length >= 2) {
          clearTimeout(timer);
          sock.destroy();
          resolve(text);
        }
      });
      sock.write(
        `GET /v0/events/stream?after_seq=0 HTTP/1.1\r\nHost: gc\r\nAuthorization: Bearer ${outsider}\r\n\r\n`,
      );
    });
    expect(streamed).not.toContain(secret);
  });
});
