/**
 * The operator's controls over running sessions, on a real city
 * (subprocess sessions): `gc runtime drain|undrain SESSION` and
 * `gc rig restart RIG`, with their events, and the mistakes users make.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cityCli } from './helpers/cli.js';
import { makeRepo } from './helpers/git.js';
import { until as waitUntil } from './helpers/wait.js';

let root = '';
const { g, json } = cityCli(() => root);
const until = <T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean) =>
  waitUntil(what, probe, ok, 60_000, 250);
interface Status {
  controller: { sessions: { name: string; state: string; reason?: string }[] };
}
const state = async (name: string) =>
  (await json<Status>('status')).controller.sessions.find((s) => s.name === name)?.state;
const events = (type: string) =>
  json<{ type: string; subject: string; actor: string; payload?: Record<string, unknown> }[]>(
    'events',
    '--type',
    type,
  );

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-drain-'));
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]
name = "drains"
[session]
provider = "subprocess"
[daemon]
patrol_interval = "300ms"
shutdown_timeout = "2s"
[[rigs]]
name = "app"
path = "app"
[[agent]]
name = "mayor"
start_command = "sleep 600"
drain_timeout = "1h"
[[agent]]
name = "worker"
dir = "app"
start_command = "sleep 600"
drain_timeout = "2s"
`,
  );
  const r = await g('start');
  expect(r.code, r.stderr).toBe(0);
  for (const s of ['mayor', 'worker']) {
    await until(
      `${s} running`,
      () => state(s),
      (x) => x === 'running',
    );
  }
}, 120_000);
afterAll(async () => {
  await g('stop');
  await rm(root, { recursive: true, force: true });
});

describe('operator controls over running sessions', { timeout: 120_000 }, () => {
  it('gc runtime drain asks a session to wind down; undrain cancels it', async () => {
    expect(await json('runtime', 'drain', 'mayor')).toEqual({
      session: 'mayor',
      draining: true,
      changed: true,
    });
    await until(
      'mayor draining',
      () => state('mayor'),
      (x) => x === 'draining',
    );
    expect((await events('session.draining')).map((e) => e.subject)).toContain('mayor');
    const again = await g('runtime', 'drain', 'mayor');
    expect(again.stdout).toMatch(/mayor is already draining/);
    const undrained = await g('runtime', 'undrain', 'mayor');
    expect(undrained.code, undrained.stderr).toBe(0);
    expect(undrained.stdout).toMatch(/drain of mayor cancelled/);
    await until(
      'mayor running',
      () => state('mayor'),
      (x) => x === 'running',
    );
    expect((await events('session.undrained')).map((e) => e.subject)).toEqual(['mayor']);
    const nobody = await g('runtime', 'drain', 'nobody');
    expect(nobody.code).not.toBe(0);
    expect(nobody.stderr).toMatch(/nobody[\s\S]*gc session list/);
  });

  it("gc rig restart drains each of the rig's sessions and starts it fresh", async () => {
    const r = await json<{ rig: string; sessions: string[] }>('rig', 'restart', 'app');
    expect(r).toEqual({ rig: 'app', sessions: ['worker'] });
    // worker.drain_timeout is 2s: it is stopped, then started again.
    await until(
      'worker restarted',
      () => events('session.started'),
      (es) => es.filter((e) => e.subject === 'worker').length >= 2,
    );
    await until(
      'worker running',
      () => state('worker'),
      (x) => x === 'running',
    );
    expect((await events('rig.restart_requested'))[0]).toMatchObject({
      subject: 'app',
      payload: { sessions: ['worker'] },
    });
    // mayor (no rig) was left alone.
    expect((await events('session.started')).filter((e) => e.subject === 'mayor')).toHaveLength(1);
    const nope = await g('rig', 'restart', 'ap');
    expect(nope.code).not.toBe(0);
    expect(nope.stderr).toMatch(/ap[\s\S]*gc rig list/);
  });
});
