/** The alert state machine on a fake clock: fire once, resolve once, damp flapping. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCityConfig } from '../config/index.js';
import { alertRules, DEFAULT_ALERTS, OK, stepAlert, type AlertState } from './index.js';

const T = { above: 5, forMs: 10_000, clearForMs: 5_000 };

/** Feed (time, value) samples; return the transitions with their times. */
function run(samples: [number, number][], t = T): string[] {
  let s: AlertState = OK;
  const out: string[] = [];
  for (const [at, v] of samples) {
    const step = stepAlert(s, v, at, t);
    s = step.next;
    if (step.transition) out.push(`${step.transition}@${at}`);
  }
  return out;
}

describe('alert state machine', () => {
  it.each<[string, [number, number][], string[], typeof T?]>([
    [
      'never above: nothing',
      [
        [0, 1],
        [5_000, 5],
        [20_000, 0],
      ],
      [],
    ],
    [
      'above, but not for long enough: nothing',
      [
        [0, 6],
        [9_000, 9],
        [9_500, 2],
        [30_000, 1],
      ],
      [],
    ],
    [
      'above for `for`: fires once',
      [
        [0, 6],
        [5_000, 7],
        [10_000, 8],
        [15_000, 9],
        [20_000, 9],
      ],
      ['fired@10000'],
    ],
    [
      'for 0 fires at once',
      [
        [0, 6],
        [1_000, 7],
      ],
      ['fired@0'],
      { ...T, forMs: 0 },
    ],
    [
      'clear for clear_for: resolves once',
      [
        [0, 6],
        [10_000, 6],
        [12_000, 1],
        [16_000, 1],
        [17_000, 0],
        [30_000, 0],
      ],
      ['fired@10000', 'resolved@17000'],
    ],
    [
      'flapping under the threshold while firing: neither resolves nor fires again',
      [
        [0, 6],
        [10_000, 6],
        [11_000, 1],
        [13_000, 7],
        [14_000, 2],
        [17_000, 9],
        [18_000, 1],
        [23_000, 1],
      ],
      ['fired@10000', 'resolved@23000'],
    ],
    [
      'a dip while pending starts the wait over',
      [
        [0, 6],
        [8_000, 1],
        [9_000, 6],
        [18_000, 6],
        [19_000, 6],
      ],
      ['fired@19000'],
    ],
    [
      'fires again after it resolved and the condition came back for `for`',
      [
        [0, 6],
        [10_000, 6],
        [11_000, 0],
        [16_000, 0],
        [20_000, 6],
        [30_000, 6],
      ],
      ['fired@10000', 'resolved@16000', 'fired@30000'],
    ],
    [
      'exactly at the threshold is not above',
      [
        [0, 5],
        [20_000, 5],
      ],
      [],
    ],
  ])('%s', (_what, samples, want, timing) => {
    expect(run(samples, timing)).toEqual(want);
  });

  it('rules: the defaults without [[alerts]], none with [], clear_for defaulting to for (at least 1m)', () => {
    expect(alertRules({})).toEqual(DEFAULT_ALERTS);
    expect(alertRules({ alerts: [] })).toEqual([]);
    const [r] = alertRules({
      alerts: [
        {
          name: 'deep',
          metric: 'mq_depth',
          above: 2,
          for: '2m',
          severity: 'critical',
          route: ['mail:mayor'],
        },
      ],
    });
    expect(r).toEqual({
      name: 'deep',
      metric: 'mq_depth',
      above: 2,
      forMs: 120_000,
      clearForMs: 120_000,
      severity: 'critical',
      route: ['mail:mayor'],
    });
    expect(
      alertRules({
        alerts: [
          {
            name: 'x',
            metric: 'sessions_dead',
            above: 0,
            for: '0s',
            severity: 'warning',
            route: [],
          },
        ],
      })[0]!.clearForMs,
    ).toBe(60_000);
    expect(DEFAULT_ALERTS.map((a) => [a.metric, a.above, a.forMs])).toEqual([
      ['mq_depth', 5, 600_000],
      ['mq_conflict_rate', 0.4, 600_000],
      ['patrol_seconds', 300, 0],
      ['controller_tick_seconds', 300, 0],
      ['sessions_quarantined', 0, 0],
    ]);
  });

  it('city.toml mistakes: an unknown figure, a bad route, a name twice, each at its line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-alerts-'));
    const file = path.join(dir, 'city.toml');
    writeFileSync(
      file,
      [
        '[workspace]',
        'name = "a"',
        '[[alerts]]',
        'name = "x"',
        'metric = "queue_len"',
        'above = 1',
        '[[alerts]]',
        'name = "x"',
        'metric = "mq_depth"',
        'above = 1',
        'route = ["pager:ops"]',
        '',
      ].join('\n'),
    );
    const err = await loadCityConfig(file, {}).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/city\.toml:5:1: alerts\[0\]\.metric: .*mq_depth/);
    expect(err?.message).toMatch(
      /city\.toml:11:1: alerts\[1\]\.route\[0\]: expected "mail:NAME" or "webhook:https:\/\/\.\.\."/,
    );
    // Once each rule reads well, the names are compared.
    writeFileSync(
      file,
      [
        '[workspace]',
        'name = "a"',
        '[[alerts]]',
        'name = "x"',
        'metric = "mq_depth"',
        'above = 1',
        '[[alerts]]',
        'name = "x"',
        'metric = "sessions_dead"',
        'above = 0',
        '',
      ].join('\n'),
    );
    const twice = await loadCityConfig(file, {}).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(twice?.message).toMatch(/city\.toml:8:1: alerts\[1\]\.name: alert "x" is defined twice/);
  });
});
