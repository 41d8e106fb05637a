/**
 * A city server whose event log has failed (closed under it, as a dead disk
 * would leave it): stopping, reloading and a stop through the API still end
 * cleanly. Every failure is logged; nothing becomes an unhandled rejection
 * (which would end the server), and the lock and socket are released so the
 * next server starts.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { readAdminKey } from '../src/city/index.js';
import { CONFIG_HOME } from './helpers/cli.js';
import { apiCall } from './helpers/http.js';

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

async function city(): Promise<{ root: string; lines: string[]; server: CityServer }> {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  const root = await mkdtemp(path.join(os.tmpdir(), 'gc-srv-err-'));
  roots.push(root);
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "errs"\n[daemon]\npatrol_interval = "1h"\n',
  );
  const lines: string[] = [];
  const server = await CityServer.start({
    root,
    sessionProvider: 'fake',
    log: (l) => lines.push(l),
  });
  return { root, lines, server };
}

/** A second server on the same city starts only when the first let go of everything. */
async function restartable(root: string): Promise<void> {
  const next = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  await next.stop('check');
}

describe('a server whose event log failed', () => {
  it('stop still closes everything and releases the lock', async () => {
    const { root, lines, server } = await city();
    await server.ops.events.close();
    await server.stop('test');
    expect(server.state).toBe('stopped');
    expect(existsSync(server.socketPath)).toBe(false);
    expect(lines.join('\n')).toMatch(/event controller\.stopped not recorded/);
    await restartable(root);
  });

  it('reload answers whether the new config is in force, and never rejects', async () => {
    const { root, lines, server } = await city();
    try {
      await server.ops.events.close();
      await writeFile(path.join(root, 'city.toml'), '[workspace]\nname = ');
      const bad = await server.reload();
      expect(bad.ok).toBe(false);
      expect(bad.error).toMatch(/city\.toml/);
      await writeFile(
        path.join(root, 'city.toml'),
        '[workspace]\nname = "errs"\n[daemon]\npatrol_interval = "2h"\n',
      );
      expect(await server.reload()).toEqual({ ok: true });
      expect(lines.join('\n')).toMatch(/event controller\.reloaded not recorded/);
    } finally {
      await server.stop('test');
    }
  });

  it('a stop asked through the API ends stopped', async () => {
    const { root, server } = await city();
    await server.ops.events.close();
    const r = await apiCall({ socketPath: server.socketPath }, 'POST', '/v0/control/stop', {
      token: readAdminKey(root)!,
      body: {},
    });
    expect(r.status).toBe(200);
    await server.stopped();
    expect(server.state).toBe('stopped');
    await restartable(root);
  });
});
