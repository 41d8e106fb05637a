/**
 * The budget watch over a real event log (memory) on a fake clock: a trip
 * holds the scope's agents (stop also stops their sessions); a new leader
 * takes up this window's warnings and trip (nothing announced twice, the
 * agents still held); the next day resets it.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../core/index.js';
import type { Budget } from '../costs/index.js';
import { MemoryEventLog } from '../events/index.js';
import { BudgetWatch } from './index.js';

const budgets: Budget[] = [
  { name: 'app-day', scope: 'rig:app', window: 'day', usd: 10, warn: [50], action: 'stop' },
  { name: 'all-week', scope: 'city', window: 'week', tokens: 1e6, warn: [90], action: 'warn' },
];
const agents = [
  { name: 'coder', rig: 'app' },
  { name: 'reviewer', rig: 'app' },
  { name: 'mayor', rig: undefined },
];

function watch(events: MemoryEventLog, clock: FakeClock, spent: { usd: number; tokens: number }) {
  const held: string[][] = [];
  const stopped: string[][] = [];
  const w = new BudgetWatch({
    budgets: () => budgets,
    agents: () => agents,
    spent: (b) => Promise.resolve(b.usd !== undefined ? spent.usd : spent.tokens),
    hold: (a) => held.push([...a].sort()),
    stop: (a) => {
      stopped.push([...a]);
      return Promise.resolve();
    },
    events,
    log: () => undefined,
    clock,
  });
  return { w, held, stopped };
}

const kinds = async (events: MemoryEventLog) =>
  (await events.list({ type: 'budget.*' })).items.map((e) => `${e.type} ${e.subject}`);

describe('budget watch', () => {
  it('trips hold and stop; a new leader takes up the window; the next day resets', async () => {
    const events = new MemoryEventLog();
    const clock = new FakeClock(Date.parse('2026-03-04T10:00:00Z'));
    const spent = { usd: 6, tokens: 950_000 };
    const first = watch(events, clock, spent);
    await first.w.check();
    expect(await kinds(events)).toEqual(['budget.warned app-day', 'budget.warned all-week']);
    spent.usd = 10.5;
    await first.w.check();
    await first.w.check();
    expect(first.stopped).toEqual([['coder', 'reviewer']]);
    expect(first.held.at(-1)).toEqual(['coder', 'reviewer']);
    expect(first.w.view()[0]).toMatchObject({ tripped: true, remaining: 0, spent: 10.5 });
    // The next leader: held from the start, nothing said again.
    const next = watch(events, clock, spent);
    await next.w.takeUp();
    expect(next.held).toEqual([['coder', 'reviewer']]);
    await next.w.check();
    expect(next.stopped).toEqual([]);
    expect(await kinds(events)).toEqual([
      'budget.warned app-day',
      'budget.warned all-week',
      'budget.tripped app-day',
    ]);
    // A new day: the daily budget resets (the weekly one carries on).
    clock.advance(14 * 3_600_000);
    spent.usd = 0;
    await next.w.check();
    expect(next.held.at(-1)).toEqual([]);
    expect((await kinds(events)).slice(3)).toEqual(['budget.reset app-day']);
    const [reset] = (await events.list({ type: 'budget.reset' })).items;
    expect(reset!.payload).toMatchObject({ why: 'window', window: 'day' });
  });
});
