import { describe, expect, it } from 'vitest';
import { nextRelease, planWaves, type WaveItem } from './waves.js';

const item = (id: string, ...needs: string[]): WaveItem => ({ id, needs });

describe('planWaves', () => {
  it.each([
    [
      'no deps: input order, cut by size',
      [item('a'), item('b'), item('c'), item('d'), item('e')],
      2,
      [['a', 'b'], ['c', 'd'], ['e']],
    ],
    [
      'a chain goes in dependency order',
      [item('c', 'b'), item('b', 'a'), item('a')],
      1,
      [['a'], ['b'], ['c']],
    ],
    [
      'layers first, each layer in input order',
      [item('x', 'a'), item('a'), item('y', 'a'), item('b'), item('z', 'x')],
      2,
      [['a', 'b'], ['x', 'y'], ['z']],
    ],
    ['deps outside the set are ignored', [item('a', 'gc-999'), item('b')], 5, [['a', 'b']]],
    ['a cycle goes last', [item('a', 'b'), item('b', 'a'), item('c')], 2, [['c', 'a'], ['b']]],
    ['one wave when size covers all', [item('a'), item('b', 'a')], 10, [['a', 'b']]],
  ])('%s', (_what, items, size, waves) => {
    expect(planWaves(items, size)).toEqual(waves);
  });

  it('every dependency lands in an earlier or the same wave', () => {
    const items = Array.from({ length: 40 }, (_, i) =>
      item(`b${i}`, ...(i % 3 === 2 ? [`b${i - 1}`] : []), ...(i % 7 === 6 ? [`b${i - 5}`] : [])),
    );
    const waves = planWaves(items, 4);
    const waveOf = new Map(waves.flatMap((w, k) => w.map((id) => [id, k] as const)));
    for (const it of items)
      for (const n of it.needs) expect(waveOf.get(n)!).toBeLessThanOrEqual(waveOf.get(it.id)!);
    expect(waves.flat().sort()).toEqual(items.map((i) => i.id).sort());
  });

  it('refuses a size below 1', () => {
    expect(() => planWaves([item('a')], 0)).toThrow(/wave size/);
  });
});

describe('nextRelease', () => {
  const waves = [['a', 'b'], ['c', 'd'], ['e']];
  const landed = (set: string[]) => (id: string) => set.includes(id);

  it.each([
    ['nothing landed yet', 1, [] as string[], 1_000, undefined],
    ['wave 1 landed: wave 2 goes', 1, ['a', 'b'], 1_000, { wave: 2, reason: 'landed' }],
    ['a bead of wave 1 closed but not merged holds wave 2', 1, ['a'], 1_000, undefined],
    ['the timeout releases the next wave anyway', 1, ['a'], 60_000, { wave: 2, reason: 'timeout' }],
    ['all waves out: nothing more', 3, ['a', 'b', 'c', 'd', 'e'], 1_000, undefined],
    ['earlier waves count too', 2, ['c', 'd'], 1_000, undefined],
  ])('%s', (_what, released, done, now, want) => {
    expect(nextRelease(waves, { released, releasedAt: 0 }, landed(done), now, 60_000)).toEqual(
      want,
    );
  });

  it('a timeout of 0 never releases early', () => {
    expect(
      nextRelease(waves, { released: 1, releasedAt: 0 }, () => false, 1e12, 0),
    ).toBeUndefined();
  });
});
