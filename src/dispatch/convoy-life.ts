/**
 * A convoy's lifecycle past creation (REFERENCE.md 9.3): close (all its
 * beads closed, or forced), land (the same, for an owned convoy), check
 * (close every finished unowned convoy now), stranded (open convoys with
 * open work nobody holds), target (the branch its work goes to), delete.
 * Closing tells `convoy.owner` and `convoy.notify` by mail when a notifier
 * is given, and records `convoy.closed`.
 */
import { ConflictError, ValidationError, errorMessage } from '../core/index.js';
import type { Mail } from '../mail/index.js';
import type { CityOps } from '../city/index.js';
import { BLOCKING_DEP_TYPES, type Bead } from '../store/index.js';
import { CONVOY, CONVOY_META, finish, type ConvoyNotifier } from './convoy.js';

async function convoyBead(ops: CityOps, id: string): Promise<Bead> {
  const c = await ops.store.get(id);
  if (c.issue_type !== CONVOY) {
    throw new ValidationError(`${id} is a ${c.issue_type}, not a convoy`, { where: 'convoy' });
  }
  return c;
}

async function kids(ops: CityOps, id: string): Promise<Bead[]> {
  const out: Bead[] = [];
  let cursor: string | undefined;
  do {
    const p = await ops.store.children(id, { limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...p.items);
    cursor = p.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

/** Wave gates holding the convoy's later waves (convoy.ts). */
async function waveGates(ops: CityOps, id: string): Promise<Bead[]> {
  return (await ops.store.list({ type: 'gate', metadata: { 'gc.convoy': id }, limit: 1000 })).items;
}

export interface ConvoyCloseResult {
  convoy: Bead;
  /** False when it was closed already (closing is idempotent). */
  changed: boolean;
  total: number;
  open: number;
  forced: boolean;
  notified: string[];
}

/**
 * Close a convoy. Refused while any of its beads is open, unless `force`.
 * `land` is the owned convoy's close (refused for one that is not owned).
 */
export async function closeConvoy(
  ops: CityOps,
  actor: string,
  id: string,
  o: { reason?: string; force?: boolean; land?: boolean; notify?: ConvoyNotifier } = {},
): Promise<ConvoyCloseResult> {
  const c = await convoyBead(ops, id);
  const owned = c.labels.includes('owned');
  if (o.land && !owned) {
    throw new ConflictError(`convoy ${id} is not owned: it closes by itself`, {
      fix: `gc convoy close ${id}`,
    });
  }
  const children = await kids(ops, id);
  const open = children.filter((b) => b.status !== 'closed');
  const base = { total: children.length, open: open.length, forced: false, notified: [] };
  if (c.status === 'closed') return { convoy: c, changed: false, ...base };
  if (open.length && !o.force) {
    throw new ConflictError(
      `convoy ${id} has ${open.length} open bead(s): ${open
        .slice(0, 5)
        .map((b) => b.id)
        .join(', ')}${open.length > 5 ? ', ...' : ''}`,
      { fix: `close them first, or --force` },
    );
  }
  const reason = o.reason ?? (o.land ? 'landed by owner' : 'closed by hand');
  const closed = await finish(ops, actor, c, reason, children.length, o.notify, {
    forced: open.length > 0,
    ...(o.land ? { landed: true } : {}),
  });
  return {
    convoy: closed.convoy,
    changed: true,
    ...base,
    forced: open.length > 0,
    notified: closed.notified,
  };
}

export interface StrandedConvoy {
  id: string;
  title: string;
  /** Open beads nobody holds, with whether each is ready (unblocked) now. */
  beads: { id: string; title: string; ready: boolean; routed_to: string }[];
}

/** Open convoys with open beads nobody holds: work that needs feeding (a sling). */
export async function strandedConvoys(ops: CityOps): Promise<StrandedConvoy[]> {
  const out: StrandedConvoy[] = [];
  const open = await ops.store.list({ type: CONVOY, status: ['open', 'in_progress'], limit: 1000 });
  for (const c of open.items) {
    const idle = (await kids(ops, c.id)).filter((b) => b.status === 'open' && !b.assignee);
    if (!idle.length) continue;
    // Ready: nothing it waits on is still open.
    const waits = idle.flatMap((b) =>
      b.dependencies.filter((d) => BLOCKING_DEP_TYPES.has(d.type)).map((d) => d.depends_on_id),
    );
    const openIds = new Set(
      (await ops.store.getMany([...new Set(waits)]))
        .filter((b) => b.status !== 'closed')
        .map((b) => b.id),
    );
    const ready = new Set(
      idle
        .filter((b) =>
          b.dependencies.every(
            (d) => !BLOCKING_DEP_TYPES.has(d.type) || !openIds.has(d.depends_on_id),
          ),
        )
        .map((b) => b.id),
    );
    out.push({
      id: c.id,
      title: c.title,
      beads: idle.map((b) => ({
        id: b.id,
        title: b.title,
        ready: ready.has(b.id),
        routed_to: b.metadata['gc.routed_to'] ?? '',
      })),
    });
  }
  return out;
}

/** Set the branch the convoy's work targets (`target`); "" clears it. */
export async function setConvoyTarget(
  ops: CityOps,
  actor: string,
  id: string,
  target: string,
): Promise<Bead> {
  await convoyBead(ops, id);
  if (/[\s~^:?*[\\]|\.\.|^-/.test(target)) {
    throw new ValidationError(`not a branch name: ${JSON.stringify(target)}`, { where: 'target' });
  }
  return ops.setMetadata(actor, id, CONVOY_META.target, target);
}

export interface ConvoyDeleteResult {
  convoy: string;
  /** Beads deleted with it (with `beads`), or set free (without). */
  deleted: string[];
  released: string[];
}

/**
 * Delete a convoy and its wave gates. Its beads are set free (no parent)
 * or, with `beads`, deleted too: refused while one is in progress unless
 * `force`.
 */
export async function deleteConvoy(
  ops: CityOps,
  actor: string,
  id: string,
  o: { beads?: boolean; force?: boolean } = {},
): Promise<ConvoyDeleteResult> {
  const c = await convoyBead(ops, id);
  const children = await kids(ops, id);
  const busy = children.filter((b) => b.status === 'in_progress');
  if (o.beads && busy.length && !o.force) {
    throw new ConflictError(
      `convoy ${id} has ${busy.length} bead(s) in progress: ${busy.map((b) => b.id).join(', ')}`,
      { fix: 'wait for them, or --force' },
    );
  }
  const out: ConvoyDeleteResult = { convoy: id, deleted: [], released: [] };
  for (const b of children) {
    if (o.beads) {
      await ops.deleteBead(actor, b.id);
      out.deleted.push(b.id);
    } else {
      await ops.updateBead(actor, b.id, { parent: '' });
      out.released.push(b.id);
    }
  }
  for (const g of await waveGates(ops, id)) await ops.deleteBead(actor, g.id);
  await ops.deleteBead(actor, c.id);
  await ops.events.record({
    type: 'convoy.deleted',
    actor,
    subject: id,
    payload: { deleted: out.deleted, released: out.released },
    message: `convoy ${id} (${c.title}) deleted; ${out.deleted.length} bead(s) deleted, ${out.released.length} set free`,
  });
  return out;
}

/** Closing mail through the city's mail, from `convoy`; a failed send is logged, never thrown. */
export function convoyNotifier(
  mail: Pick<Mail, 'send'>,
  log: (line: string) => void,
): ConvoyNotifier {
  return async (to, subject, body) => {
    try {
      await mail.send('convoy', to, { subject, body });
    } catch (e) {
      log(`convoy: mail to ${to} not sent: ${errorMessage(e)}`);
    }
  };
}
