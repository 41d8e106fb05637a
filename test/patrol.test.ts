/**
 * The health patrol on a real city server (SQLite, JSONL events, the fake
 * session provider, whose sessions echo a nudge as output the way tmux
 * does): a session that holds a claim and shows no output is nudged, its
 * rig's owner is mailed and an alert fires, each step an event; the bead
 * closed, the finding clears and the alert resolves once. A claim whose
 * lease lapsed with no live holder is released. gc patrol, gc alerts and
 * GET /metrics show it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdminKey } from '../src/city/index.js';
import { CityServer } from '../src/server/index.js';
import type { AlertsView } from '../src/client/index.js';
import type { GcEvent } from '../src/events/index.js';
import type { PatrolReport } from '../src/patrol/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { makeRepo } from './helpers/git.js';
import { apiCall } from './helpers/http.js';
import { until } from './helpers/wait.js';

let root = '';
let server: CityServer;
const gc = (args: string[], actor = 'mayor') =>
  gcBuilt(['--city', root, '--actor', actor, ...args]);
const json = async <T>(args: string[], actor = 'mayor'): Promise<T> => {
  const r = await gc([...args, '--json'], actor);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
};
const patrolEvents = async () =>
  (await json<GcEvent[]>(['events', '--type', 'patrol.*'])).map((e) => `${e.type} ${e.subject}`);

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-patrol-'));
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      'name = "watch"',
      '[daemon]',
      'patrol_interval = "200ms"',
      '[patrol]',
      'hot = "100ms"',
      'warm = "100ms"',
      'stall_timeout = "1s"',
      'escalate_after = "500ms"',
      'ladder = ["nudge", "mail", "alert"]',
      'alert_route = ["mail:mayor"]',
      '[[rigs]]',
      'name = "app"',
      'path = "app"',
      'owner = "mayor"',
      '[[agent]]',
      'name = "worker"',
      'dir = "app"',
      'start_command = "sleep 600"',
      '',
    ].join('\n'),
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

describe('health patrol', () => {
  it('a stalled session: nudged, its owner mailed, alerted; cleared and resolved once', async () => {
    const sessions = await until(
      'the worker running',
      () => json<{ name: string; state: string }[]>(['session', 'list']),
      (s) => s.some((x) => x.state === 'running'),
    );
    const worker = sessions.find((x) => x.state === 'running')!.name;
    const bead = await json<{ id: string }>(['bead', 'create', 'stuck work']);
    await json(['bead', 'claim', bead.id], worker);
    await until(
      'the ladder to reach the alert',
      patrolEvents,
      (e) => e.includes(`patrol.alerted ${worker}`),
      30_000,
      50,
    );
    const report = await json<PatrolReport>(['patrol']);
    expect(report.tiers).toContainEqual(expect.objectContaining({ rig: 'app', tier: 'hot' }));
    expect(report.findings).toMatchObject([
      { key: `stalled:${worker}`, kind: 'stalled', rig: 'app', bead: bead.id, step: 'alert' },
    ]);
    const human = await gc(['patrol']);
    expect(human.stdout).toMatch(new RegExp(`stalled:${worker}\\s+app\\s+\\S+\\s+alert`));
    const alerts = await json<AlertsView>(['alerts']);
    expect(alerts.active).toMatchObject([
      { alert: `patrol:stalled:${worker}`, rig: 'app', state: 'firing', severity: 'critical' },
    ]);
    const mail = await json<{ from: string; subject: string }[]>(['mail', 'check']);
    expect(mail.map((m) => [m.from, m.subject])).toEqual(
      expect.arrayContaining([
        ['patrol', '[patrol] stalled in rig app'],
        ['alerts', expect.stringMatching(/^\[critical\] patrol: .*has shown no output/)],
      ]),
    );
    await json(['bead', 'close', bead.id]);
    await until(
      'the finding to clear',
      patrolEvents,
      (e) => e.includes(`patrol.cleared ${worker}`),
      30_000,
      50,
    );
    await new Promise((r) => setTimeout(r, 500));
    const stalls = (await patrolEvents()).filter((e) => e.endsWith(` ${worker}`));
    // The nudge's echo made it look busy for a moment; the ladder went on regardless.
    expect(stalls).toEqual([
      `patrol.nudged ${worker}`,
      `patrol.mailed ${worker}`,
      `patrol.alerted ${worker}`,
      `patrol.cleared ${worker}`,
    ]);
    const alertEvents = await json<GcEvent[]>(['events', '--type', 'alert.*']);
    expect(alertEvents.map((e) => e.type)).toEqual(['alert.fired', 'alert.resolved']);
    expect((await json<AlertsView>(['alerts'])).active).toEqual([]);
  });

  it('a lapsed claim nobody holds is released', async () => {
    const bead = await json<{ id: string }>(['bead', 'create', 'abandoned']);
    await json(['bead', 'claim', bead.id, '--lease', '200ms'], 'ghost');
    await until(
      'the claim released',
      () => json<{ status: string; assignee: string }>(['bead', 'show', bead.id]),
      (b) => b.status === 'open',
      30_000,
      50,
    );
    const released = await json<GcEvent[]>(['events', '--type', 'patrol.released']);
    expect(released).toMatchObject([
      { subject: bead.id, payload: { finding: 'claim_lapsed', bead: bead.id } },
    ]);
  });

  it('GET /metrics counts the passes and the steps', async () => {
    const scrape = async () =>
      (
        await apiCall({ socketPath: path.join(root, '.gc', 'gc.sock') }, 'GET', '/metrics', {
          token: readAdminKey(root)!,
        })
      ).text;
    // The released claim's finding clears once it has stayed away.
    const text = await until('no finding open', scrape, (t) => /^gc_patrol_findings 0$/m.test(t));
    expect(text).toMatch(/^gc_patrol_steps_total\{step="nudged"\} 1$/m);
    expect(text).toMatch(/^gc_patrol_steps_total\{step="released"\} 1$/m);
    expect(text).toMatch(/^gc_patrol_steps_total\{step="cleared"\} 1$/m);
    const passes = /^gc_patrol_seconds_count (\d+)$/m.exec(text);
    expect(Number(passes?.[1])).toBeGreaterThan(5);
  });
});
