/**
 * Fan-outs to a pool: a mail notify and a sling nudge reach every session
 * of the pool through one batched provider call (nudgeMany), not one call
 * per session.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { readAdminKey } from '../src/city/index.js';
import { FakeProvider } from '../src/runtime/index.js';
import { CONFIG_HOME } from './helpers/cli.js';
import { apiCall } from './helpers/http.js';
import { waitFor } from './helpers/wait.js';

let root: string;
let server: CityServer;
let admin: string;
let fake: FakeProvider;
const pool = ['w-1', 'w-2', 'w-3', 'w-4'];

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-fanout-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "fan"\n[daemon]\npatrol_interval = "100ms"\n' +
      '[[agent]]\nname = "w"\nstart_command = "sleep 600"\nmin_active_sessions = 4\nmax_active_sessions = 4\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  admin = readAdminKey(root)!;
  expect(server.provider).toBeInstanceOf(FakeProvider);
  fake = server.provider as FakeProvider;
  await waitFor(async () => (await fake.listRunning('w-')).length === pool.length, 'the pool runs');
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

const api = (method: string, url: string, body: Record<string, unknown>) =>
  apiCall({ socketPath: server.socketPath }, method, url, { token: admin, body });

describe('fan-outs to a pool', () => {
  it('mail to a pool nudges all its sessions with one provider call', async () => {
    const before = fake.calls.length;
    const r = await api('POST', '/v0/mail', { to: 'w', subject: 'hi', body: 'b', notify: true });
    expect(r.status, r.text).toBe(200);
    expect([...(r.body.notified as string[])].sort()).toEqual(pool);
    const calls = fake.calls.slice(before);
    expect(calls.filter((c) => c.op === 'nudge')).toEqual([]);
    const many = calls.filter((c) => c.op === 'nudgeMany');
    expect(many).toHaveLength(1);
    expect(many[0]!.name.split(',').sort()).toEqual(pool);
    expect(String(many[0]!.args[0])).toMatch(/You have mail from .*: hi/);
  });

  it('a sling with nudge reaches every session of the pool with one provider call', async () => {
    const bead = await api('POST', '/v0/beads', { title: 'work' });
    expect(bead.status, bead.text).toBe(200);
    const before = fake.calls.length;
    const r = await api('POST', '/v0/sling', { target: 'w', bead: bead.body.id, nudge: true });
    expect(r.status, r.text).toBe(200);
    const many = fake.calls.slice(before).filter((c) => c.op.startsWith('nudge'));
    expect(many.map((c) => c.op)).toEqual(['nudgeMany']);
    expect(many[0]!.name.split(',').sort()).toEqual(pool);
  });
});
