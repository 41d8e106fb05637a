/**
 * A full disk under a running city server (injected at named points, see
 * core/faults.ts): a request that cannot be committed fails and changes
 * nothing, a retry with the same key then succeeds once, and no failure on
 * the way (an idempotency record that cannot be written, an event log that
 * cannot be appended) escapes and ends the server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../../src/server/index.js';
import { readAdminKey } from '../../src/city/index.js';
import { armFaults } from '../../src/core/index.js';
import { CONFIG_HOME } from '../helpers/cli.js';
import { apiCall } from '../helpers/http.js';

let root: string;
let server: CityServer;
let admin: string;
const lines: string[] = [];
const rejections: unknown[] = [];
const onRejection = (e: unknown) => rejections.push(e);

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-full-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "full"\n[daemon]\npatrol_interval = "1h"\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: (l) => lines.push(l) });
  admin = readAdminKey(root)!;
});
afterEach(() => armFaults(''));
afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

const create = (key: string, title: string) =>
  apiCall({ socketPath: server.socketPath }, 'POST', '/v0/beads', {
    token: admin,
    body: { title },
    headers: { 'idempotency-key': key },
  });
const count = async (title: string) =>
  (await server.ops.store.list({ scan: true, limit: 1000 })).items.filter((b) => b.title === title)
    .length;

describe('a full disk', () => {
  it('an idempotency record that cannot be written does not end the server', async () => {
    armFaults('idempotency.write:ENOSPC');
    const r = await create('full-1', 'record fails');
    expect(r.status, r.text).toBe(200);
    const bad = await create('full-2', '');
    expect(bad.status).toBe(400);
    armFaults('');
    const ping = await apiCall({ socketPath: server.socketPath }, 'GET', '/v0/ping', {
      token: admin,
    });
    expect(ping.status).toBe(200);
    expect(lines.join('\n')).toMatch(/idempotency record for full-1: ENOSPC/);
    expect(rejections).toEqual([]);
  });

  it('a write that cannot commit fails, changes nothing, and its retry happens once', async () => {
    armFaults('store.commit:ENOSPC:1');
    const r = await create('full-3', 'commit fails');
    expect(r.status).toBe(500);
    expect(await count('commit fails')).toBe(0);
    const again = await create('full-3', 'commit fails');
    expect(again.status, again.text).toBe(200);
    const third = await create('full-3', 'commit fails');
    expect(third.body.id).toBe(again.body.id);
    expect(await count('commit fails')).toBe(1);
    expect(rejections).toEqual([]);
  });

  it('a log that cannot be appended: the write is answered, its event follows', async () => {
    armFaults('events.append:EIO:1');
    const r = await create('full-4', 'log fails');
    expect(r.status, r.text).toBe(200);
    await server.ops.flush().catch(() => undefined);
    await server.ops.flush();
    const created = await server.ops.events.list({
      type: 'bead.created',
      subject: String(r.body.id),
    });
    expect(created.items.length).toBe(1);
    expect(rejections).toEqual([]);
  });
});
