/**
 * The SQLite store's row level: the statement cache, bead rows and their
 * hydration (labels, metadata, dependencies in three queries per page),
 * keeping the `blocked` flag in step with dependencies, and the SQL of a
 * bead filter.
 */
import type Database from 'better-sqlite3';
import { ConflictError, NotFoundError } from '../core/index.js';
import {
  BLOCKING_DEP_TYPES,
  PARENT_CHILD,
  type Bead,
  type BeadFilter,
  type BeadStatus,
  type Dependency,
} from './types.js';
import { iso, statusList } from './validate.js';

/** Prepared statements, compiled once per SQL text. */
export class Statements {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }
}

const BLOCKING_LIST = [...BLOCKING_DEP_TYPES].map((t) => `'${t}'`).join(',');

/** A row of the beads table. */
export interface BeadRow {
  seq: number;
  id: string;
  title: string;
  status: BeadStatus;
  issue_type: string;
  priority: number;
  created_at: number;
  updated_at: number;
  closed_at: number | null;
  close_reason: string;
  assignee: string;
  from_actor: string;
  parent: string;
  ref: string;
  description: string;
  claimed_at: number | null;
  lease_expires_at: number | null;
  attempt: number;
  blocked: number;
}

export function rowById(sql: Statements, id: string): BeadRow {
  const r = sql.stmt('SELECT * FROM beads WHERE id = ?').get(id) as BeadRow | undefined;
  if (!r) throw new NotFoundError('bead', id);
  return r;
}

export function hydrate(sql: Statements, rows: BeadRow[]): Bead[] {
  if (rows.length === 0) return [];
  const seqs = JSON.stringify(rows.map((r) => r.seq));
  const ids = JSON.stringify(rows.map((r) => r.id));
  const labels = new Map<number, string[]>();
  for (const l of sql
    .stmt(
      'SELECT bead_seq, label FROM labels WHERE bead_seq IN (SELECT value FROM json_each(?)) ORDER BY label',
    )
    .all(seqs) as { bead_seq: number; label: string }[]) {
    let a = labels.get(l.bead_seq);
    if (!a) labels.set(l.bead_seq, (a = []));
    a.push(l.label);
  }
  const meta = new Map<number, Record<string, string>>();
  for (const m of sql
    .stmt(
      'SELECT bead_seq, key, value FROM metadata WHERE bead_seq IN (SELECT value FROM json_each(?))',
    )
    .all(seqs) as { bead_seq: number; key: string; value: string }[]) {
    let o = meta.get(m.bead_seq);
    if (!o) meta.set(m.bead_seq, (o = {}));
    o[m.key] = m.value;
  }
  const deps = new Map<string, Dependency[]>();
  for (const d of sql
    .stmt(
      'SELECT issue_id, depends_on_id, type FROM deps WHERE issue_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, depends_on_id',
    )
    .all(ids) as Dependency[]) {
    let a = deps.get(d.issue_id);
    if (!a) deps.set(d.issue_id, (a = []));
    a.push({ issue_id: d.issue_id, depends_on_id: d.depends_on_id, type: d.type });
  }
  return rows.map((r) =>
    beadFromRow(r, labels.get(r.seq) ?? [], meta.get(r.seq) ?? {}, deps.get(r.id) ?? []),
  );
}

/** A Bead from its row and its labels, metadata and dependencies (every SQL backend). */
export function beadFromRow(
  r: BeadRow,
  labels: string[],
  metadata: Record<string, string>,
  dependencies: Dependency[],
): Bead {
  return {
    id: r.id,
    title: r.title,
    status: r.status,
    issue_type: r.issue_type,
    priority: r.priority,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    closed_at: r.closed_at === null ? null : iso(r.closed_at),
    close_reason: r.close_reason,
    assignee: r.assignee,
    from: r.from_actor,
    parent: r.parent,
    ref: r.ref,
    description: r.description,
    labels,
    metadata,
    dependencies,
    claimed_at: r.claimed_at === null ? null : iso(r.claimed_at),
    lease_expires_at: r.lease_expires_at === null ? null : iso(r.lease_expires_at),
    attempt: r.attempt,
  };
}

export function one(sql: Statements, id: string): Bead {
  const [b] = hydrate(sql, [rowById(sql, id)]);
  if (!b) throw new NotFoundError('bead', id);
  return b;
}

export function computeBlocked(sql: Statements, id: string): number {
  const r = sql
    .stmt(
      `SELECT EXISTS(
       SELECT 1 FROM deps d JOIN beads t ON t.id = d.depends_on_id
       WHERE d.issue_id = ?
         AND ((d.type IN (${BLOCKING_LIST}) AND t.status != 'closed')
           OR (d.type = '${PARENT_CHILD}' AND t.blocked = 1))
     ) AS b`,
    )
    .get(id) as { b: number };
  return r.b;
}

/** Recompute `blocked` for ids; when it flips, recompute their children too. */
export function refreshBlocked(sql: Statements, ids: Iterable<string>): void {
  const stack = [...ids];
  const guard = new Set<string>();
  while (stack.length) {
    const id = stack.pop() as string;
    const row = sql.stmt('SELECT blocked FROM beads WHERE id = ?').get(id) as
      { blocked: number } | undefined;
    if (!row) continue;
    const next = computeBlocked(sql, id);
    if (next === row.blocked) continue;
    const flipKey = `${id}:${next}`;
    if (guard.has(flipKey)) continue;
    guard.add(flipKey);
    sql.stmt('UPDATE beads SET blocked = ? WHERE id = ?').run(next, id);
    for (const c of sql
      .stmt(`SELECT issue_id FROM deps WHERE depends_on_id = ? AND type = '${PARENT_CHILD}'`)
      .all(id) as { issue_id: string }[]) {
      stack.push(c.issue_id);
    }
  }
}

/** Beads whose readiness depends on `id` being closed. */
export function blockedDependents(sql: Statements, id: string): string[] {
  return (
    sql
      .stmt(`SELECT issue_id FROM deps WHERE depends_on_id = ? AND type IN (${BLOCKING_LIST})`)
      .all(id) as { issue_id: string }[]
  ).map((r) => r.issue_id);
}

export function checkNoCycle(sql: Statements, issue: string, dep: string): void {
  const seen = new Set<string>();
  const stack = [dep];
  const next = sql.stmt(
    `SELECT depends_on_id FROM deps WHERE issue_id = ? AND type IN (${BLOCKING_LIST}, '${PARENT_CHILD}')`,
  );
  while (stack.length) {
    const cur = stack.pop() as string;
    if (cur === issue) {
      throw new ConflictError(`dependency ${issue} -> ${dep} would create a cycle`, {
        details: { issue_id: issue, depends_on_id: dep },
      });
    }
    if (seen.has(cur)) continue;
    seen.add(cur);
    for (const r of next.all(cur) as { depends_on_id: string }[]) stack.push(r.depends_on_id);
  }
}

export function link(sql: Statements, issue: string, dep: string, type: string, now: number): void {
  sql
    .stmt(
      `INSERT INTO deps (issue_id, depends_on_id, type, created_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (issue_id, depends_on_id) DO UPDATE SET type = excluded.type`,
    )
    .run(issue, dep, type, now);
}

export function filterSql(f: BeadFilter, where: string[], args: unknown[]): void {
  const statuses = statusList(f.status);
  if (statuses) {
    where.push(`b.status IN (${statuses.map(() => '?').join(',')})`);
    args.push(...statuses);
  }
  if (f.assignee !== undefined) {
    where.push('b.assignee = ?');
    args.push(f.assignee);
  }
  if (f.unassigned) where.push("b.assignee = ''");
  if (f.work) where.push('b.infra = 0');
  if (f.type !== undefined) {
    // With an assignee, its index is the selective one: the unary + keeps
    // the planner off the type index (every message of the city shares
    // one type, so that index would walk all of them).
    where.push(f.assignee !== undefined ? '+b.issue_type = ?' : 'b.issue_type = ?');
    args.push(f.type);
  }
  if (f.parent !== undefined) {
    where.push('b.parent = ?');
    args.push(f.parent);
  }
  if (f.label !== undefined) {
    where.push('EXISTS (SELECT 1 FROM labels l WHERE l.bead_seq = b.seq AND l.label = ?)');
    args.push(f.label);
  }
  for (const [k, v] of Object.entries(f.metadata ?? {})) {
    where.push(
      'EXISTS (SELECT 1 FROM metadata m WHERE m.bead_seq = b.seq AND m.key = ? AND m.value = ?)',
    );
    args.push(k, v);
  }
}
