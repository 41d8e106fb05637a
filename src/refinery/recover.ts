/**
 * After a restart: requests a dead server left `merging` are finished when
 * their tested commit is already in the target, landed when the target is
 * still at their base, and queued again otherwise; `testing` ones go back to
 * the queue. A batch's requests share its base and tested tip, so the first
 * one lands the batch and the rest find it landed.
 */
import type { Git } from '../git/index.js';
import type { MergeQueue, MergeRequest } from './queue.js';

export async function recoverUnfinished(
  git: Git,
  queue: MergeQueue,
  rig: string,
  targetRef: string,
  log: (msg: string) => void,
  finish: (mr: MergeRequest) => Promise<void>,
): Promise<void> {
  for (const mr of await queue.unfinished(rig)) {
    if (mr.state === 'merging' && mr.tested) {
      const head = await git.resolve(targetRef);
      if (head && (await git.isAncestor(mr.tested, head))) {
        log(`mq ${rig}: ${mr.id} had landed before the restart; finishing it`);
        await finish(mr);
        continue;
      }
      if (head === mr.base) {
        const ok = await git.casRef(targetRef, mr.tested, mr.base, `gc mq: merge ${mr.id}`);
        if (ok) {
          log(`mq ${rig}: landing ${mr.id}, interrupted by the restart`);
          await finish(mr);
          continue;
        }
      }
    }
    await queue.requeue(mr.id);
  }
}
