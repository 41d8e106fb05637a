/**
 * The engine's effects on the rest of the city: events for every step, the
 * source bead closed on merge, the author mailed on every outcome, and a
 * conflict bead assigned back to the author on a conflict.
 */
import type { EventLog } from '../events/index.js';
import type { Mail } from '../mail/index.js';
import type { Bead, CreateBeadInput } from '../store/index.js';
import type { MergeHooks } from './merge-hooks.js';
import type { MergeRequest } from './queue.js';

const ACTOR = 'refinery';

export interface CityMergeHooksOptions {
  events: EventLog;
  mail: Mail | undefined;
  createBead(actor: string, input: CreateBeadInput): Promise<Bead>;
  closeBead(actor: string, id: string, reason: string): Promise<unknown>;
  /** The bead (NotFoundError when there is none); checks submissions that name one. */
  getBead?(id: string): Promise<Bead>;
  /** Set a metadata key (records gc.touched on a submitted bead). */
  setMetadata?(actor: string, id: string, key: string, value: string): Promise<unknown>;
}

/** At most this many files are kept in gc.touched. */
const TOUCHED_MAX = 200;

export function cityMergeHooks(o: CityMergeHooksOptions): MergeHooks {
  const tell = async (mr: MergeRequest, subject: string, body: string) => {
    if (!o.mail || !mr.author) return;
    await o.mail.send(ACTOR, mr.author, { subject, body });
  };
  return {
    ...(o.getBead
      ? {
          async checkBead(bead: string) {
            await o.getBead!(bead);
          },
          async beadClosed(bead: string) {
            return (await o.getBead!(bead)).status === 'closed';
          },
        }
      : {}),
    ...(o.getBead && o.setMetadata
      ? {
          async touched(bead: string, files: string[]) {
            const b = await o.getBead!(bead);
            const had = (b.metadata['gc.touched'] ?? '').split(',').filter(Boolean);
            const all = [...new Set([...had, ...files])].slice(0, TOUCHED_MAX);
            if (all.length === had.length) return;
            await o.setMetadata!(ACTOR, bead, 'gc.touched', all.join(','));
          },
        }
      : {}),
    async record(type, mr, payload, message) {
      await o.events.record({
        type,
        actor: ACTOR,
        subject: mr.id,
        payload: { rig: mr.rig, branch: mr.branch, author: mr.author, ...payload },
        message,
      });
    },
    async merged(mr) {
      if (mr.bead) await o.closeBead(ACTOR, mr.bead, `merged as ${mr.merged_sha}`);
      await tell(
        mr,
        `Merged: ${mr.branch}`,
        `Merge request ${mr.id} (${mr.branch}) landed on ${mr.rig} at ${mr.merged_sha}.${mr.bead ? ` Bead ${mr.bead} is closed.` : ''}`,
      );
    },
    async conflicted(mr, files) {
      const bead = await o.createBead(ACTOR, {
        title: `Resolve merge conflict: ${mr.branch}`.slice(0, 200),
        type: 'task',
        priority: Math.min(mr.priority, 1),
        assignee: mr.author,
        description:
          `Merge request ${mr.id} (${mr.branch} at ${mr.head}) conflicts with the target of rig ${mr.rig}.\n\n` +
          `Conflicting files:\n${files.map((f) => `- ${f}`).join('\n')}\n\n` +
          'Rebase the branch onto the target, resolve, commit and submit again (`gc mq submit`); ' +
          'the new submission replaces this one.',
        labels: ['gc:mq-conflict', `mq:${mr.id}`],
        // Its paths: other work on these files waits while it is resolved (conflict-aware claims).
        metadata: { 'gc.mq': mr.id, 'gc.rig': mr.rig, 'gc.paths': files.join(',') },
      });
      await tell(
        mr,
        `Conflict: ${mr.branch}`,
        `Merge request ${mr.id} (${mr.branch}) conflicts with the target of ${mr.rig}.\n` +
          `Files:\n${files.map((f) => `- ${f}`).join('\n')}\n` +
          `Bead ${bead.id} tracks the fix; rebase, resolve and submit again.`,
      );
      return bead.id;
    },
    async gateFailed(mr, gate, tail) {
      await tell(
        mr,
        `Gate ${gate} failed: ${mr.branch}`,
        `Merge request ${mr.id} (${mr.branch}) failed the ${gate} gate on ${mr.rig}. ` +
          `Fix it and submit again; the new submission replaces this one.\n\nLast output:\n${tail.slice(-3000)}`,
      );
    },
  };
}
