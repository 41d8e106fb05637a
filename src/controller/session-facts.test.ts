import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onEachServer } from '../../test/helpers/db.js';
import { CityOps } from '../city/index.js';
import { parseCityConfig } from '../config/index.js';
import { FakeClock } from '../core/index.js';
import { MemoryEventLog } from '../events/index.js';
import { FakeProvider } from '../runtime/index.js';
import { MemoryStore } from '../store/index.js';
import { Controller } from './controller.js';
import { runSessionFactsConformance } from './session-facts-conformance.js';
import { FileSessionFacts, SqlSessionFacts } from './session-facts.js';
import { citySpec } from './spec.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-facts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runSessionFactsConformance('file', () => {
  const file = join(dir, `f${n++}`, 'sessions.json');
  return Promise.resolve({ open: () => new FileSessionFacts(file) });
});

await onEachServer('session facts', (kind, fresh) => {
  runSessionFactsConformance(kind, async () => {
    const db = await fresh();
    return { open: () => new SqlSessionFacts(db) };
  });
});

describe('a restarted controller', () => {
  const spec = citySpec(
    parseCityConfig(
      '[workspace]\nname = "t"\n[daemon]\npatrol_interval = "1h"\nmax_restarts = 3\nrestart_window = "1h"\n[session]\nprovider = "fake"\n[[agent]]\nname = "solo"\n[[agent]]\nname = "flaky"\n',
      '/city/city.toml',
    ),
  );
  const controllerOn = (facts: FileSessionFacts, provider: FakeProvider, clock: FakeClock) =>
    new Controller({
      provider,
      ops: new CityOps(new MemoryStore({ prefix: 'gc', clock }), new MemoryEventLog()),
      clock,
      spec,
      facts,
    });

  it('keeps a quarantine and the crash-loop record across a restart', async () => {
    const file = join(dir, 'restart', 'sessions.json');
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const provider = new FakeProvider({ clock });
    const first = controllerOn(new FileSessionFacts(file), provider, clock);
    await first.tick();
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      provider.kill('solo', 1);
      await first.tick();
    }
    clock.advance(1000);
    provider.kill('flaky', 1);
    await first.tick();
    expect(first.status().sessions.find((s) => s.name === 'solo')?.state).toBe('quarantined');
    expect(await provider.isRunning('solo')).toBe(false);

    // A new server: the quarantined session stays down; flaky remembers its death.
    const second = controllerOn(new FileSessionFacts(file), provider, clock);
    expect(await second.loadFacts()).toBe(2);
    await second.tick();
    expect(await provider.isRunning('solo')).toBe(false);
    expect(second.status().sessions.find((s) => s.name === 'solo')?.state).toBe('quarantined');
    expect(second.trackers.get('flaky')?.deaths).toHaveLength(1);
    // Reset clears it for good: a third server starts it.
    await second.resetSession('solo');
    const third = controllerOn(new FileSessionFacts(file), provider, clock);
    expect(await third.loadFacts()).toBe(1);
    await third.tick();
    expect(await provider.isRunning('solo')).toBe(true);
  });

  it('deaths older than the restart window are not taken up; a damaged file is a clear error', async () => {
    const file = join(dir, 'old', 'sessions.json');
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const facts = new FileSessionFacts(file);
    await facts.save({
      session: 'flaky',
      deaths: [clock.now() - 2 * 3600_000],
      quarantined: false,
    });
    const c = controllerOn(new FileSessionFacts(file), new FakeProvider({ clock }), clock);
    await c.loadFacts();
    expect(c.trackers.get('flaky')?.deaths).toEqual([]);
    writeFileSync(file, '{"sessions": [');
    await expect(new FileSessionFacts(file).load()).rejects.toThrow(/cannot read .*sessions\.json/);
  });
});
