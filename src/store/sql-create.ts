/**
 * Creating beads that hang on others (a parent, dependencies) in the
 * PostgreSQL/MySQL store, one at a time or as a batch in the caller's
 * transaction. The beads named are locked first: one being closed
 * meanwhile waits, or is seen closed.
 */
import type { EventRowInput, SqlConn } from '../db/index.js';
import { noKeptAnswers } from './sql-claims.js';
import { COLUMNS, insertPlainBeads } from './sql-insert.js';
import { link, lockIds, one, refreshBlocked, rowById, addLabels, setMetadata } from './sql-rows.js';
import {
  PARENT_CHILD,
  type Bead,
  type CreateBeadInput,
  type OutboxEvent,
  type RequestRef,
} from './types.js';
import { isInfraType, normalizeBatch, resolveBatch, type NormalizedCreate } from './validate.js';

/** Ids for new beads: `next(extra)` is the id to try (extra > 0 after a clash); `made()` counts one. */
export interface IdSource {
  next(extra: number): string;
  made(): void;
}

/** Insert one bead's rows and links; its blocked state is the caller's to refresh. */
async function insertLinked(
  tx: SqlConn,
  n: NormalizedCreate,
  now: number,
  ids: IdSource,
): Promise<string> {
  let id = ids.next(0);
  for (let extra = 1; (await tx.query('SELECT 1 FROM beads WHERE id = ?', [id])).length; extra++) {
    id = ids.next(extra);
  }
  await tx.run(
    `INSERT INTO beads (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`,
    [
      id,
      n.title,
      n.status,
      n.type,
      n.priority,
      now,
      now,
      n.status === 'closed' ? now : null,
      n.assignee,
      n.from,
      n.parent,
      n.ref,
      n.description,
      isInfraType(n.type) ? 1 : 0,
    ],
  );
  const r = await rowById(tx, id);
  await addLabels(tx, r.seq, n.labels);
  await setMetadata(tx, r.seq, Object.entries(n.metadata));
  if (n.parent) await link(tx, id, n.parent, PARENT_CHILD, now);
  for (const need of n.needs) await link(tx, id, need.id, need.type, now);
  ids.made();
  return id;
}

/** One bead with a parent or dependencies. */
export async function createLinked(
  tx: SqlConn,
  n: NormalizedCreate,
  now: number,
  ids: IdSource,
): Promise<Bead> {
  const named = [...n.needs.map((x) => x.id), ...(n.parent ? [n.parent] : [])];
  await lockIds(tx, named);
  for (const id of named) await rowById(tx, id);
  const id = await insertLinked(tx, n, now, ids);
  await refreshBlocked(tx, [id]);
  return one(tx, id);
}

/** A batch (`Store.createMany`): all of it in the caller's transaction, or none. */
export async function createBatch(
  tx: SqlConn,
  inputs: readonly CreateBeadInput[],
  now: number,
  ids: IdSource,
): Promise<Bead[]> {
  const batch = normalizeBatch(inputs);
  const outside = [...new Set(batch.flatMap((b) => b.outside))].sort();
  await lockIds(tx, outside);
  for (const id of outside) await rowById(tx, id);
  const made: string[] = [];
  for (const b of batch) made.push(await insertLinked(tx, resolveBatch(b.n, made), now, ids));
  // A stack: reversed, so parents are settled before their children.
  await refreshBlocked(tx, [...made].reverse());
  const out: Bead[] = [];
  for (const id of made) out.push(await one(tx, id));
  return out;
}

/** One bead of a merged create (see createAll): no parent, no dependencies. */
export interface CreateItem {
  n: NormalizedCreate;
  /** The retried-request key its answer is kept under, if any. */
  request: RequestRef | undefined;
  /** The events its creation records. */
  events: (bead: Bead) => OutboxEvent[];
  /** Its record, run with its bead (its events in the batch's list). */
  finish: (tx: SqlConn, events: EventRowInput[], bead: Bead) => Promise<unknown>;
}

/**
 * The creates of a batch as one: their beads in one statement (a few on
 * MySQL) instead of one or more each, in batch order, then each one's
 * record. A bead that hangs on nothing reads nothing, so they cannot
 * affect one another.
 */
export async function createAll(
  tx: SqlConn,
  items: readonly CreateItem[],
  now: number,
  ids: IdSource,
  events: EventRowInput[],
): Promise<unknown[]> {
  await noKeptAnswers(tx, items, 'create');
  const beads = await insertPlainBeads(
    tx,
    items.map((c) => c.n),
    now,
    (extra) => ids.next(extra),
  );
  const out: unknown[] = [];
  for (const [i, c] of items.entries()) {
    ids.made();
    out.push(await c.finish(tx, events, beads[i]!));
  }
  return out;
}
