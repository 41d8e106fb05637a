/** The gate decision table: every gate, on a fake clock, with the checks that come first. */
import { describe, expect, it } from 'vitest';
import { decide, type GateFacts, type OrderSpec } from './index.js';

const T = Date.parse('2026-03-04T10:00:00Z');
const MIN = 60_000;

function order(o: Partial<OrderSpec>): OrderSpec {
  return {
    name: 'o',
    base: 'o',
    rig: '',
    workDir: '/city',
    file: '/city/orders/o.toml',
    pack: '',
    packDir: '/city',
    description: '',
    exec: 'true',
    gate: 'manual',
    tz: 'UTC',
    checkTimeoutMs: 10_000,
    timeoutMs: 300_000,
    enabled: true,
    env: {},
    shadows: [],
    warnings: [],
    ...o,
  };
}

const cooldown = order({ gate: 'cooldown', interval: '1h', intervalMs: 60 * MIN });
const cron = order({ gate: 'cron', schedule: '*/15 * * * *' });
const event = order({ gate: 'event', on: 'bead.closed' });
const cond = order({ gate: 'condition', check: 'test -f x' });

describe('gate decisions', () => {
  const rows: [string, OrderSpec, Omit<GateFacts, 'now'> & { now?: number }, boolean, RegExp][] = [
    ['disabled', order({ enabled: false, gate: 'cooldown', intervalMs: 1 }), {}, false, /disabled/],
    ['skipped', cooldown, { skipped: true }, false, /skipped by \[orders\] skip/],
    ['still running', cooldown, { running: 'gc-7' }, false, /still running \(gc-7\)/],
    ['manual never fires', order({ gate: 'manual' }), {}, false, /gc order run o/],
    ['cooldown, never run', cooldown, {}, true, /never run/],
    ['cooldown, too soon', cooldown, { lastRun: T - 59 * MIN }, false, /cooldown: 60s left/],
    ['cooldown, exactly due', cooldown, { lastRun: T - 60 * MIN }, true, /last run 60m ago/],
    ['cooldown after downtime: once', cooldown, { lastRun: T - 600 * MIN }, true, /10h ago/],
    ['cron on its slot', cron, { lastRun: T - 15 * MIN }, true, /slot 2026-03-04T10:00:00Z$/],
    [
      'cron, ran this minute',
      cron,
      { lastRun: T + 20_000, now: T + 40_000 },
      false,
      /next 2026-03-04T10:15:00Z/,
    ],
    [
      'cron between slots',
      cron,
      { lastRun: T, now: T + 7 * MIN },
      false,
      /next 2026-03-04T10:15:00Z/,
    ],
    [
      'cron after downtime',
      cron,
      { lastRun: T - 300 * MIN },
      true,
      /slot 2026-03-04T05:15:00Z missed, run once now/,
    ],
    [
      'cron never run: a slot since watching',
      cron,
      { watchingSince: T - 1 * MIN, now: T + 30_000 },
      true,
      /slot 2026-03-04T10:00:00Z/,
    ],
    [
      'cron never run: no slot yet',
      cron,
      { watchingSince: T + MIN },
      false,
      /next 2026-03-04T10:15:00Z/,
    ],
    ['cron never fires', order({ gate: 'cron', schedule: '0 0 31 2 *' }), {}, false, /never fires/],
    ['event: nothing new', event, { cursor: 40 }, false, /no bead.closed since seq 40/],
    [
      'event: a new one',
      event,
      { cursor: 40, newEvent: 42 },
      true,
      /bead.closed #42 \(cursor 40\)/,
    ],
    [
      'condition met',
      cond,
      { condition: { ok: true, reason: 'exit 0' } },
      true,
      /condition: exit 0/,
    ],
    [
      'condition not met',
      cond,
      { condition: { ok: false, reason: 'not met (exit 1)' } },
      false,
      /exit 1/,
    ],
    ['condition not run', cond, {}, false, /not checked/],
  ];
  it.each(rows)('%s', (_what, o, facts, due, reason) => {
    const d = decide(o, { now: T, ...facts });
    expect(d.due).toBe(due);
    expect(d.reason).toMatch(reason);
  });

  it('cooldown and cron say when they are next due', () => {
    expect(decide(cooldown, { now: T, lastRun: T - 10 * MIN }).next).toBe(T + 50 * MIN);
    expect(decide(cron, { now: T + MIN, lastRun: T }).next).toBe(T + 15 * MIN);
  });
});
