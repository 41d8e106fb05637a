/**
 * The patrol's pure decisions: tiers, which rigs are due, what is found,
 * and the escalation ladder, as tables.
 */
import { describe, expect, it } from 'vitest';
import {
  dueRigs,
  inspect,
  stepLadder,
  stepsFor,
  tierRigs,
  type Finding,
  type Observation,
  type PatrolSettings,
  type RigInfo,
} from './index.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 2, 4, 10);
const settings: PatrolSettings = {
  hotMs: 30_000,
  warmMs: 2 * MIN,
  coldMs: 10 * MIN,
  stallMs: 15 * MIN,
  crashLoopRestarts: 3,
  mqDepth: 5,
  mqMergeMs: 30 * MIN,
  conflictRate: 0.3,
  diskMinFreeBytes: 1024 * 2 ** 20,
};
const rigs: RigInfo[] = [
  { name: '', suspended: false, owner: 'human' },
  { name: 'busy', suspended: false, owner: 'ann' },
  { name: 'queued', suspended: false, owner: 'human' },
  { name: 'quiet', suspended: false, owner: 'human' },
  { name: 'parked', suspended: true, owner: 'human' },
];
const empty = (o: Partial<Observation> = {}): Observation => ({
  at: T0,
  sessions: [],
  claims: [],
  queues: [],
  disks: [],
  faults: [],
  ...o,
});
const session = (name: string, rig: string, o: Partial<Observation['sessions'][0]> = {}) => ({
  name,
  rig,
  alive: true,
  lastActivity: T0 - MIN,
  restarts: 0,
  quarantined: false,
  ...o,
});

describe('tiers', () => {
  const o = empty({
    sessions: [
      session('b-1', 'busy'),
      session('p-1', 'parked', { alive: false }),
      session('q-dead', 'quiet', { alive: false }),
    ],
    queues: [
      { rig: 'queued', depth: 1, in_flight: 0, conflict_rate: 0, merge_ms_p95: 0 },
      { rig: 'quiet', depth: 0, in_flight: 0, conflict_rate: 0, merge_ms_p95: 0 },
    ],
  });

  it.each([
    ['busy', 'hot', 'a session runs there'],
    ['queued', 'hot', 'merges wait there'],
    ['quiet', 'warm', 'active, nothing running (a dead session does not count)'],
    ['', 'warm', 'the city, no city agent running'],
    ['parked', 'cold', 'suspended'],
  ])('%s is %s: %s', (rig, tier) => {
    expect(tierRigs(rigs, o).get(rig)).toBe(tier);
  });

  it('due: never looked at, or the tier’s interval has passed', () => {
    const tiers = tierRigs(rigs, o);
    const looked = new Map([
      ['busy', T0 - 30_000],
      ['queued', T0 - 29_999],
      ['quiet', T0 - MIN],
      ['parked', T0 - 10 * MIN],
    ]);
    expect(dueRigs(tiers, looked, T0, settings).sort()).toEqual(['', 'busy', 'parked']);
    expect(dueRigs(tiers, looked, T0 + MIN, settings).sort()).toEqual([
      '',
      'busy',
      'parked',
      'queued',
      'quiet',
    ]);
  });
});

describe('findings', () => {
  const all = new Set(rigs.map((r) => r.name));
  const kinds = (o: Observation, due: ReadonlySet<string> = all) =>
    inspect(o, due, settings).map((f) => f.key);

  it('a stall needs a claim, a live session and quiet past stall_timeout', () => {
    const claim = (assignee: string) => ({
      bead: `gc-${assignee}`,
      assignee,
      attempt: 1,
      leaseExpiresAt: T0 + MIN,
    });
    const o = empty({
      sessions: [
        session('quiet-claim', 'busy', { lastActivity: T0 - 15 * MIN }),
        session('busy-claim', 'busy', { lastActivity: T0 - 14 * MIN }),
        session('quiet-idle', 'busy', { lastActivity: T0 - 60 * MIN }),
        session('dead-claim', 'busy', { alive: false, lastActivity: T0 - 60 * MIN }),
        session('no-activity', 'busy', { lastActivity: 0 }),
      ],
      claims: ['quiet-claim', 'busy-claim', 'dead-claim', 'no-activity'].map(claim),
    });
    expect(kinds(o)).toEqual(['stalled:quiet-claim']);
    const [f] = inspect(o, all, settings);
    expect(f).toMatchObject({ rig: 'busy', session: 'quiet-claim', bead: 'gc-quiet-claim' });
    expect(f!.detail).toBe('quiet-claim holds gc-quiet-claim and has shown no output for 15m');
  });

  it('crash loops: restarts at the threshold, or quarantined', () => {
    const o = empty({
      sessions: [
        session('two', 'busy', { restarts: 2 }),
        session('three', 'busy', { restarts: 3 }),
        session('held', 'busy', { alive: false, quarantined: true, restarts: 5 }),
      ],
    });
    expect(kinds(o)).toEqual(['crash_loop:three', 'crash_loop:held']);
  });

  it('lapsed claims: a live holder is a session finding; no live holder is an orphan', () => {
    const o = empty({
      sessions: [session('w-1', 'busy')],
      claims: [
        { bead: 'gc-1', assignee: 'w-1', attempt: 2, leaseExpiresAt: T0 - 1 },
        { bead: 'gc-2', assignee: 'gone', attempt: 4, leaseExpiresAt: T0 - 5 * MIN },
        { bead: 'gc-3', assignee: 'gone', attempt: 1, leaseExpiresAt: null },
        { bead: 'gc-4', assignee: 'w-1', attempt: 1, leaseExpiresAt: T0 + 1 },
      ],
    });
    const found = inspect(o, all, settings);
    expect(found.map((f) => [f.key, f.rig, f.session, f.orphaned, f.attempt])).toEqual([
      ['claim_lapsed:gc-1', 'busy', 'w-1', undefined, 2],
      ['claim_lapsed:gc-2', '', undefined, true, 4],
    ]);
  });

  it('merge queue, disk and faults; thresholds are strict', () => {
    const o = empty({
      queues: [
        { rig: 'busy', depth: 6, in_flight: 1, conflict_rate: 0.31, merge_ms_p95: 31 * MIN },
        { rig: 'queued', depth: 5, in_flight: 0, conflict_rate: 0.3, merge_ms_p95: 30 * MIN },
      ],
      disks: [
        { path: '/c/.gc', rig: '', freeBytes: 1023 * 2 ** 20 },
        { path: '/c/busy', rig: 'busy', freeBytes: 1024 * 2 ** 20 },
      ],
      faults: [{ what: 'store', rig: '', error: 'database is locked' }],
    });
    expect(kinds(o)).toEqual([
      'mq_backed_up:busy',
      'mq_slow:busy',
      'conflicts:busy',
      'disk_low:/c/.gc',
      'unhealthy:store',
    ]);
  });

  it('only the due rigs are looked at', () => {
    const o = empty({
      sessions: [session('b', 'busy', { restarts: 9 }), session('c', '', { restarts: 9 })],
      queues: [{ rig: 'queued', depth: 9, in_flight: 0, conflict_rate: 0, merge_ms_p95: 0 }],
    });
    expect(kinds(o, new Set(['']))).toEqual(['crash_loop:c']);
    expect(kinds(o, new Set(['queued', 'busy']))).toEqual(['crash_loop:b', 'mq_backed_up:queued']);
  });
});

describe('escalation ladder', () => {
  const ladder = ['nudge', 'restart', 'mail', 'alert'] as const;
  const stall: Finding = {
    key: 'stalled:w',
    kind: 'stalled',
    rig: 'app',
    session: 'w',
    value: 0,
    detail: '',
  };
  const rig: Finding = {
    key: 'mq_backed_up:app',
    kind: 'mq_backed_up',
    rig: 'app',
    value: 9,
    detail: '',
  };

  it.each([
    [stall, ['nudge', 'restart', 'mail', 'alert']],
    [{ ...stall, kind: 'crash_loop' as const }, ['mail', 'alert']],
    [rig, ['mail', 'alert']],
  ])('steps for %s', (f, steps) => {
    expect(stepsFor(f, [...ladder])).toEqual(steps);
  });

  it('the first step at once, then one per escalate_after, then nothing', () => {
    const walk = (
      f: Finding,
      at: number[],
      l: readonly ('nudge' | 'restart' | 'mail' | 'alert')[],
    ) => {
      let rung;
      const acts: string[] = [];
      for (const t of at) {
        const s = stepLadder(rung, f, T0 + t, l, 5 * MIN);
        rung = s.next;
        acts.push(s.act ?? '-');
      }
      return acts;
    };
    const at = [0, MIN, 5 * MIN, 9 * MIN, 10 * MIN, 15 * MIN, 20 * MIN, 60 * MIN];
    expect(walk(stall, at, ladder)).toEqual([
      'nudge',
      '-',
      'restart',
      '-',
      'mail',
      'alert',
      '-',
      '-',
    ]);
    expect(walk(rig, at, ladder)).toEqual(['mail', '-', 'alert', '-', '-', '-', '-', '-']);
    expect(walk(stall, at, ['restart', 'alert'])).toEqual([
      'restart',
      '-',
      'alert',
      '-',
      '-',
      '-',
      '-',
      '-',
    ]);
    expect(walk(rig, at, ['nudge'])).toEqual(['-', '-', '-', '-', '-', '-', '-', '-']);
  });

  it('an orphaned lapsed claim is released once', () => {
    const f: Finding = {
      key: 'claim_lapsed:gc-2',
      kind: 'claim_lapsed',
      rig: '',
      bead: 'gc-2',
      orphaned: true,
      value: 1,
      detail: '',
    };
    const first = stepLadder(undefined, f, T0, ladder, MIN);
    expect(first.act).toBe('release');
    expect(stepLadder(first.next, f, T0 + 10 * MIN, ladder, MIN).act).toBeUndefined();
  });
});
