/**
 * A request that failed at the head of the train goes back to its author:
 * a conflict becomes needs-rebase with a conflict bead and mail, a failing
 * gate needs-fix with the gate's output by mail; each with its event.
 */
import { errorMessage } from '../core/index.js';
import type { Git } from '../git/index.js';
import type { MergeHooks } from './merge-hooks.js';
import type { MergeQueue, MergeRequest } from './queue.js';

export interface Failure {
  mr: MergeRequest;
  conflict: boolean;
  files: string[];
  gate: string;
  tail: string;
  base: string;
  tested: string;
}

export async function finalizeFailure(
  queue: MergeQueue,
  hooks: MergeHooks,
  rig: string,
  target: string,
  log: (msg: string) => void,
  f: Failure,
): Promise<void> {
  const { mr } = f;
  try {
    if (f.conflict) {
      let bead = '';
      try {
        bead = await hooks.conflicted(mr, f.files);
      } catch (err) {
        log(`mq ${rig}: conflict bead for ${mr.id}: ${errorMessage(err)}`);
      }
      const done = await queue.markConflict(mr.id, f.files, bead);
      await hooks.record(
        'mq.conflicted',
        done,
        { files: f.files, conflict_bead: bead, base: f.base },
        `merge request ${mr.id} (${mr.branch}) conflicts with ${target} in ${f.files.length} file(s); back to ${mr.author || 'its author'}`,
      );
      return;
    }
    const done = await queue.markGateFailed(mr.id, f.gate, f.tail);
    try {
      await hooks.gateFailed(done, f.gate, f.tail);
    } catch (err) {
      log(`mq ${rig}: notifying ${mr.author} of ${mr.id}: ${errorMessage(err)}`);
    }
    await hooks.record(
      'mq.failed',
      done,
      { gate: f.gate, base: f.base, tested: f.tested },
      `merge request ${mr.id} (${mr.branch}) failed gate ${f.gate}`,
    );
  } catch (err) {
    log(`mq ${rig}: finalizing ${mr.id}: ${errorMessage(err)}`);
  }
}

/** Conflict checks of requests against a target head, each pair checked once while clean. */
export class ConflictScreen {
  /** "target-head request-head" pairs known to merge cleanly. */
  private readonly clean = new Set<string>();

  constructor(private readonly git: Git) {}

  /** The conflicting files when `head` (a request) conflicts with `target`; undefined when clean. */
  async conflicts(target: string, head: string): Promise<string[] | undefined> {
    const key = `${target} ${head}`;
    if (this.clean.has(key)) return undefined;
    const check = await this.git.mergeCheck(target, head).catch(() => undefined);
    if (!check || check.clean) {
      if (this.clean.size > 10_000) this.clean.clear();
      this.clean.add(key);
      return undefined;
    }
    return check.files;
  }
}

export interface Split {
  mrs: MergeRequest[];
  depth: number;
  why: 'failed' | 'conflict';
  parts: MergeRequest[][];
  gate: string | undefined;
  files: string[] | undefined;
  conflictAt: number;
}

/** A red or conflicting batch was split: its build record and mq.batch_split event. */
export async function recordSplit(
  queue: MergeQueue,
  hooks: MergeHooks,
  rig: string,
  e: Split,
): Promise<void> {
  const depth = e.depth + (e.why === 'failed' ? 1 : 0);
  await queue.recordBuild(rig, { size: e.mrs.length, outcome: 'split', depth, gateRuns: 0 });
  await hooks.record(
    'mq.batch_split',
    e.mrs[0]!,
    {
      ids: e.mrs.map((mr) => mr.id),
      parts: e.parts.map((p) => p.map((mr) => mr.id)),
      reason: e.why,
      depth,
      ...(e.why === 'failed' ? { gate: e.gate ?? '' } : { files: e.files ?? [] }),
    },
    `batch of ${e.mrs.length} ${e.why === 'failed' ? `failed gate ${e.gate ?? ''}: bisecting` : `has a conflict in ${e.mrs[e.conflictAt]?.id ?? ''}: split around it`}`,
  );
}
