import { describe, expect, it } from 'vitest';
import { Ticker } from './ticker.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ticker(o: { gap: number; tickMs?: number; idle?: number }) {
  const starts: number[] = [];
  const concurrency = { now: 0, max: 0 };
  let active = true;
  const t = new Ticker({
    run: async () => {
      starts.push(performance.now());
      concurrency.max = Math.max(concurrency.max, ++concurrency.now);
      await sleep(o.tickMs ?? 0);
      concurrency.now--;
    },
    active: () => active,
    idleWait: () => o.idle ?? 60_000,
    nudgeGapMs: o.gap,
  });
  return {
    t,
    starts,
    concurrency,
    stop: () => {
      active = false;
      t.stop();
    },
  };
}

describe('Ticker', () => {
  it('runs one tick per nudge gap however many writes nudge it', async () => {
    const { t, starts, stop } = ticker({ gap: 100 });
    t.poke();
    const end = performance.now() + 550;
    while (performance.now() < end) {
      t.nudge();
      await sleep(1);
    }
    stop();
    // ~500 nudges; without the gap every one of them would tick.
    expect(starts.length).toBeGreaterThanOrEqual(4);
    expect(starts.length).toBeLessThanOrEqual(7);
    for (let i = 1; i < starts.length; i++) {
      expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(95);
    }
  });

  it('a nudge after a quiet spell ticks at once; a poke never waits for the gap', async () => {
    const { t, starts, stop } = ticker({ gap: 10_000 });
    t.nudge();
    await sleep(20);
    expect(starts.length).toBe(1);
    t.poke();
    await sleep(20);
    expect(starts.length).toBe(2);
    t.nudge(); // within the gap: waits
    await sleep(50);
    expect(starts.length).toBe(2);
    stop();
  });

  it('never overlaps: a poke during a tick runs one more tick after it', async () => {
    const { t, starts, concurrency, stop } = ticker({ gap: 0, tickMs: 50 });
    t.poke();
    t.poke();
    t.poke();
    t.nudge();
    await sleep(200);
    stop();
    expect(concurrency.max).toBe(1);
    expect(starts.length).toBe(2);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(45);
  });

  it('an idle ticker ticks on its timer and stops when told', async () => {
    const { t, starts, stop } = ticker({ gap: 0, idle: 30 });
    t.poke();
    await sleep(115);
    const n = starts.length;
    expect(n).toBeGreaterThanOrEqual(3);
    stop();
    await sleep(80);
    expect(starts.length).toBe(n);
  });
});
