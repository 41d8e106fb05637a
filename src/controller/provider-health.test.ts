import { describe, expect, it } from 'vitest';
import { spec } from '../../test/helpers/city-spec.js';
import { CityOps } from '../city/index.js';
import { MemoryEventLog } from '../events/index.js';
import { FakeProvider, type SessionSnapshot } from '../runtime/index.js';
import { MemoryStore } from '../store/index.js';
import { Controller } from './controller.js';

/** A provider whose session list fails while `failing` is set. */
class FlakyProvider extends FakeProvider {
  failing: string | undefined;
  override snapshot(prefix: string): Promise<SessionSnapshot[]> {
    if (this.failing) return Promise.reject(new Error(this.failing));
    return super.snapshot(prefix);
  }
}

describe('a provider that cannot list its sessions', () => {
  it('the tick starts and stops nothing, says why once per cause, and catches up when it can', async () => {
    const events = new MemoryEventLog();
    const ops = new CityOps(new MemoryStore({ prefix: 'gc' }), events);
    const provider = new FlakyProvider();
    const controller = new Controller({
      provider,
      ops,
      spec: spec('[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n'),
    });
    const failed = async () =>
      (await events.list({ type: 'controller.provider_failed' })).items.map(
        (e) => (e.payload as { error: string }).error,
      );
    provider.failing = 'list-running: exit 1';
    await expect(controller.tick()).rejects.toThrow(/exit 1/);
    await expect(controller.tick()).rejects.toThrow(/exit 1/);
    expect(await provider.isRunning('mayor')).toBe(false);
    expect(await failed()).toEqual(['list-running: exit 1']);
    provider.failing = 'list-running: timed out';
    await expect(controller.tick()).rejects.toThrow(/timed out/);
    expect(await failed()).toEqual(['list-running: exit 1', 'list-running: timed out']);
    provider.failing = undefined;
    await controller.tick();
    expect(await provider.isRunning('mayor')).toBe(true);
    // The same cause again after a good tick is news again.
    provider.failing = 'list-running: exit 1';
    await expect(controller.tick()).rejects.toThrow(/exit 1/);
    expect(await failed()).toHaveLength(3);
  });
});
