/**
 * The row level of the store on a database server: bead rows and their
 * hydration (labels, metadata, dependencies: three queries per page), the
 * `blocked` flag kept in step with dependencies, cycle checks, and the SQL
 * of a bead filter. Async twins of sqlite-rows.ts.
 *
 * Concurrency: a write locks (`FOR UPDATE`) every bead row it decides on
 * before reading what it depends on, so two writers that both touch a
 * bead's readiness run one after the other on that row, and the second
 * reads what the first committed (READ COMMITTED). Where locks meet in the
 * other order the server reports a deadlock and the write runs again.
 */
import { ConflictError, NotFoundError } from '../core/index.js';
import type { SqlConn } from '../db/index.js';
import {
  BLOCKING_DEP_TYPES,
  PARENT_CHILD,
  type Bead,
  type BeadFilter,
  type Dependency,
} from './types.js';
import { statusList } from './validate.js';
import { beadFromRow, type BeadRow } from './sqlite-rows.js';

export type { BeadRow };

export const BLOCKING_LIST = [...BLOCKING_DEP_TYPES].map((t) => `'${t}'`).join(',');

/** `?, ?, ?` for n values. */
export function marks(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** Rows as numbers where the driver gave strings (aggregates on some servers). */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/** A row with numbers where the driver gave strings. */
export function normalizeRow(r: BeadRow): BeadRow {
  r.seq = num(r.seq);
  r.priority = num(r.priority);
  r.created_at = num(r.created_at);
  r.updated_at = num(r.updated_at);
  r.closed_at = r.closed_at === null ? null : num(r.closed_at);
  r.claimed_at = r.claimed_at === null ? null : num(r.claimed_at);
  r.lease_expires_at = r.lease_expires_at === null ? null : num(r.lease_expires_at);
  r.attempt = num(r.attempt);
  r.blocked = num(r.blocked);
  return r;
}

export async function rowsWhere(
  c: SqlConn,
  where: string,
  args: readonly unknown[],
  tail = '',
): Promise<BeadRow[]> {
  const rows = await c.query<BeadRow>(`SELECT * FROM beads b WHERE ${where} ${tail}`, args);
  return rows.map(normalizeRow);
}

/** The bead's row, locked for this transaction when `lock`; NotFoundError when absent. */
export async function rowById(c: SqlConn, id: string, lock = false): Promise<BeadRow> {
  const [r] = await rowsWhere(c, 'b.id = ?', [id], lock ? 'FOR UPDATE' : '');
  if (!r) throw new NotFoundError('bead', id);
  return r;
}

/** Lock the rows of `ids` that exist, in id order (a fixed order makes deadlocks rarer). */
export async function lockIds(c: SqlConn, ids: readonly string[]): Promise<void> {
  const sorted = [...new Set(ids)].sort();
  if (sorted.length)
    await c.query(
      `SELECT seq FROM beads WHERE id IN (${marks(sorted.length)}) ORDER BY id FOR UPDATE`,
      sorted,
    );
}

/** Rows hydrated with one query of JSON aggregates; more go to hydratePage. */
const FEW = 4;

/**
 * Labels, metadata and dependencies of `rows`, in one query: each as a JSON
 * aggregate (sorted as the Bead contract says) per bead.
 */
export function hydrationColumns(c: SqlConn, alias: string): string {
  if (c.dialect === 'postgres') {
    return `(SELECT json_agg(l.label ORDER BY l.label) FROM labels l WHERE l.bead_seq = ${alias}.seq) AS gc_labels,
      (SELECT json_object_agg(m.k, m.v) FROM metadata m WHERE m.bead_seq = ${alias}.seq) AS gc_meta,
      (SELECT json_agg(json_build_object('issue_id', d.issue_id, 'depends_on_id', d.depends_on_id,
         'type', d.type) ORDER BY d.created_at, d.depends_on_id)
       FROM deps d WHERE d.issue_id = ${alias}.id) AS gc_deps`;
  }
  return `(SELECT JSON_ARRAYAGG(l.label ORDER BY l.label) FROM labels l WHERE l.bead_seq = ${alias}.seq) AS gc_labels,
    (SELECT JSON_OBJECTAGG(m.k, m.v) FROM metadata m WHERE m.bead_seq = ${alias}.seq) AS gc_meta,
    (SELECT JSON_ARRAYAGG(JSON_OBJECT('issue_id', d.issue_id, 'depends_on_id', d.depends_on_id,
       'type', d.type) ORDER BY d.created_at, d.depends_on_id)
     FROM deps d WHERE d.issue_id = ${alias}.id) AS gc_deps`;
}

/** The JSON aggregates of hydrationColumns, parsed. */
export interface Hydration {
  gc_labels: unknown;
  gc_meta: unknown;
  gc_deps: unknown;
}

function hydrationSql(c: SqlConn, n: number): string {
  return `SELECT b.seq, ${hydrationColumns(c, 'b')} FROM beads b WHERE b.seq IN (${marks(n)})`;
}

/** A JSON aggregate as the driver gave it: parsed (PostgreSQL) or text (MySQL), or null. */
function parsed<T>(v: unknown, empty: T): T {
  if (v === null || v === undefined) return empty;
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

/**
 * Beads for rows. A few (a claim, a get) in one query of JSON aggregates
 * (one round trip where a write holds its locks); a page in three plain
 * queries, which the servers answer faster for many rows.
 */
export async function hydrate(c: SqlConn, rows: BeadRow[]): Promise<Bead[]> {
  if (rows.length === 0) return [];
  if (rows.length > FEW) return hydratePage(c, rows);
  const seqs = rows.map((r) => r.seq);
  const extra = new Map<number, Hydration>();
  for (const x of await c.query<{ seq: number } & Hydration>(hydrationSql(c, seqs.length), seqs)) {
    extra.set(num(x.seq), x);
  }
  return rows.map((r) => beadOf(r, extra.get(r.seq)));
}

/** A Bead from its row and its hydration columns. */
export function beadOf(r: BeadRow, e: Hydration | undefined): Bead {
  return beadFromRow(
    r,
    parsed<string[]>(e?.gc_labels, []),
    parsed<Record<string, string>>(e?.gc_meta, {}),
    parsed<Dependency[]>(e?.gc_deps, []),
  );
}

/** Hydration in three queries (labels, metadata, dependencies): cheaper for a page of beads. */
async function hydratePage(c: SqlConn, rows: BeadRow[]): Promise<Bead[]> {
  const seqs = rows.map((r) => r.seq);
  const ids = rows.map((r) => r.id);
  const labels = new Map<number, string[]>();
  for (const l of await c.query<{ bead_seq: number; label: string }>(
    `SELECT bead_seq, label FROM labels WHERE bead_seq IN (${marks(seqs.length)}) ORDER BY label`,
    seqs,
  )) {
    const k = num(l.bead_seq);
    let a = labels.get(k);
    if (!a) labels.set(k, (a = []));
    a.push(l.label);
  }
  const meta = new Map<number, Record<string, string>>();
  for (const m of await c.query<{ bead_seq: number; k: string; v: string }>(
    `SELECT bead_seq, k, v FROM metadata WHERE bead_seq IN (${marks(seqs.length)})`,
    seqs,
  )) {
    const k = num(m.bead_seq);
    let o = meta.get(k);
    if (!o) meta.set(k, (o = {}));
    o[m.k] = m.v;
  }
  const deps = new Map<string, Dependency[]>();
  for (const d of await c.query<Dependency>(
    `SELECT issue_id, depends_on_id, type FROM deps WHERE issue_id IN (${marks(ids.length)})
     ORDER BY created_at, depends_on_id`,
    ids,
  )) {
    let a = deps.get(d.issue_id);
    if (!a) deps.set(d.issue_id, (a = []));
    a.push({ issue_id: d.issue_id, depends_on_id: d.depends_on_id, type: d.type });
  }
  return rows.map((r) =>
    beadFromRow(r, labels.get(r.seq) ?? [], meta.get(r.seq) ?? {}, deps.get(r.id) ?? []),
  );
}

export async function one(c: SqlConn, id: string): Promise<Bead> {
  const [b] = await hydrate(c, [await rowById(c, id)]);
  if (!b) throw new NotFoundError('bead', id);
  return b;
}

async function computeBlocked(c: SqlConn, id: string): Promise<number> {
  const [r] = await c.query<{ b: number }>(
    `SELECT CASE WHEN EXISTS(
       SELECT 1 FROM deps d JOIN beads t ON t.id = d.depends_on_id
       WHERE d.issue_id = ?
         AND ((d.type IN (${BLOCKING_LIST}) AND t.status <> 'closed')
           OR (d.type = '${PARENT_CHILD}' AND t.blocked = 1))
     ) THEN 1 ELSE 0 END AS b`,
    [id],
  );
  return num(r?.b ?? 0);
}

/** Recompute `blocked` for ids (each locked first); when it flips, their children too. */
export async function refreshBlocked(c: SqlConn, ids: Iterable<string>): Promise<void> {
  const stack = [...ids];
  const guard = new Set<string>();
  while (stack.length) {
    const id = stack.pop() as string;
    const [row] = await c.query<{ blocked: number }>(
      'SELECT blocked FROM beads WHERE id = ? FOR UPDATE',
      [id],
    );
    if (!row) continue;
    const next = await computeBlocked(c, id);
    if (next === num(row.blocked)) continue;
    const flipKey = `${id}:${next}`;
    if (guard.has(flipKey)) continue;
    guard.add(flipKey);
    await c.run('UPDATE beads SET blocked = ? WHERE id = ?', [next, id]);
    for (const ch of await c.query<{ issue_id: string }>(
      `SELECT issue_id FROM deps WHERE depends_on_id = ? AND type = '${PARENT_CHILD}'`,
      [id],
    )) {
      stack.push(ch.issue_id);
    }
  }
}

/** Beads whose readiness depends on `id` being closed. */
export async function blockedDependents(c: SqlConn, id: string): Promise<string[]> {
  return (
    await c.query<{ issue_id: string }>(
      `SELECT issue_id FROM deps WHERE depends_on_id = ? AND type IN (${BLOCKING_LIST})`,
      [id],
    )
  ).map((r) => r.issue_id);
}

export async function checkNoCycle(c: SqlConn, issue: string, dep: string): Promise<void> {
  const seen = new Set<string>();
  const stack = [dep];
  while (stack.length) {
    const cur = stack.pop() as string;
    if (cur === issue) {
      throw new ConflictError(`dependency ${issue} -> ${dep} would create a cycle`, {
        details: { issue_id: issue, depends_on_id: dep },
      });
    }
    if (seen.has(cur)) continue;
    seen.add(cur);
    for (const r of await c.query<{ depends_on_id: string }>(
      `SELECT depends_on_id FROM deps WHERE issue_id = ? AND type IN (${BLOCKING_LIST}, '${PARENT_CHILD}')`,
      [cur],
    )) {
      stack.push(r.depends_on_id);
    }
  }
}

/** Add or retype the dependency `issue` -> `dep`. */
export async function link(
  c: SqlConn,
  issue: string,
  dep: string,
  type: string,
  now: number,
): Promise<void> {
  await c.run(
    c.dialect === 'postgres'
      ? `INSERT INTO deps (issue_id, depends_on_id, type, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (issue_id, depends_on_id) DO UPDATE SET type = excluded.type`
      : `INSERT INTO deps (issue_id, depends_on_id, type, created_at) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE type = VALUES(type)`,
    [issue, dep, type, now],
  );
}

/** Add labels to a bead (present ones stay). */
export async function addLabels(c: SqlConn, seq: number, labels: readonly string[]): Promise<void> {
  const unique = [...new Set(labels)];
  if (!unique.length) return;
  const values = unique.map(() => '(?, ?)').join(', ');
  const args = unique.flatMap((l) => [seq, l]);
  await c.run(
    c.dialect === 'postgres'
      ? `INSERT INTO labels (bead_seq, label) VALUES ${values} ON CONFLICT DO NOTHING`
      : `INSERT INTO labels (bead_seq, label) VALUES ${values}
         ON DUPLICATE KEY UPDATE label = label`,
    args,
  );
}

/** Set metadata keys of a bead (replacing values). */
export async function setMetadata(
  c: SqlConn,
  seq: number,
  entries: readonly [string, string][],
): Promise<void> {
  if (!entries.length) return;
  const values = entries.map(() => '(?, ?, ?)').join(', ');
  const args = entries.flatMap(([k, v]) => [seq, k, v]);
  await c.run(
    c.dialect === 'postgres'
      ? `INSERT INTO metadata (bead_seq, k, v) VALUES ${values}
         ON CONFLICT (bead_seq, k) DO UPDATE SET v = excluded.v`
      : `INSERT INTO metadata (bead_seq, k, v) VALUES ${values}
         ON DUPLICATE KEY UPDATE v = VALUES(v)`,
    args,
  );
}

export function filterSql(c: SqlConn, f: BeadFilter, where: string[], args: unknown[]): void {
  const statuses = statusList(f.status);
  if (statuses) {
    where.push(`b.status IN (${marks(statuses.length)})`);
    args.push(...statuses);
  }
  if (f.assignee !== undefined) {
    where.push('b.assignee = ?');
    args.push(f.assignee);
  }
  if (f.unassigned) where.push("b.assignee = ''");
  if (f.work) where.push('b.infra = 0');
  if (f.type !== undefined) {
    where.push('b.issue_type = ?');
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
  // PostgreSQL's value index holds md5(v) (values outgrow a B-tree entry).
  // It is the way in when metadata is the only narrow filter; when the
  // beads are already narrowed (a mailbox: assignee), the md5 condition
  // lures the planner into scanning every bead's entry for the value per
  // bead (8 ms for one mailbox among 6,000 messages, against 0.14 ms by the
  // primary key), so there the check goes by the bead's own key.
  const narrowed = f.assignee !== undefined || f.parent !== undefined || f.label !== undefined;
  for (const [k, v] of Object.entries(f.metadata ?? {})) {
    if (c.dialect === 'postgres' && !narrowed) {
      where.push(
        'EXISTS (SELECT 1 FROM metadata m WHERE m.bead_seq = b.seq AND m.k = ? AND md5(m.v) = md5(?) AND m.v = ?)',
      );
      args.push(k, v, v);
    } else {
      where.push(
        'EXISTS (SELECT 1 FROM metadata m WHERE m.bead_seq = b.seq AND m.k = ? AND m.v = ?)',
      );
      args.push(k, v);
    }
  }
}
