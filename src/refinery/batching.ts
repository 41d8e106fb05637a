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
 * gate failure rate stays low; a rate above `shrinkAbove` halves it; in
 * between it holds. Conflicts are left out: they are found while rebasing,
 * before any gate runs, and cost a split, not a bisection of gate runs.
 */
export function nextBatchSize(
  current: number,
  recent: readonly BuildOutcome[],
  p: BatchPolicy,
): number {
  const max = Math.max(1, Math.floor(p.max));
  if (max === 1) return 1;
  const size = Math.min(max, Math.max(1, Math.floor(current)));
  const window = recent.filter((o) => o !== 'conflict').slice(-(p.window ?? 10));
  if (window.length === 0) return size;
  const rate = window.filter((o) => o === 'failed').length / window.length;
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

/** Lines start..end of a file a request changes (in the target's version). */
export interface Touch {
  file: string;
  start: number;
  end: number;
}

export interface Batchable {
  id: string;
  /** Where the request changes the target; undefined when unknown (then it fits anywhere). */
  touches?: readonly Touch[];
}

/** Whether two changes can conflict: one file, line ranges that overlap or touch. */
export function touchesOverlap(a: readonly Touch[], b: readonly Touch[]): boolean {
  for (const x of a) {
    for (const y of b) {
      if (x.file === y.file && x.start <= y.end + 1 && y.start <= x.end + 1) return true;
    }
  }
  return false;
}

/**
 * Cut waiting requests (in merge order) into at most `slots` batches of up
 * to `size`. Each batch starts with the first request not yet placed and
 * takes later ones whose changes cannot conflict with what the batch
 * already changes (no shared file region, adjacent lines included), so two
 * edits git would not merge are not rebased onto each other in one batch
 * (a conflict that would split it); a request skipped that way leads a
 * later batch. With size 1 this is the plain order.
 */
export function formBatches<T extends Batchable>(
  queued: readonly T[],
  size: number,
  slots: number,
): T[][] {
  const batches: T[][] = [];
  const left = [...queued];
  while (left.length && batches.length < slots) {
    const batch: T[] = [left.shift()!];
    const touched: Touch[] = [...(batch[0]!.touches ?? [])];
    for (let i = 0; i < left.length && batch.length < size;) {
      const r = left[i]!;
      if (touchesOverlap(r.touches ?? [], touched)) {
        i++;
        continue;
      }
      touched.push(...(r.touches ?? []));
      batch.push(r);
      left.splice(i, 1);
    }
    batches.push(batch);
  }
  return batches;
}
