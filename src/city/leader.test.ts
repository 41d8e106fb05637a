import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/helpers/wait.js';
import { MemoryLeases, type Leases } from '../db/index.js';
import { LeaderElector } from './leader.js';

const electors: LeaderElector[] = [];
afterEach(async () => {
  for (const e of electors.splice(0)) await e.stop();
});

function elector(leases: Leases, holder: string, events: string[], ttlMs = 300) {
  const e = new LeaderElector({
    leases,
    holder,
    ttlMs,
    renewMs: 50,
    onLead: (term) => {
      events.push(`${holder} leads ${term}`);
    },
    onLose: (term) => {
      events.push(`${holder} stops ${term}`);
    },
  });
  electors.push(e);
  return e;
}

describe('leader election', () => {
  it('one of several servers leads; a stopped leader hands over at once', async () => {
    const leases = new MemoryLeases();
    const events: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((h) => elector(leases, h, events, 60_000));
    await Promise.all([a!.start(), b!.start(), c!.start()]);
    const leaders = [a, b, c].filter((e) => e!.term !== undefined);
    expect(leaders).toHaveLength(1);
    expect(leaders[0]!.term).toBe(1);
    const first = leaders[0]!;
    await first.stop();
    await waitFor(() => [a, b, c].some((e) => e !== first && e!.term === 2), 'a new leader', 5000);
    expect([a, b, c].filter((e) => e!.term !== undefined)).toHaveLength(1);
    expect(events.filter((e) => / leads /.test(e))).toHaveLength(2);
    expect(events.filter((e) => / stops /.test(e))).toHaveLength(1);
  });

  it('a leader that cannot renew steps down within a lease time; another takes over after it lapses', async () => {
    const real = new MemoryLeases();
    let down = false;
    // Server a's view of the database: unreachable once `down`.
    const flaky: Leases = {
      acquire: (...x) => (down ? Promise.reject(new Error('database gone')) : real.acquire(...x)),
      renew: (...x) => (down ? new Promise<boolean>(() => undefined) : real.renew(...x)),
      release: (...x) => real.release(...x),
      get: (n) => real.get(n),
    };
    const events: string[] = [];
    const a = elector(flaky, 'a', events);
    await a.start();
    expect(a.term).toBe(1);
    const b = elector(real, 'b', events);
    await b.start();
    expect(b.term).toBeUndefined();
    down = true; // its renewals now hang
    await waitFor(() => a.term === undefined, 'a stepped down', 5000);
    await waitFor(() => b.term === 2, 'b leads', 5000);
    // Never two at once: a stopped before b started.
    expect(events).toEqual(['a leads 1', 'a stops 1', 'b leads 2']);
  });

  it('a leader whose work will not start gives the lease up', async () => {
    const leases = new MemoryLeases();
    const e = new LeaderElector({
      leases,
      holder: 'a',
      ttlMs: 60_000,
      onLead: () => {
        throw new Error('no provider');
      },
      onLose: () => undefined,
    });
    electors.push(e);
    await e.start();
    expect(e.term).toBeUndefined();
    expect((await leases.get('leader')).holder).toBe('');
  });
});
