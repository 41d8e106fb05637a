/**
 * Batched merges, as pure decisions: how many waiting requests the next
 * candidate takes, and how a failing batch is split to find its culprit.
 *
 * A batch of B requests is rebased one after another onto its base and
 * gated once, on its last commit. Green: all B land with one gate run.
 * Red: it is bisected (first half, second half; each half again) until the
 * failing request is alone; only that one goes back to its author. Every
 * position the target ref moves to is a tested commit; the commits of a
 * batch's earlier requests lie between two tested positions and are not
 * gated on their own (see docs/merge-queue.md).
 */

/** The outcome of one candidate's build, as the batch-size policy sees it. */
export type BuildOutcome = 'passed' | 'failed' | 'conflict';

export interface BatchPolicy {
  /** Largest batch (`[[rigs]] merge_batch`); 1 turns batching off. */
  max: number;
  /** How many recent build outcomes decide (default 10). */
  window?: number;
  /** Grow while the recent failure rate is at most this (default 0.1). */
  growBelow?: number;
  /** Shrink when it is above this (default 0.3). */
  shrinkAbove?: number;
}

/**
 * The size of the next batch, from the current size and the recent build
 * outcomes (oldest first). Green builds double the size while the recent
 * failure rate stays low; a rate above `shrinkAbove` halves it; in between
 * it holds. Conflicts count as failures (the batch was split for them).
 */
export function nextBatchSize(
  current: number,
  recent: readonly BuildOutcome[],
  p: BatchPolicy,
): number {
  const max = Math.max(1, Math.floor(p.max));
  if (max === 1) return 1;
  const size = Math.min(max, Math.max(1, Math.floor(current)));
  const window = recent.slice(-(p.window ?? 10));
  if (window.length === 0) return size;
  const rate = window.filter((o) => o !== 'passed').length / window.length;
  if (rate > (p.shrinkAbove ?? 0.3)) return Math.max(1, Math.floor(size / 2));
  if (rate <= (p.growBelow ?? 0.1) && window[window.length - 1] === 'passed') {
    return Math.min(max, size * 2);
  }
  return size;
}

/**
 * A red batch split for bisection: the first half (rounded up) and the rest,
 * each still in merge order. The first half is tested on the batch's base,
 * the second on top of the first, so a green first half lands at once.
 */
export function bisect<T>(batch: readonly T[]): [T[], T[]] {
  if (batch.length < 2) throw new Error('a batch of one cannot be split');
  const half = Math.ceil(batch.length / 2);
  return [batch.slice(0, half), batch.slice(half)];
}

/**
 * A batch whose request at `at` could not be rebased (a conflict): the ones
 * before it go on as a batch, the conflicting one alone (so its conflict
 * counts only on the real target), the ones after it as another batch.
 * Empty parts are left out.
 */
export function splitAtConflict<T>(batch: readonly T[], at: number): T[][] {
  return [batch.slice(0, at), batch.slice(at, at + 1), batch.slice(at + 1)].filter(
    (part) => part.length > 0,
  );
}

/**
 * Bisection depth a request needs in the worst case to be found alone in a
 * red batch of `size`: ceil(log2(size)).
 */
export function maxBisectDepth(size: number): number {
  return size <= 1 ? 0 : Math.ceil(Math.log2(size));
}
