/** The read queries of the store on a database server (async twins of sqlite-reads.ts). */
import { ValidationError } from '../core/index.js';
import type { SqlConn } from '../db/index.js';
import { filterSql, hydrate, rowsWhere, type BeadRow } from './sql-rows.js';
import {
  ROUTED_TO,
  type Bead,
  type BeadCounts,
  type BeadFilter,
  type BeadStatus,
  type ListQuery,
  type Page,
  type ReadyQuery,
  type Workload,
} from './types.js';
import { decodeCursor, encodeCursor, hasFilter, pageSize, zeroCounts } from './validate.js';

/**
 * `LIMIT n` with n written into the statement: a prepared statement with a
 * parameter LIMIT gets a generic plan that does not know the page is small,
 * and PostgreSQL then sorted every ready bead instead of walking the index.
 */
export function limitSql(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad LIMIT ${n}`);
  return `LIMIT ${n}`;
}

async function pageOf(
  c: SqlConn,
  rows: BeadRow[],
  limit: number,
  key: (r: BeadRow) => number[],
): Promise<Page<Bead>> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: await hydrate(c, items),
    next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null,
  };
}

export async function listPage(c: SqlConn, query: ListQuery): Promise<Page<Bead>> {
  if (!hasFilter(query) && !query.scan) {
    throw new ValidationError(
      'a list with no filter walks every bead; pass a filter, or scan: true to mean it',
      { where: 'list' },
    );
  }
  const limit = pageSize(query.limit);
  const after = decodeCursor(query.cursor, 1)?.[0] ?? 0;
  const where = ['b.seq > ?'];
  const args: unknown[] = [after];
  filterSql(c, query, where, args);
  const rows = await rowsWhere(
    c,
    where.join(' AND '),
    args,
    `ORDER BY b.seq ${limitSql(limit + 1)}`,
  );
  return pageOf(c, rows, limit, (r) => [r.seq]);
}

/** The WHERE of ready beads (alias b); with a claimant, skipping work assigned to others. */
export function readyWhere(
  c: SqlConn,
  q: ReadyQuery,
  claimant?: string,
  after?: number[],
): { where: string; args: unknown[] } {
  const where = ["b.status = 'open'", 'b.blocked = 0', 'b.infra = 0'];
  const args: unknown[] = [];
  filterSql(c, q, where, args);
  if (claimant !== undefined) {
    where.push("(b.assignee = '' OR b.assignee = ?)");
    args.push(claimant);
  }
  if (after) {
    where.push('(b.priority > ? OR (b.priority = ? AND b.seq > ?))');
    args.push(after[0], after[0], after[1]);
  }
  return { where: where.join(' AND '), args };
}

/**
 * Ready rows in (priority, seq) order; with a claimant, skipping work
 * assigned to others. With `lock`, the rows are locked for the caller's
 * transaction and rows another transaction holds are skipped (SKIP LOCKED).
 */
export function readyRows(
  c: SqlConn,
  q: ReadyQuery,
  limit: number,
  after?: number[],
  claimant?: string,
  lock = false,
): Promise<BeadRow[]> {
  const { where, args } = readyWhere(c, q, claimant, after);
  return rowsWhere(
    c,
    where,
    args,
    `ORDER BY b.priority, b.seq ${limitSql(limit)}${lock ? ' FOR UPDATE SKIP LOCKED' : ''}`,
  );
}

export async function readyPage(c: SqlConn, query: ReadyQuery): Promise<Page<Bead>> {
  const limit = pageSize(query.limit);
  const rows = await readyRows(c, query, limit + 1, decodeCursor(query.cursor, 2));
  return pageOf(c, rows, limit, (r) => [r.priority, r.seq]);
}

export async function countBeads(c: SqlConn, filter: BeadFilter): Promise<number> {
  const where = ['1 = 1'];
  const args: unknown[] = [];
  filterSql(c, filter, where, args);
  const [r] = await c.query<{ n: number }>(
    `SELECT count(*) AS n FROM beads b WHERE ${where.join(' AND ')}`,
    args,
  );
  return Number(r?.n ?? 0);
}

export async function countReady(c: SqlConn, q: ReadyQuery): Promise<number> {
  const where = ["b.status = 'open'", 'b.blocked = 0', 'b.infra = 0'];
  const args: unknown[] = [];
  filterSql(c, q, where, args);
  const [r] = await c.query<{ n: number }>(
    `SELECT count(*) AS n FROM beads b WHERE ${where.join(' AND ')}`,
    args,
  );
  return Number(r?.n ?? 0);
}

/** Bead counts by status (work beads), infrastructure records apart. */
export async function beadCounts(c: SqlConn): Promise<BeadCounts> {
  const counts = zeroCounts();
  for (const r of await c.query<{ status: BeadStatus; infra: number; n: number }>(
    'SELECT status, infra, count(*) AS n FROM beads GROUP BY status, infra',
  )) {
    const n = Number(r.n);
    if (Number(r.infra)) {
      counts.other += n;
      continue;
    }
    counts[r.status] += n;
    counts.total += n;
  }
  counts.ready = await countReady(c, {});
  return counts;
}

/** Routed work and claims per holder: what the controller's tick reads. */
export async function workloadOf(c: SqlConn): Promise<Workload> {
  const routed = (
    await c.query<{ routed_to: string; ready: number; in_progress: number }>(
      `SELECT m.v AS routed_to,
         sum(CASE WHEN b.status = 'open' AND b.blocked = 0 AND b.infra = 0 AND b.assignee = ''
             THEN 1 ELSE 0 END) AS ready,
         sum(CASE WHEN b.status = 'in_progress' THEN 1 ELSE 0 END) AS in_progress
       FROM metadata m JOIN beads b ON b.seq = m.bead_seq
       WHERE m.k = ? AND b.status <> 'closed'
       GROUP BY m.v ORDER BY m.v`,
      [ROUTED_TO],
    )
  ).map((r) => ({
    routed_to: r.routed_to,
    ready: Number(r.ready),
    in_progress: Number(r.in_progress),
  }));
  const claims = (
    await c.query<{ assignee: string; in_progress: number }>(
      `SELECT assignee, count(*) AS in_progress FROM beads
       WHERE status = 'in_progress' AND assignee <> '' GROUP BY assignee ORDER BY assignee`,
    )
  ).map((r) => ({ assignee: r.assignee, in_progress: Number(r.in_progress) }));
  return { routed, claims };
}
