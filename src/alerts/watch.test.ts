/**
 * The alert watch over a real event log (memory) on a fake clock: figures
 * per rig become alert instances; a new leader takes up an alert the last
 * one fired (no second alert.fired) and resolves it once.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../core/index.js';
import type { ControllerStatus } from '../controller/index.js';
import { MemoryEventLog } from '../events/index.js';
import type { RigStats } from '../refinery/index.js';
import { AlertWatch, type AlertRule } from './index.js';

const rule: AlertRule = {
  name: 'deep',
  metric: 'mq_depth',
  above: 2,
  forMs: 1000,
  clearForMs: 1000,
  severity: 'warning',
  route: ['mail:mayor', 'webhook:https://hooks.example.test/gc?token=s3cret'],
};

function watch(events: MemoryEventLog, clock: FakeClock, depth: Map<string, number>) {
  const mailed: string[] = [];
  const pushed: { url: string; alert: Record<string, unknown> }[] = [];
  const w = new AlertWatch(
    {
      // The figure under test is the queue's; the controller's view is empty.
      status: () => ({ sessions: [], last_tick_ms: 0 }) as unknown as ControllerStatus,
      rigStats: () =>
        Promise.resolve([...depth].map(([rig, d]) => ({ rig, depth: d }) as unknown as RigStats)),
      events,
      rules: () => [rule],
      mail: (to, subject) => {
        mailed.push(`${to}: ${subject}`);
        return Promise.resolve();
      },
      push: (url, alert) => pushed.push({ url, alert }),
      log: () => undefined,
      clock,
    },
    3_600_000,
  );
  return { w, mailed, pushed };
}

const types = async (events: MemoryEventLog) =>
  (await events.list({ type: 'alert.*' })).items.map(
    (e) => `${e.type} ${(e.payload as { rig: string }).rig}`,
  );

describe('alert watch', () => {
  it('one instance per rig; a new leader takes up what was firing', async () => {
    const events = new MemoryEventLog();
    const clock = new FakeClock(Date.parse('2026-03-04T10:00:00Z'));
    const depth = new Map([
      ['app', 5],
      ['web', 1],
    ]);
    const first = watch(events, clock, depth);
    await first.w.start();
    await first.w.check();
    clock.advance(1000);
    await first.w.check();
    expect(await types(events)).toEqual(['alert.fired app']);
    expect(first.mailed).toEqual([
      'mayor: [warning] alert deep (warning) fired in rig app: mq_depth is 5, above 2',
    ]);
    expect(first.pushed.map((p) => p.url)).toEqual(['https://hooks.example.test/gc?token=s3cret']);
    expect(first.pushed[0]!.alert).toMatchObject({
      alert: 'deep',
      rig: 'app',
      state: 'fired',
      value: 5,
    });
    expect(first.w.active().map((a) => [a.rig, a.state])).toEqual([['app', 'firing']]);
    await first.w.stop();
    // The next leader: still deep, no second alert; then drained, resolved once.
    const next = watch(events, clock, depth);
    await next.w.start();
    expect(next.w.active().map((a) => [a.rig, a.state])).toEqual([['app', 'firing']]);
    clock.advance(5000);
    await next.w.check();
    depth.set('app', 0);
    await next.w.check();
    clock.advance(1000);
    await next.w.check();
    await next.w.check();
    await next.w.stop();
    expect(await types(events)).toEqual(['alert.fired app', 'alert.resolved app']);
    expect(next.w.active()).toEqual([]);
    expect(next.pushed.map((p) => p.alert.state)).toEqual(['resolved']);
  });

  it('raised alerts (the patrol): fire once, show their figure, resolve once, survive a failover', async () => {
    const events = new MemoryEventLog();
    const clock = new FakeClock(Date.parse('2026-03-04T10:00:00Z'));
    const first = watch(events, clock, new Map());
    await first.w.start();
    const raised = {
      alert: 'patrol:stalled:w-1',
      rig: 'app',
      value: 960_000,
      severity: 'critical' as const,
      metric: 'patrol:stalled',
      message: 'patrol: w-1 is stalled',
      route: ['webhook:https://hooks.example.test/p'],
    };
    await first.w.raise(raised);
    await first.w.raise(raised);
    // The rules' passes leave a raised alert alone.
    await first.w.check();
    expect(first.w.active().map((a) => [a.alert, a.metric, a.severity, a.state])).toEqual([
      ['patrol:stalled:w-1', 'patrol:stalled', 'critical', 'firing'],
    ]);
    expect(first.pushed.map((p) => p.alert.state)).toEqual(['fired']);
    await first.w.stop();
    const next = watch(events, clock, new Map());
    await next.w.start();
    expect(next.w.active().map((a) => [a.alert, a.metric, a.severity])).toEqual([
      ['patrol:stalled:w-1', 'patrol:stalled', 'critical'],
    ]);
    await next.w.settle('patrol:stalled:w-1', 'app', 0, []);
    await next.w.settle('patrol:stalled:w-1', 'app', 0, []);
    expect(await types(events)).toEqual(['alert.fired app', 'alert.resolved app']);
    expect(next.w.active()).toEqual([]);
  });
});
