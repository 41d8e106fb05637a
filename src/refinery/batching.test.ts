import { describe, expect, it } from 'vitest';
import {
  bisect,
  formBatches,
  maxBisectDepth,
  nextBatchSize,
  splitAtConflict,
  type BuildOutcome,
} from './batching.js';

const runs = (s: string): BuildOutcome[] =>
  [...s].map((c) => (c === 'p' ? 'passed' : c === 'f' ? 'failed' : 'conflict'));

describe('nextBatchSize', () => {
  it.each([
    // current, recent outcomes (oldest first), max, next
    [4, '', 8, 4], // nothing seen yet: hold
    [1, 'p', 8, 2], // green and no failures: double
    [4, 'pppp', 8, 8],
    [8, 'pppppppppp', 8, 8], // capped
    [8, 'ppppppppf', 8, 8], // 1 in 9 failed (0.11): hold
    [8, 'pppfpppfpf', 8, 8], // 3 in 10 (0.3, not above it): hold
    [8, 'ppfpfpfppf', 8, 4], // 4 in 10: halve
    [2, 'ffff', 8, 1],
    [1, 'ffff', 8, 1], // never below 1
    [5, 'pppp', 1, 1], // batching off
    [4, 'pcpp', 8, 8], // conflicts are left out: three green builds, double
    [4, 'cccc', 8, 4], // only conflicts: nothing to go by, hold
  ])('size %i after %j (max %i) -> %i', (current, recent, max, next) => {
    expect(nextBatchSize(current, runs(recent), { max })).toBe(next);
  });

  it('only the window counts', () => {
    expect(nextBatchSize(2, runs('ffffffffff' + 'pppppppppp'), { max: 16, window: 10 })).toBe(4);
  });
});

describe('bisect', () => {
  it.each([
    [
      [1, 2],
      [[1], [2]],
    ],
    [
      [1, 2, 3],
      [[1, 2], [3]],
    ],
    [
      [1, 2, 3, 4, 5, 6, 7, 8],
      [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
      ],
    ],
  ])('%j -> %j (order kept, first half first)', (batch, halves) => {
    expect(bisect(batch)).toEqual(halves);
  });

  it('finds one culprit of 8 in log2(8) = 3 splits', () => {
    let batch = [1, 2, 3, 4, 5, 6, 7, 8];
    let depth = 0;
    while (batch.length > 1) {
      const [a, b] = bisect(batch);
      batch = a.includes(6) ? a : b;
      depth++;
    }
    expect(batch).toEqual([6]);
    expect(depth).toBe(maxBisectDepth(8));
  });

  it('refuses a batch of one', () => {
    expect(() => bisect([1])).toThrow(/cannot be split/);
  });
});

describe('splitAtConflict', () => {
  it.each([
    [[1, 2, 3, 4], 0, [[1], [2, 3, 4]]],
    [[1, 2, 3, 4], 2, [[1, 2], [3], [4]]],
    [[1, 2, 3, 4], 3, [[1, 2, 3], [4]]],
  ])('%j at %i -> %j', (batch, at, parts) => {
    expect(splitAtConflict(batch, at)).toEqual(parts);
  });
});

describe('formBatches', () => {
  /** A request touching whole files (line 1) or file:start-end regions. */
  const r = (id: string, ...where: string[]) => ({
    id,
    touches: where.map((w) => {
      const [file, range] = w.split(':');
      const [start, end] = (range ?? '1-1').split('-').map(Number);
      return { file: file!, start: start!, end: end ?? start! };
    }),
  });
  const ids = (bs: { id: string }[][]) => bs.map((b) => b.map((x) => x.id));

  it.each([
    ['size 1 is the plain order', [r('a'), r('b'), r('c')], 1, 2, [['a'], ['b']]],
    [
      'disjoint requests share a batch',
      [r('a', 'x'), r('b', 'y'), r('c', 'z')],
      8,
      2,
      [['a', 'b', 'c']],
    ],
    [
      'a request editing a region of the batch leads the next one',
      [r('a', 'x'), r('b', 'x'), r('c', 'y'), r('d', 'x', 'z')],
      8,
      3,
      [['a', 'c'], ['b'], ['d']],
    ],
    [
      'distant lines of one file share a batch',
      [r('a', 'f:10-12'), r('b', 'f:30-31')],
      8,
      2,
      [['a', 'b']],
    ],
    [
      'adjacent lines do not (git would not merge them)',
      [r('a', 'f:10-12'), r('b', 'f:13-13')],
      8,
      2,
      [['a'], ['b']],
    ],
    ['slots bound the batches', [r('a', 'x'), r('b', 'x'), r('c', 'x')], 8, 2, [['a'], ['b']]],
    ['size bounds each batch', [r('a', '1'), r('b', '2'), r('c', '3')], 2, 2, [['a', 'b'], ['c']]],
    [
      'unknown changes fit anywhere',
      [{ id: 'a' }, r('b', 'x'), { id: 'c' }],
      8,
      1,
      [['a', 'b', 'c']],
    ],
  ])('%s', (_what, queued, size, slots, want) => {
    expect(ids(formBatches(queued, size, slots))).toEqual(want);
  });
});
