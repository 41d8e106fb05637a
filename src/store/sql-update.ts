/**
 * Changing and deleting a bead in the store on a database server, in the
 * caller's transaction: the bead's row is locked first, and a change that
 * opens or closes it refreshes the blocked state of what depends on it.
 */
import type { SqlConn } from '../db/index.js';
import {
  addLabels,
  blockedDependents,
  checkNoCycle,
  link,
  marks,
  one,
  refreshBlocked,
  rowById,
  setMetadata,
  type BeadRow,
} from './sql-rows.js';
import { PARENT_CHILD, type Bead, type BeadStatus, type UpdateBeadInput } from './types.js';
import { isInfraType, normalizeUpdate } from './validate.js';

/** Move a locked row to `status` (a close sets closed_at and the reason; leaving in_progress drops the lease). */
export async function applyStatus(
  tx: SqlConn,
  r: BeadRow,
  status: BeadStatus,
  now: number,
  reason?: string,
): Promise<void> {
  if (status === r.status) return;
  const lease = status === 'in_progress';
  await tx.run(
    `UPDATE beads SET status = ?, closed_at = ?, close_reason = ?,
     claimed_at = ?, lease_expires_at = ?, updated_at = ? WHERE id = ?`,
    [
      status,
      status === 'closed' ? now : null,
      status === 'closed' ? (reason ?? '') : r.close_reason,
      lease ? r.claimed_at : null,
      lease ? r.lease_expires_at : null,
      now,
      r.id,
    ],
  );
  if ((r.status === 'closed') !== (status === 'closed')) {
    await refreshBlocked(tx, await blockedDependents(tx, r.id));
  }
}

/** Apply `patch` to bead `id`; returns the bead as it now is. */
export async function updateIn(
  tx: SqlConn,
  id: string,
  patch: UpdateBeadInput,
  now: number,
): Promise<Bead> {
  const p = normalizeUpdate(patch);
  const r = await rowById(tx, id, true);
  if (p.parent !== undefined && p.parent !== '' && p.parent !== r.parent) {
    await rowById(tx, p.parent, true);
    await checkNoCycle(tx, id, p.parent);
  }
  const sets: string[] = [];
  const args: unknown[] = [];
  const set = (col: string, v: unknown): void => {
    sets.push(`${col} = ?`);
    args.push(v);
  };
  if (p.title !== undefined) set('title', p.title);
  if (p.priority !== undefined) set('priority', p.priority);
  if (p.description !== undefined) set('description', p.description);
  if (p.assignee !== undefined) set('assignee', p.assignee);
  if (p.ref !== undefined) set('ref', p.ref);
  if (p.type !== undefined) {
    set('issue_type', p.type);
    set('infra', isInfraType(p.type) ? 1 : 0);
  }
  set('updated_at', now);
  await tx.run(`UPDATE beads SET ${sets.join(', ')} WHERE id = ?`, [...args, id]);
  await addLabels(tx, r.seq, p.labels ?? []);
  const drop = p.remove_labels ?? [];
  if (drop.length) {
    await tx.run(`DELETE FROM labels WHERE bead_seq = ? AND label IN (${marks(drop.length)})`, [
      r.seq,
      ...drop,
    ]);
  }
  await setMetadata(tx, r.seq, Object.entries(p.metadata ?? {}));
  if (p.parent !== undefined && p.parent !== r.parent) {
    if (r.parent) {
      await tx.run(
        `DELETE FROM deps WHERE issue_id = ? AND depends_on_id = ? AND type = '${PARENT_CHILD}'`,
        [id, r.parent],
      );
    }
    await tx.run('UPDATE beads SET parent = ? WHERE id = ?', [p.parent, id]);
    if (p.parent) await link(tx, id, p.parent, PARENT_CHILD, now);
    await refreshBlocked(tx, [id]);
  }
  if (p.status !== undefined) await applyStatus(tx, await rowById(tx, id), p.status, now);
  return one(tx, id);
}

/** Delete bead `id` with its labels, metadata and links; its children lose their parent. */
export async function deleteIn(tx: SqlConn, id: string): Promise<void> {
  const r = await rowById(tx, id, true);
  const dependents = (
    await tx.query<{ issue_id: string }>('SELECT issue_id FROM deps WHERE depends_on_id = ?', [id])
  ).map((d) => d.issue_id);
  await tx.run('DELETE FROM deps WHERE issue_id = ? OR depends_on_id = ?', [id, id]);
  await tx.run('DELETE FROM labels WHERE bead_seq = ?', [r.seq]);
  await tx.run('DELETE FROM metadata WHERE bead_seq = ?', [r.seq]);
  await tx.run("UPDATE beads SET parent = '' WHERE parent = ?", [id]);
  await tx.run('DELETE FROM beads WHERE id = ?', [id]);
  await refreshBlocked(tx, dependents);
}
