/**
 * A request that failed at the head of the train goes back to its author:
 * a conflict becomes needs-rebase with a conflict bead and mail, a failing
 * gate needs-fix with the gate's output by mail; each with its event.
 */
import { errorMessage } from '../core/index.js';
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
      const done = queue.markConflict(mr.id, f.files, bead);
      await hooks.record(
        'mq.conflicted',
        done,
        { files: f.files, conflict_bead: bead, base: f.base },
        `merge request ${mr.id} (${mr.branch}) conflicts with ${target} in ${f.files.length} file(s); back to ${mr.author || 'its author'}`,
      );
      return;
    }
    const done = queue.markGateFailed(mr.id, f.gate, f.tail);
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
