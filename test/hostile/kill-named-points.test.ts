/**
 * kill -9 of a real city server at named moments (GC_KILL_AT, armed only
 * with GC_FAULTS_ENABLED=1), then a restart:
 *
 * - mq.landed: the target branch moved but the queue had not recorded the
 *   merge. The next server finishes it: merged once, its event once, its
 *   bead closed, nothing merged twice or untested.
 * - session.started: a session ran but had not finished starting (no
 *   fingerprint). The next server does not adopt it: it stops it, records
 *   session.start_interrupted, and starts it again.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { citySocketPath } from '../../src/server/index.js';
import { readAdminKey } from '../../src/city/index.js';
import type { GcEvent } from '../../src/events/index.js';
import { CONFIG_HOME, killSpawned, spawnBuilt } from '../helpers/cli.js';
import { branchWith, git, makeRepo } from '../helpers/git.js';
import { apiCall } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const roots: string[] = [];
afterEach(async () => {
  killSpawned();
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

async function city(toml: string): Promise<string> {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  const root = await mkdtemp(path.join(os.tmpdir(), 'gc-killat-'));
  roots.push(root);
  await writeFile(path.join(root, 'city.toml'), toml);
  return root;
}

async function start(root: string, killAt?: string, ready = true) {
  const child = spawnBuilt(['start', '--foreground', '--city', root], {
    env: killAt ? { GC_FAULTS_ENABLED: '1', GC_KILL_AT: killAt } : {},
  });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
  const sock = citySocketPath(root);
  if (ready)
    await waitFor(async () => {
      const admin = readAdminKey(root);
      if (!admin) return false;
      const r = await apiCall({ socketPath: sock }, 'GET', '/v0/ping', { token: admin }).catch(
        () => undefined,
      );
      return r?.status === 200;
    }, 'the server answers');
  const admin = readAdminKey(root)!;
  const api = (method: string, url: string, body?: unknown) =>
    apiCall({ socketPath: sock }, method, url, {
      token: admin,
      actor: 'human',
      ...(body !== undefined ? { body } : {}),
    });
  const events = async (type: string) =>
    (
      (await api('GET', `/v0/events?type=${type}&limit=10000`)).body as unknown as {
        items: GcEvent[];
      }
    ).items;
  return { child, exited, api, events };
}

describe('kill -9 at a named point', () => {
  it('mq.landed: the next server finishes the merge once', async () => {
    const root = await city(
      '[workspace]\nname = "kl"\n[daemon]\npatrol_interval = "1h"\n[session]\nprovider = "subprocess"\n[[rigs]]\nname = "app"\npath = "app"\n[rigs.gates.test]\ncommand = "true"\n',
    );
    const repo = path.join(root, 'app');
    const base = makeRepo(repo);
    const head = branchWith(repo, 'feature', { 'f.txt': 'feature\n' });
    const first = await start(root, 'mq.landed');
    const bead = await first.api('POST', '/v0/beads', { title: 'the feature' });
    const sub = await first.api('POST', '/v0/mq', { branch: 'feature', head, bead: bead.body.id });
    expect(sub.status, sub.text).toBe(200);
    expect(await first.exited).toBe('SIGKILL');
    // The target moved; the queue does not know yet.
    const landed = git(repo, 'rev-parse', 'main');
    expect(landed).not.toBe(base);
    const second = await start(root);
    const id = String(sub.body.id);
    await waitFor(
      async () => (await second.events('mq.merged')).some((e) => e.subject === id),
      'the merge is finished and recorded',
    );
    expect((await second.api('GET', `/v0/mq/${id}`)).body.state).toBe('merged');
    expect(git(repo, 'rev-parse', 'main')).toBe(landed);
    expect(
      git(repo, 'log', '--format=%s', 'main')
        .split('\n')
        .filter((s) => s.startsWith('feature:')),
    ).toHaveLength(1);
    expect((await second.events('mq.merged')).filter((e) => e.subject === id)).toHaveLength(1);
    expect(
      (await second.events('mq.gated')).filter((e) => e.subject === id).length,
    ).toBeGreaterThan(0);
    const b = await second.api('GET', `/v0/beads/${String(bead.body.id)}`);
    expect(b.body.status).toBe('closed');
  }, 120_000);

  it('session.started: a half-started session is stopped and started again, not adopted', async () => {
    const root = await city(
      '[workspace]\nname = "ks"\n[daemon]\npatrol_interval = "300ms"\n[session]\nprovider = "tmux"\n[[agent]]\nname = "sleeper"\ncommand = "sleep 600"\n',
    );
    const first = await start(root, 'session.started', false);
    expect(await first.exited).toBe('SIGKILL');
    const second = await start(root);
    await waitFor(
      async () => (await second.events('session.started')).some((e) => e.subject === 'sleeper'),
      'sleeper is started again',
    );
    expect((await second.events('session.start_interrupted')).map((e) => e.subject)).toEqual([
      'sleeper',
    ]);
    expect(await second.events('session.adopted')).toEqual([]);
    await second.api('POST', '/v0/control/stop', {});
    await second.exited;
  }, 120_000);
});
