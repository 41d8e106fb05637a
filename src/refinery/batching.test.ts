import { describe, expect, it } from 'vitest';
import {
  bisect,
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
    [4, 'pcpp', 8, 4], // a conflict counts as a failure (1 in 4): hold
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
