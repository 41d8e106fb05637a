import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector } from '../city/index.js';
import { MemoryLeases } from '../db/index.js';
import { FakeProvider } from '../runtime/index.js';
import { NotLeaderError, fencedProvider } from './fenced-provider.js';

const electors: LeaderElector[] = [];
afterEach(async () => {
  for (const e of electors.splice(0)) await e.stop();
});

/** Hold the event loop for `ms`, as SIGSTOP holds the whole process: no timer fires meanwhile. */
function pause(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

describe('the leader fence on sessions', () => {
  it('a leader paused past its lease is refused its next start, stop and interrupt before any timer of its own runs', async () => {
    const leases = new MemoryLeases();
    const elector = new LeaderElector({
      leases,
      holder: 'a',
      ttlMs: 300,
      renewMs: 50,
      onLead: () => undefined,
      onLose: () => undefined,
    });
    electors.push(elector);
    await elector.start();
    expect(elector.term).toBe(1);
    const inner = new FakeProvider();
    const p = fencedProvider(inner, () => elector.leadingNow);
    await p.start('s1', { command: 'x', work_dir: '/' });
    expect(await p.isRunning('s1')).toBe(true);
    pause(400);
    // Resumed: the elector has not run yet (it still believes it holds the
    // lease), but the fence reads the clock.
    expect(elector.term).toBe(1);
    const refusals = [
      p.start('s2', { command: 'x', work_dir: '/' }),
      p.stop('s1'),
      p.interrupt('s1'),
    ];
    for (const r of refusals) await expect(r).rejects.toBeInstanceOf(NotLeaderError);
    // Reading and nudging are anyone's.
    expect(await p.isRunning('s1')).toBe(true);
    await p.nudge('s1', 'hello');
    expect(await inner.isRunning('s2')).toBe(false);
  });

  it('passes everything through while the lease is confirmed, with the provider as `this`', async () => {
    const inner = new FakeProvider();
    const p = fencedProvider(inner, () => true);
    await p.start('s1', { command: 'x', work_dir: '/' });
    expect(p.name).toBe(inner.name);
    expect((await p.snapshot('')).map((s) => s.name)).toEqual(['s1']);
    await p.stop('s1');
    expect(await inner.isRunning('s1')).toBe(false);
  });
});
