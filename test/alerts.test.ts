/**
 * Alerts on a real city server (real git, a merge gate held shut): the
 * merge queue grows past the rule's threshold and one `alert.fired` is
 * recorded, shown by `gc alerts` and mailed along its route; the queue
 * drains and one `alert.resolved` follows. Never twice in between.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import type { AlertsView } from '../src/client/index.js';
import type { GcEvent } from '../src/events/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { branchWith, makeRepo } from './helpers/git.js';
import { until } from './helpers/wait.js';

let root = '';
let server: CityServer;
const gc = (args: string[]) => gcBuilt(['--city', root, '--actor', 'mayor', ...args]);
const json = async <T>(args: string[]): Promise<T> => {
  const r = await gc([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-alerts-'));
  makeRepo(path.join(root, 'app'));
  const release = path.join(root, 'release');
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      'name = "alarm"',
      '[daemon]',
      'patrol_interval = "1h"',
      'alert_interval = "100ms"',
      '[[rigs]]',
      'name = "app"',
      'path = "app"',
      'merge_batch = 1',
      'merge_workers = 1',
      '[rigs.gates.test]',
      `command = "while [ ! -f '${release}' ]; do sleep 0.05; done"`,
      '[[alerts]]',
      'name = "queue-deep"',
      'metric = "mq_depth"',
      'above = 1',
      'for = "300ms"',
      'clear_for = "300ms"',
      'severity = "critical"',
      'route = ["mail:mayor"]',
      '',
    ].join('\n'),
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

const alertEvents = async () =>
  (await json<GcEvent[]>(['events', '--type', 'alert.*'])).map(
    (e) => `${e.type} ${(e.payload as { rig: string }).rig}`,
  );

describe('alerts', () => {
  it('a deep merge queue fires one alert, routed by mail; drained, it resolves once', async () => {
    const rules = await json<AlertsView>(['alerts']);
    expect(rules.rules.map((r) => r.name)).toEqual(['queue-deep']);
    expect(rules.active).toEqual([]);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      branchWith(path.join(root, 'app'), `w${i}`, { [`f${i}.txt`]: String(i) });
      ids.push((await json<{ id: string }>(['mq', 'submit', '--branch', `w${i}`])).id);
    }
    await until('the alert to fire', alertEvents, (e) => e.length === 1, 20_000, 50);
    const firing = await json<AlertsView>(['alerts']);
    expect(firing.active).toMatchObject([
      { alert: 'queue-deep', rig: 'app', state: 'firing', severity: 'critical', above: 1 },
    ]);
    const human = await gc(['alerts']);
    expect(human.stdout).toMatch(/queue-deep\s+app\s+firing/);
    expect(human.stdout).toMatch(
      /queue-deep\s+critical\s+mq_depth > 1\s+0\.3s\s+0\.3s\s+mail:mayor/,
    );
    const mail = await json<{ subject: string; from: string }[]>(['mail', 'check']);
    expect(mail.map((m) => [m.from, m.subject])).toContainEqual([
      'alerts',
      expect.stringMatching(
        /^\[critical\] alert queue-deep \(critical\) fired in rig app: mq_depth is 2, above 1$/,
      ),
    ]);
    await writeFile(path.join(root, 'release'), '');
    for (const id of ids) {
      await until(
        'the merge',
        () => json<{ state: string }>(['mq', 'status', id]),
        (m) => m.state === 'merged',
        30_000,
      );
    }
    await until('the alert to resolve', alertEvents, (e) => e.length === 2, 20_000, 50);
    await new Promise((r) => setTimeout(r, 500));
    expect(await alertEvents()).toEqual(['alert.fired app', 'alert.resolved app']);
    expect((await json<AlertsView>(['alerts'])).active).toEqual([]);
  });
});
