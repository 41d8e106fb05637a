/**
 * Pieces of the store's writes on a database server: claims as
 * compare-and-set updates, releasing claims, and a write's record (its
 * events into the event log table, its answer kept for a retried request) in the
 * write's own transaction.
 */
import { ConflictError, NotFoundError, ValidationError } from '../core/index.js';
import { LostRaceError, appendEventRows, type EventRowInput, type SqlConn } from '../db/index.js';
import { readyWhere } from './sql-reads.js';
import {
  beadOf,
  hydrate,
  hydrationColumns,
  marks,
  normalizeRow,
  one,
  rowById,
  rowsWhere,
  type BeadRow,
  type Hydration,
} from './sql-rows.js';
import {
  REQUEST_TTL_MS,
  type Bead,
  type OutboxEvent,
  type ReadyQuery,
  type RequestRef,
  type UnclaimOptions,
  type WriteRecord,
} from './types.js';
import { decideClaim, decideUnclaim } from './validate.js';

/** Compare-and-set claims tried in one transaction before it is run again. */
export const CAS_TRIES = 20;

/** Every compare-and-set lost: the write runs again (retryable). */
export function lostRace(id: string): Error {
  return new LostRaceError(`claim of ${id} kept losing to other claimants`);
}

/** The row as a claim leaves it: a renewal keeps its claim time and attempt. */
function claimedRow(r: BeadRow, actor: string, leaseMs: number, now: number, renew: boolean) {
  return {
    ...r,
    status: 'in_progress' as const,
    assignee: actor,
    claimed_at: renew ? r.claimed_at : now,
    lease_expires_at: now + leaseMs,
    attempt: renew ? r.attempt : r.attempt + 1,
    updated_at: now,
  } satisfies BeadRow;
}

/**
 * Claim a row the caller read (and locked): a compare-and-set on what was
 * read (status, assignee, attempt), its affected-row count checked. The row
 * as it is now, or undefined when another claimant got there first
 * (possible only where row locks do nothing). decideClaim throws when the
 * row cannot be claimed at all.
 */
export async function claimRow(
  tx: SqlConn,
  r: BeadRow,
  actor: string,
  leaseMs: number,
  now: number,
): Promise<BeadRow | undefined> {
  const { renew } = decideClaim(
    { id: r.id, status: r.status, assignee: r.assignee, leaseExpiresAt: r.lease_expires_at },
    actor,
    now,
  );
  const next = claimedRow(r, actor, leaseMs, now, renew);
  const changed = await tx.run(
    `UPDATE beads SET status = 'in_progress', assignee = ?, claimed_at = ?,
     lease_expires_at = ?, attempt = ?, updated_at = ?
     WHERE seq = ? AND status = ? AND assignee = ? AND attempt = ?`,
    [
      actor,
      next.claimed_at,
      next.lease_expires_at,
      next.attempt,
      now,
      r.seq,
      r.status,
      r.assignee,
      r.attempt,
    ],
  );
  return changed === 1 ? next : undefined;
}

/**
 * PostgreSQL: pick the first ready bead, claim it and read it back, in one
 * statement (the pick locks with SKIP LOCKED and re-checks the row, the
 * update sets it, RETURNING hydrates it). Null when nothing is ready.
 */
export async function claimFirstReady(
  tx: SqlConn,
  q: ReadyQuery,
  actor: string,
  leaseMs: number,
  now: number,
): Promise<Bead | null> {
  const { where, args } = readyWhere(tx, q, actor);
  const [row] = await tx.query<BeadRow & Hydration>(
    `UPDATE beads AS u SET status = 'in_progress', assignee = ?, claimed_at = ?,
     lease_expires_at = ?, attempt = u.attempt + 1, updated_at = ?
     WHERE u.seq = (SELECT b.seq FROM beads b WHERE ${where}
       ORDER BY b.priority, b.seq LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING u.*, ${hydrationColumns(tx, 'u')}`,
    [actor, now, now + leaseMs, now, ...args],
  );
  return row ? beadOf(normalizeRow(row), row) : null;
}

/** Claim bead `id` (decideClaim throws AlreadyClaimedError / ConflictError on what it reads). */
export async function claimById(
  tx: SqlConn,
  id: string,
  actor: string,
  lease: number,
  now: number,
): Promise<Bead> {
  for (let i = 0; ; i++) {
    const [picked] = await pickHydrated(tx, 'b.id = ?', [id], 'FOR UPDATE');
    if (!picked) throw new NotFoundError('bead', id);
    const next = await claimRow(tx, picked.row, actor, lease, now);
    if (next) return beadOf(next, picked.extra);
    if (i >= CAS_TRIES) throw lostRace(id);
  }
}

/**
 * Rows read (and locked, by `tail`) with their labels, metadata and
 * dependencies in the same statement: a claim does not change those, so
 * the claimed bead is hydrated without reading it again.
 */
async function pickHydrated(
  tx: SqlConn,
  where: string,
  args: readonly unknown[],
  tail: string,
): Promise<{ row: BeadRow; extra: Hydration }[]> {
  const rows = await tx.query<BeadRow & Hydration>(
    `SELECT b.*, ${hydrationColumns(tx, 'b')} FROM beads b WHERE ${where} ${tail}`,
    args,
  );
  return rows.map((r) => {
    const { gc_labels, gc_meta, gc_deps, ...row } = r;
    return { row: normalizeRow(row), extra: { gc_labels, gc_meta, gc_deps } };
  });
}

/** Claim the first ready bead of `q` for `actor`; null when none is ready. */
export async function claimNext(
  tx: SqlConn,
  q: ReadyQuery,
  actor: string,
  lease: number,
  now: number,
): Promise<Bead | null> {
  if (tx.dialect === 'postgres') return claimFirstReady(tx, q, actor, lease, now);
  const { where, args } = readyWhere(tx, q, actor);
  for (let i = 0; ; i++) {
    const [picked] = await pickHydrated(
      tx,
      where,
      args,
      'ORDER BY b.priority, b.seq LIMIT 1 FOR UPDATE SKIP LOCKED',
    );
    if (!picked) return null;
    // The claimed row is known: the bead as it now is, not read back.
    const next = await claimRow(tx, picked.row, actor, lease, now);
    if (next) return beadOf(next, picked.extra);
    if (i >= CAS_TRIES) throw lostRace(picked.row.id);
  }
}

/**
 * A merged write retrying a request already answered gets that answer, not
 * a new result: rare, so then the batch runs its writes one by one (each
 * finds its kept answer there).
 */
export async function noKeptAnswers(
  tx: SqlConn,
  items: readonly { request: RequestRef | undefined }[],
  what: string,
): Promise<void> {
  const keyed = items.flatMap((c) => (c.request ? [c.request] : []));
  if (!keyed.length) return;
  const kept = await tx.query(
    `SELECT 1 AS one FROM requests WHERE ${keyed.map(() => '(scope = ? AND rkey = ? AND n = ?)').join(' OR ')} LIMIT 1`,
    keyed.flatMap((r) => [r.scope, r.key, r.n]),
  );
  if (kept.length) throw new LostRaceError(`a merged ${what} answers a retried request`);
}

/** One claimant of a merged claim-next (see claimAll). */
export interface ClaimNextItem {
  actor: string;
  lease: number;
  /** The retried-request key its answer is kept under, if any. */
  request: RequestRef | undefined;
  /** Its record, run with its own result (its events in the batch's list). */
  finish: (tx: SqlConn, events: EventRowInput[], bead: Bead | null) => Promise<unknown>;
}

/**
 * Claim-next for several claimants with the same query, as if they ran one
 * after another: one pick of as many unassigned ready beads as there are
 * claimants (in priority, seq order, locked, SKIP LOCKED) and one update,
 * the first claimant getting the first bead. A claimant with ready work
 * assigned to it claims on its own afterwards (its own work may come
 * first for it). Where row locks do nothing (Dolt) and another claimant
 * took a picked bead, the update changes fewer rows: a lost race, and the
 * batch runs its writes one by one.
 */
export async function claimAll(
  tx: SqlConn,
  q: ReadyQuery,
  items: readonly ClaimNextItem[],
  now: number,
  events: EventRowInput[],
): Promise<unknown[]> {
  await noKeptAnswers(tx, items, 'claim-next');
  const { where, args } = readyWhere(tx, q);
  const actors = [...new Set(items.map((c) => c.actor))];
  const own = new Set(
    (
      await tx.query<{ assignee: string }>(
        `SELECT DISTINCT b.assignee FROM beads b WHERE ${where} AND b.assignee IN (${marks(actors.length)})`,
        [...args, ...actors],
      )
    ).map((r) => r.assignee),
  );
  const free = items.filter((c) => !own.has(c.actor));
  const picked = free.length
    ? await pickHydrated(
        tx,
        `${where} AND b.assignee = ''`,
        args,
        `ORDER BY b.priority, b.seq LIMIT ${free.length} FOR UPDATE SKIP LOCKED`,
      )
    : [];
  const got = new Map<ClaimNextItem, Bead | null>();
  if (picked.length) {
    const pg = tx.dialect === 'postgres';
    const [text, big] = pg
      ? ['CAST(? AS TEXT)', 'CAST(? AS BIGINT)']
      : ['CAST(? AS CHAR)', 'CAST(? AS SIGNED)'];
    const seqs = picked.map((p) => p.row.seq);
    const changed = await tx.run(
      `UPDATE beads SET status = 'in_progress',
         assignee = CASE seq ${picked.map(() => `WHEN ? THEN ${text}`).join(' ')} END,
         lease_expires_at = CASE seq ${picked.map(() => `WHEN ? THEN ${big}`).join(' ')} END,
         claimed_at = ?, attempt = attempt + 1, updated_at = ?
       WHERE seq IN (${marks(seqs.length)}) AND status = 'open' AND assignee = ''`,
      [
        ...picked.flatMap((p, i) => [p.row.seq, free[i]!.actor]),
        ...picked.flatMap((p, i) => [p.row.seq, now + free[i]!.lease]),
        now,
        now,
        ...seqs,
      ],
    );
    if (changed !== picked.length) throw lostRace(picked[0]!.row.id);
    for (const [i, p] of picked.entries()) {
      const c = free[i]!;
      got.set(c, beadOf(claimedRow(p.row, c.actor, c.lease, now, false), p.extra));
    }
  }
  const out: unknown[] = [];
  for (const c of items) {
    const bead = got.has(c)
      ? got.get(c)!
      : own.has(c.actor)
        ? await claimNext(tx, q, c.actor, c.lease, now)
        : null;
    out.push(await c.finish(tx, events, bead));
  }
  return out;
}

/**
 * Whether a ready query narrows by values whose selectivity varies (label,
 * metadata, type, assignee): its statements are planned for the values.
 */
export function valueFiltered(q: ReadyQuery): boolean {
  return (
    q.label !== undefined ||
    q.metadata !== undefined ||
    q.type !== undefined ||
    q.assignee !== undefined
  );
}

/** Extend `actor`'s lease on `id`. */
export async function renewIn(
  tx: SqlConn,
  id: string,
  actor: string,
  lease: number,
  now: number,
): Promise<Bead> {
  const r = await rowById(tx, id, true);
  if (r.status !== 'in_progress' || r.assignee !== actor) {
    throw new ConflictError(`bead ${id} is not claimed by ${actor}`, {
      details: { id, holder: r.assignee, status: r.status },
    });
  }
  await tx.run('UPDATE beads SET lease_expires_at = ?, updated_at = ? WHERE seq = ?', [
    now + lease,
    now,
    r.seq,
  ]);
  return one(tx, id);
}

/** Give up a claim, checked against the holder and attempt when given. */
export async function unclaimIn(
  tx: SqlConn,
  id: string,
  options: UnclaimOptions,
  now: number,
): Promise<Bead> {
  const r = await rowById(tx, id, true);
  if (decideUnclaim(r, options)) await unclaimRows(tx, [r.seq], now);
  return one(tx, id);
}

/** Back to open with no holder. */
export async function unclaimRows(
  tx: SqlConn,
  seqs: readonly number[],
  now: number,
): Promise<void> {
  if (!seqs.length) return;
  await tx.run(
    `UPDATE beads SET status = 'open', assignee = '', claimed_at = NULL,
     lease_expires_at = NULL, updated_at = ? WHERE seq IN (${marks(seqs.length)})`,
    [now, ...seqs],
  );
}

/** Unclaim every bead matching `where` (locked first); the beads as they are after. */
export async function releaseWhere(
  tx: SqlConn,
  where: string,
  args: unknown[],
  now: number,
): Promise<Bead[]> {
  const rows = await rowsWhere(tx, where, args, 'ORDER BY b.seq FOR UPDATE');
  const seqs = rows.map((r) => r.seq);
  await unclaimRows(tx, seqs, now);
  if (!seqs.length) return [];
  return hydrate(
    tx,
    await rowsWhere(tx, `b.seq IN (${marks(seqs.length)})`, seqs, 'ORDER BY b.seq'),
  );
}

/**
 * Run `fn` with its record in the caller's transaction: a request already
 * answered gets its kept answer (a different body under the same key is
 * refused); otherwise the change, its events and its answer
 * commit together. Old answers are pruned at most hourly.

 */
export async function recorded<T>(
  tx: SqlConn,
  fn: (tx: SqlConn) => Promise<T>,
  rec: WriteRecord<T>,
  now: number,
  prune: { last: number },
  /** Collect the events here (a group commit appends a batch's events at once) instead of appending. */
  sink?: EventRowInput[],
): Promise<T> {
  const req = rec.request;
  if (req) {
    const [kept] = await tx.query<{ fp: string; result: string }>(
      'SELECT fp, result FROM requests WHERE scope = ? AND rkey = ? AND n = ?',
      [req.scope, req.key, req.n],
    );
    if (kept) {
      if (kept.fp !== req.fp) {
        throw new ValidationError(
          'was already used for a different request (method, path or body differ)',
          { where: 'Idempotency-Key' },
        );
      }
      return JSON.parse(kept.result) as T;
    }
  }
  const value = await fn(tx);
  const events = rec.events?.(value) ?? [];
  if (req && (rec.keep?.(value) ?? true)) {
    await tx.run(
      'INSERT INTO requests (scope, rkey, n, fp, result, at) VALUES (?, ?, ?, ?, ?, ?)',
      [req.scope, req.key, req.n, req.fp, JSON.stringify(value ?? null), now],
    );
    if (now - prune.last > 3600_000) {
      prune.last = now;
      await tx.run('DELETE FROM requests WHERE at < ?', [now - REQUEST_TTL_MS]);
    }
  }
  if (events.length) {
    const rows = eventRowsOf(events, now);
    // Last, so the event counter is held only until the commit right after.
    if (sink) sink.push(...rows);
    else await appendEventRows(tx, rows);
  }
  return value;
}

/** A write's events as rows, stamped with its commit time where they carry none. */
export function eventRowsOf(events: readonly OutboxEvent[], now: number): EventRowInput[] {
  const ts = new Date(now).toISOString();
  return events.map((e) => ({ ...e, ts: e.ts ?? ts }));
}
