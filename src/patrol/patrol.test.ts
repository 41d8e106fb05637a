/**
 * The patrol on a fake clock with a scripted city: a stall climbs the
 * whole ladder (its nudge's echo does not reset it), clears once it stays
 * gone, and resolves its alert; an orphaned lapsed claim is released; a
 * failed step is recorded, not fatal; a new leader takes up a firing
 * patrol alert without raising it again.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../core/index.js';
import { MemoryEventLog } from '../events/index.js';
import { Patrol, type Observation, type PatrolAlert, type PatrolConfig } from './index.js';

const MIN = 60_000;
const config: PatrolConfig = {
  enabled: true,
  hotMs: 30_000,
  warmMs: 2 * MIN,
  coldMs: 10 * MIN,
  stallMs: 15 * MIN,
  crashLoopRestarts: 3,
  mqDepth: 5,
  mqMergeMs: 30 * MIN,
  conflictRate: 0.3,
  diskMinFreeBytes: 0,
  ladder: ['nudge', 'restart', 'mail', 'alert'],
  escalateAfterMs: 5 * MIN,
};

function city(firing: { alert: string; rig: string; value: number }[] = []) {
  const clock = new FakeClock(Date.UTC(2026, 2, 4, 10));
  const events = new MemoryEventLog();
  const did: string[] = [];
  const raised: PatrolAlert[] = [];
  const state = {
    lastActivity: clock.now(),
    claims: [] as Observation['claims'],
    failMail: false,
    observations: 0,
  };
  const patrol = new Patrol({
    config: () => config,
    rigs: () => [
      { name: '', suspended: false, owner: 'human' },
      { name: 'app', suspended: false, owner: 'ann' },
    ],
    observe: () => {
      state.observations++;
      return Promise.resolve({
        at: clock.now(),
        sessions: [
          {
            name: 'w-1',
            rig: 'app',
            alive: true,
            lastActivity: state.lastActivity,
            restarts: 0,
            quarantined: false,
          },
        ],
        claims: state.claims,
        queues: [],
        disks: [],
        faults: [],
      });
    },
    nudge: (s) => {
      did.push(`nudge ${s}`);
      // The typed nudge shows up as output, as it does in tmux.
      state.lastActivity = clock.now();
      return Promise.resolve();
    },
    restart: (s) => did.push(`restart ${s}`),
    release: (b, attempt) => {
      did.push(`release ${b}@${attempt}`);
      state.claims = state.claims.filter((c) => c.bead !== b);
      return Promise.resolve();
    },
    mail: (to, subject) => {
      if (state.failMail) return Promise.reject(new Error('inbox full'));
      did.push(`mail ${to}: ${subject}`);
      return Promise.resolve();
    },
    raise: (a) => {
      raised.push(a);
      did.push(`raise ${a.alert}`);
      return Promise.resolve();
    },
    settle: (alert) => {
      did.push(`settle ${alert}`);
      return Promise.resolve();
    },
    firing: () => firing,
    record: (e) => events.record(e),
    log: () => undefined,
    clock,
  });
  return { clock, events, did, raised, state, patrol };
}

const eventTypes = async (events: MemoryEventLog) =>
  (await events.list({ type: 'patrol.*' })).items.map((e) => `${e.type} ${e.subject}`);

describe('patrol', () => {
  it('a stall climbs the ladder through its nudge’s echo, then clears and resolves', async () => {
    const c = city();
    c.state.claims = [{ bead: 'gc-1', assignee: 'w-1', attempt: 1, leaseExpiresAt: null }];
    const step = async (ms: number) => {
      c.clock.advance(ms);
      await c.patrol.pass();
    };
    await step(15 * MIN); // quiet for 15m: nudged
    expect(c.did).toEqual(['nudge w-1']);
    await step(MIN); // the echo: not stalled now, but not cleared either
    expect(c.patrol.report().findings).toMatchObject([{ key: 'stalled:w-1', step: 'nudge' }]);
    expect(c.patrol.report().findings[0]!.absent_since).toBeDefined();
    await step(15 * MIN); // quiet again: the ladder goes on
    await step(5 * MIN);
    await step(5 * MIN);
    await step(5 * MIN); // at the top: nothing more
    expect(c.did).toEqual([
      'nudge w-1',
      'restart w-1',
      'mail ann: [patrol] stalled in rig app',
      'raise patrol:stalled:w-1',
    ]);
    expect(c.raised[0]).toMatchObject({
      rig: 'app',
      severity: 'critical',
      metric: 'patrol:stalled',
    });
    // The bead is done: the finding stays gone for stall_timeout + escalate_after, then clears.
    c.state.claims = [];
    await step(MIN);
    await step(19 * MIN);
    expect(c.did.at(-1)).toBe('raise patrol:stalled:w-1');
    await step(MIN);
    expect(c.did.at(-1)).toBe('settle patrol:stalled:w-1');
    expect(c.patrol.report().findings).toEqual([]);
    expect(await eventTypes(c.events)).toEqual([
      'patrol.nudged w-1',
      'patrol.restarted w-1',
      'patrol.mailed w-1',
      'patrol.alerted w-1',
      'patrol.cleared w-1',
    ]);
    const cleared = (await c.events.list({ type: 'patrol.cleared' })).items[0]!;
    expect(cleared.payload).toMatchObject({ finding: 'stalled', rig: 'app', steps: ['alert'] });
  });

  it('an orphaned lapsed claim is released (fenced by its attempt), once', async () => {
    const c = city();
    c.state.claims = [
      { bead: 'gc-9', assignee: 'gone', attempt: 3, leaseExpiresAt: c.clock.now() - 1 },
    ];
    await c.patrol.pass();
    await c.patrol.pass();
    expect(c.did).toEqual(['release gc-9@3']);
    const [e] = (await c.events.list({ type: 'patrol.released' })).items;
    expect(e).toMatchObject({
      subject: 'gc-9',
      payload: { finding: 'claim_lapsed', bead: 'gc-9' },
    });
  });

  it('a failed step is an event with its error; the ladder goes on', async () => {
    const c = city();
    c.state.failMail = true;
    c.state.claims = [{ bead: 'gc-1', assignee: 'w-1', attempt: 1, leaseExpiresAt: null }];
    for (let i = 0; i < 4; i++) {
      c.clock.advance(i === 0 ? 15 * MIN : 5 * MIN);
      // Quiet all along (the nudge's echo aside).
      c.state.lastActivity = c.clock.now() - 15 * MIN;
      await c.patrol.pass();
    }
    expect(c.did).toEqual(['nudge w-1', 'restart w-1', 'raise patrol:stalled:w-1']);
    const [mailed] = (await c.events.list({ type: 'patrol.mailed' })).items;
    expect(mailed?.payload).toMatchObject({ to: 'ann', error: 'inbox full' });
    expect(mailed?.message).toMatch(/failed: inbox full/);
  });

  it('a new leader takes up a firing patrol alert: not raised again, settled when gone', async () => {
    const c = city([{ alert: 'patrol:stalled:w-1', rig: 'app', value: 1 }]);
    c.patrol.takeUp();
    c.state.claims = [{ bead: 'gc-1', assignee: 'w-1', attempt: 1, leaseExpiresAt: null }];
    c.clock.advance(16 * MIN);
    await c.patrol.pass();
    expect(c.did).toEqual([]);
    c.state.claims = [];
    c.clock.advance(MIN);
    await c.patrol.pass();
    c.clock.advance(20 * MIN);
    await c.patrol.pass();
    expect(c.did).toEqual(['settle patrol:stalled:w-1']);
    expect(await eventTypes(c.events)).toEqual(['patrol.cleared w-1']);
    expect(c.state.observations).toBe(3);
  });
});
