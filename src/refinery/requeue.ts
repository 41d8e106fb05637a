/**
 * Requests sent back to their authors come back by themselves: a request
 * that is needs-rebase or needs-fix is submitted again when its branch has a
 * new head (the author rebased or fixed it and committed), and a
 * needs-rebase request is queued again when its conflict bead is closed.
 */
import { errorMessage } from '../core/index.js';
import type { Git } from '../git/index.js';
import type { MergeHooks } from './merge-hooks.js';
import type { MergeQueue } from './queue.js';

export async function requeueReturned(
  git: Git,
  queue: MergeQueue,
  rig: string,
  hooks: MergeHooks,
  log: (msg: string) => void,
): Promise<number> {
  let n = 0;
  for (const mr of await queue.list({ rig, states: ['needs-rebase', 'needs-fix'], limit: 1000 })) {
    try {
      const head = await git.resolve(`refs/heads/${mr.branch}`);
      if (head && head !== mr.head) {
        const r = await queue.submit({
          rig,
          branch: mr.branch,
          head,
          author: mr.author,
          priority: mr.priority,
          ...(mr.bead ? { bead: mr.bead } : {}),
        });
        if (!r.created) continue;
        n++;
        await hooks.record(
          'mq.submitted',
          r.request,
          { head, bead: mr.bead, superseded: r.superseded, auto: 'new head', replaces: mr.id },
          `merge request ${r.request.id} for ${mr.branch} (${head.slice(0, 10)}) submitted again by itself: the branch has a new head (replaces ${mr.id})`,
        );
        continue;
      }
      if (mr.state === 'needs-rebase' && mr.conflict_bead && hooks.beadClosed) {
        if (!(await hooks.beadClosed(mr.conflict_bead))) continue;
        const again = await queue.retry(mr.id);
        n++;
        await hooks.record(
          'mq.submitted',
          again,
          { retry: again.retries, auto: 'conflict bead closed', conflict_bead: mr.conflict_bead },
          `merge request ${mr.id} queued again by itself: its conflict bead ${mr.conflict_bead} was closed`,
        );
      }
    } catch (e) {
      log(`mq ${rig}: requeueing ${mr.id}: ${errorMessage(e)}`);
    }
  }
  return n;
}
