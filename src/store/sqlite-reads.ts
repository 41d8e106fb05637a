/** The SQLite store's read queries, as functions over its statements (run inside GroupCommit.read). */
import { ValidationError } from '../core/index.js';
import { hydrate, filterSql, type BeadRow, type Statements } from './sqlite-rows.js';
import {
  INFRA_TYPES,
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

/** A page of hydrated beads from up to limit + 1 rows (the extra one says there is more). */
export function pageOf(
  sql: Statements,
  rows: BeadRow[],
  limit: number,
  key: (r: BeadRow) => number[],
): Page<Bead> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: hydrate(sql, items),
    next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null,
  };
}

/** One page of `list`, in seq order. */
export function listPage(sql: Statements, query: ListQuery): Page<Bead> {
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
  filterSql(query, where, args);
  const rows = sql
    .stmt(`SELECT b.* FROM beads b WHERE ${where.join(' AND ')} ORDER BY b.seq LIMIT ?`)
    .all(...args, limit + 1) as BeadRow[];
  return pageOf(sql, rows, limit, (r) => [r.seq]);
}

/** Ready rows in (priority, seq) order; with a claimant, skipping work assigned to others. */
export function readyRows(
  sql: Statements,
  q: ReadyQuery,
  limit: number,
  after?: number[],
  claimant?: string,
): BeadRow[] {
  const where = ["b.status = 'open'", 'b.blocked = 0', 'b.infra = 0'];
  const args: unknown[] = [];
  filterSql(q, where, args);
  if (claimant !== undefined) {
    // Skip work pre-assigned to someone else.
    where.push("(b.assignee = '' OR b.assignee = ?)");
    args.push(claimant);
  }
  if (after) {
    where.push('(b.priority > ? OR (b.priority = ? AND b.seq > ?))');
    args.push(after[0], after[0], after[1]);
  }
  return sql
    .stmt(
      `SELECT b.* FROM beads b INDEXED BY beads_ready WHERE ${where.join(' AND ')}
     ORDER BY b.priority, b.seq LIMIT ?`,
    )
    .all(...args, limit) as BeadRow[];
}

export function readyPage(sql: Statements, query: ReadyQuery): Page<Bead> {
  const limit = pageSize(query.limit);
  const rows = readyRows(sql, query, limit + 1, decodeCursor(query.cursor, 2));
  return pageOf(sql, rows, limit, (r) => [r.priority, r.seq]);
}

export function countBeads(sql: Statements, filter: BeadFilter): number {
  const where = ['1'];
  const args: unknown[] = [];
  filterSql(filter, where, args);
  return (
    sql.stmt(`SELECT count(*) AS n FROM beads b WHERE ${where.join(' AND ')}`).get(...args) as {
      n: number;
    }
  ).n;
}

export function countReady(sql: Statements, q: ReadyQuery): number {
  const where = ["b.status = 'open'", 'b.blocked = 0', 'b.infra = 0'];
  const args: unknown[] = [];
  filterSql(q, where, args);
  return (
    sql
      .stmt(`SELECT count(*) AS n FROM beads b INDEXED BY beads_ready WHERE ${where.join(' AND ')}`)
      .get(...args) as { n: number }
  ).n;
}

/** Bead counts by status (work beads), infrastructure records apart. */
export function beadCounts(sql: Statements): BeadCounts {
  const c = zeroCounts();
  const infra = [...INFRA_TYPES].map((t) => `'${t}'`).join(',');
  for (const r of sql
    .stmt(
      `SELECT status, issue_type IN (${infra}) AS infra, count(*) AS n FROM beads GROUP BY status, infra`,
    )
    .all() as {
    status: BeadStatus;
    infra: number;
    n: number;
  }[]) {
    if (r.infra) {
      c.other += r.n;
      continue;
    }
    c[r.status] += r.n;
    c.total += r.n;
  }
  c.ready = countReady(sql, {});
  return c;
}

/** Routed work and claims per holder: what the controller's tick reads. */
export function workloadOf(sql: Statements): Workload {
  const routed = sql
    .stmt(
      `SELECT m.value AS routed_to,
       sum(CASE WHEN b.status = 'open' AND b.blocked = 0 AND b.infra = 0 AND b.assignee = ''
           THEN 1 ELSE 0 END) AS ready,
       sum(CASE WHEN b.status = 'in_progress' THEN 1 ELSE 0 END) AS in_progress
     FROM metadata m JOIN beads b ON b.seq = m.bead_seq
     WHERE m.key = ? AND b.status != 'closed'
     GROUP BY m.value ORDER BY m.value`,
    )
    .all(ROUTED_TO) as Workload['routed'];
  const claims = sql
    .stmt(
      `SELECT assignee, count(*) AS in_progress FROM beads INDEXED BY beads_status
     WHERE status = 'in_progress' AND assignee != '' GROUP BY assignee ORDER BY assignee`,
    )
    .all() as Workload['claims'];
  return { routed, claims };
}
