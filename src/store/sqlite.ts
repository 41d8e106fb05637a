/**
 * SQLite store (better-sqlite3, WAL). The default backend.
 *
 * Writes are group-committed: concurrent async writes queue up and run in one
 * transaction (each in its own savepoint, so one failing write rolls back
 * only itself), with one fsync per batch under `synchronous=FULL`. A write
 * resolves only after its batch committed. Reads run directly.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  ConflictError,
  GcError,
  NotFoundError,
  ValidationError,
  newBeadId,
  systemClock,
  type Clock,
} from '../core/index.js';
import type { Store } from './store.js';
import { MIGRATIONS } from './sqlite-schema.js';
import {
  BLOCKING_DEP_TYPES,
  INFRA_TYPES,
  PARENT_CHILD,
  ROUTED_TO,
  type Bead,
  type BeadCounts,
  type BeadFilter,
  type BeadStatus,
  type ClaimOptions,
  type CloseOptions,
  type CloseResult,
  type CreateBeadInput,
  type Dependency,
  type ListQuery,
  type Page,
  type ReadyQuery,
  type UnclaimOptions,
  type UpdateBeadInput,
  type Workload,
} from './types.js';
import {
  DEFAULT_LEASE_MS,
  checkActor,
  checkLease,
  checkMetadata,
  checkMetadataKey,
  checkType,
  decideClaim,
  decodeCursor,
  encodeCursor,
  hasFilter,
  isBlockingType,
  isInfraType,
  zeroCounts,
  iso,
  normalizeCreate,
  normalizeUpdate,
  pageSize,
  statusList,
} from './validate.js';

export interface SqliteStoreOptions {
  /** Database file, or ':memory:'. */
  path: string;
  prefix?: string;
  clock?: Clock;
  defaultLeaseMs?: number;
  /** `full` (default): fsync every commit. `normal`: WAL default, survives process crashes only. */
  durability?: 'full' | 'normal';
  /** Open read-only (no migrations, no writes). */
  readonly?: boolean;
}

interface BeadRow {
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

interface PendingWrite {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

const BLOCKING_LIST = [...BLOCKING_DEP_TYPES].map((t) => `'${t}'`).join(',');
/** Largest batch in one transaction: bounds the latency of the first write in it. */
const MAX_BATCH = 2000;

/** SQLite's BINARY collation: UTF-8 byte order (differs from UTF-16 order above U+FFFF). */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite';
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly defaultLeaseMs: number;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private disposed = false;
  private total: number;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path, { readonly: options.readonly ?? false });
    this.prefix = options.prefix ?? 'gc';
    this.clock = options.clock ?? systemClock;
    this.defaultLeaseMs = options.defaultLeaseMs ?? DEFAULT_LEASE_MS;
    this.db.pragma('busy_timeout = 10000');
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.migrate();
    }
    this.total = (this.stmt('SELECT count(*) AS n FROM beads').get() as { n: number }).n;
  }

  /** Current schema version of the open database. */
  schemaVersion(): number {
    return (this.db.pragma('user_version', { simple: true }) as number) ?? 0;
  }

  private migrate(): void {
    const current = this.schemaVersion();
    const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
    if (current > latest) {
      throw new GcError(
        'unsupported',
        `the store has schema version ${current}, newer than this gc knows (${latest})`,
        { fix: 'upgrade gc to the version that wrote this city' },
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      this.db
        .transaction(() => {
          this.db.exec(m.sql);
          this.db.pragma(`user_version = ${m.version}`);
        })
        .immediate();
    }
  }

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  // ---- write queue (group commit) ----

  private write<T>(fn: () => T): Promise<T> {
    if (this.disposed) return Promise.reject(new ConflictError('store is disposed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending.splice(0, MAX_BATCH);
    if (this.pending.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (batch.length === 0) return;
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.stmt('BEGIN IMMEDIATE').run();
      const savepoint = this.stmt('SAVEPOINT op');
      const release = this.stmt('RELEASE op');
      const rollbackTo = this.stmt('ROLLBACK TO op');
      for (const op of batch) {
        savepoint.run();
        try {
          const value = op.fn();
          release.run();
          results.push({ ok: true, value });
        } catch (err) {
          rollbackTo.run();
          release.run();
          results.push({ ok: false, value: err });
        }
      }
      this.stmt('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      // Ops that succeeded inside the batch may have bumped the cached total.
      this.total = (this.stmt('SELECT count(*) AS n FROM beads').get() as { n: number }).n;
      const e = err instanceof Error ? err : new Error(String(err));
      for (const op of batch) op.reject(e);
      return;
    }
    batch.forEach((op, i) => {
      const r = results[i];
      if (!r) return;
      if (r.ok) op.resolve(r.value);
      else op.reject(r.value instanceof Error ? r.value : new Error(String(r.value)));
    });
  }

  private read<T>(fn: () => T): Promise<T> {
    if (this.disposed) return Promise.reject(new ConflictError('store is disposed'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  // ---- row helpers ----

  private rowById(id: string): BeadRow {
    const r = this.stmt('SELECT * FROM beads WHERE id = ?').get(id) as BeadRow | undefined;
    if (!r) throw new NotFoundError('bead', id);
    return r;
  }

  private hydrate(rows: BeadRow[]): Bead[] {
    if (rows.length === 0) return [];
    const seqs = JSON.stringify(rows.map((r) => r.seq));
    const ids = JSON.stringify(rows.map((r) => r.id));
    const labels = new Map<number, string[]>();
    for (const l of this.stmt(
      'SELECT bead_seq, label FROM labels WHERE bead_seq IN (SELECT value FROM json_each(?)) ORDER BY label',
    ).all(seqs) as { bead_seq: number; label: string }[]) {
      let a = labels.get(l.bead_seq);
      if (!a) labels.set(l.bead_seq, (a = []));
      a.push(l.label);
    }
    const meta = new Map<number, Record<string, string>>();
    for (const m of this.stmt(
      'SELECT bead_seq, key, value FROM metadata WHERE bead_seq IN (SELECT value FROM json_each(?))',
    ).all(seqs) as { bead_seq: number; key: string; value: string }[]) {
      let o = meta.get(m.bead_seq);
      if (!o) meta.set(m.bead_seq, (o = {}));
      o[m.key] = m.value;
    }
    const deps = new Map<string, Dependency[]>();
    for (const d of this.stmt(
      'SELECT issue_id, depends_on_id, type FROM deps WHERE issue_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, depends_on_id',
    ).all(ids) as Dependency[]) {
      let a = deps.get(d.issue_id);
      if (!a) deps.set(d.issue_id, (a = []));
      a.push({ issue_id: d.issue_id, depends_on_id: d.depends_on_id, type: d.type });
    }
    return rows.map((r) => ({
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
      labels: labels.get(r.seq) ?? [],
      metadata: meta.get(r.seq) ?? {},
      dependencies: deps.get(r.id) ?? [],
      claimed_at: r.claimed_at === null ? null : iso(r.claimed_at),
      lease_expires_at: r.lease_expires_at === null ? null : iso(r.lease_expires_at),
      attempt: r.attempt,
    }));
  }

  private one(id: string): Bead {
    const [b] = this.hydrate([this.rowById(id)]);
    if (!b) throw new NotFoundError('bead', id);
    return b;
  }

  // ---- blocked maintenance ----

  private computeBlocked(id: string): number {
    const r = this.stmt(
      `SELECT EXISTS(
         SELECT 1 FROM deps d JOIN beads t ON t.id = d.depends_on_id
         WHERE d.issue_id = ?
           AND ((d.type IN (${BLOCKING_LIST}) AND t.status != 'closed')
             OR (d.type = '${PARENT_CHILD}' AND t.blocked = 1))
       ) AS b`,
    ).get(id) as { b: number };
    return r.b;
  }

  /** Recompute `blocked` for ids; when it flips, recompute their children too. */
  private refreshBlocked(ids: Iterable<string>): void {
    const stack = [...ids];
    const guard = new Set<string>();
    while (stack.length) {
      const id = stack.pop() as string;
      const row = this.stmt('SELECT blocked FROM beads WHERE id = ?').get(id) as
        { blocked: number } | undefined;
      if (!row) continue;
      const next = this.computeBlocked(id);
      if (next === row.blocked) continue;
      const flipKey = `${id}:${next}`;
      if (guard.has(flipKey)) continue;
      guard.add(flipKey);
      this.stmt('UPDATE beads SET blocked = ? WHERE id = ?').run(next, id);
      for (const c of this.stmt(
        `SELECT issue_id FROM deps WHERE depends_on_id = ? AND type = '${PARENT_CHILD}'`,
      ).all(id) as { issue_id: string }[]) {
        stack.push(c.issue_id);
      }
    }
  }

  /** Beads whose readiness depends on `id` being closed. */
  private blockedDependents(id: string): string[] {
    return (
      this.stmt(
        `SELECT issue_id FROM deps WHERE depends_on_id = ? AND type IN (${BLOCKING_LIST})`,
      ).all(id) as { issue_id: string }[]
    ).map((r) => r.issue_id);
  }

  private checkNoCycle(issue: string, dep: string): void {
    const seen = new Set<string>();
    const stack = [dep];
    const next = this.stmt(
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

  private link(issue: string, dep: string, type: string): void {
    this.stmt(
      `INSERT INTO deps (issue_id, depends_on_id, type, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (issue_id, depends_on_id) DO UPDATE SET type = excluded.type`,
    ).run(issue, dep, type, this.clock.now());
  }

  // ---- Store ----

  create(input: CreateBeadInput): Promise<Bead> {
    return this.write(() => {
      const n = normalizeCreate(input);
      for (const need of n.needs) this.rowById(need.id);
      if (n.parent) this.rowById(n.parent);
      const exists = this.stmt('SELECT 1 FROM beads WHERE id = ?');
      let id = newBeadId(this.prefix, this.total);
      for (let extra = 1; exists.get(id); extra++) id = newBeadId(this.prefix, this.total, extra);
      const now = this.clock.now();
      const info = this.stmt(
        `INSERT INTO beads (id, title, status, issue_type, priority, created_at, updated_at,
           closed_at, assignee, from_actor, parent, ref, description, infra)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
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
      );
      const seq = Number(info.lastInsertRowid);
      const addLabel = this.stmt('INSERT OR IGNORE INTO labels (bead_seq, label) VALUES (?, ?)');
      for (const l of n.labels) addLabel.run(seq, l);
      const setMeta = this.stmt(
        'INSERT OR REPLACE INTO metadata (bead_seq, key, value) VALUES (?, ?, ?)',
      );
      for (const [k, v] of Object.entries(n.metadata)) setMeta.run(seq, k, v);
      if (n.parent) this.link(id, n.parent, PARENT_CHILD);
      for (const need of n.needs) this.link(id, need.id, need.type);
      this.total++;
      if (n.parent || n.needs.length) {
        this.refreshBlocked([id]);
        return this.one(id);
      }
      // Nothing else can have touched the new row inside this savepoint: build
      // the answer from what was written instead of reading it back.
      const at = iso(now);
      return {
        id,
        title: n.title,
        status: n.status,
        issue_type: n.type,
        priority: n.priority,
        created_at: at,
        updated_at: at,
        closed_at: n.status === 'closed' ? at : null,
        close_reason: '',
        assignee: n.assignee,
        from: n.from,
        parent: n.parent,
        ref: n.ref,
        description: n.description,
        labels: [...new Set(n.labels)].sort(byBytes),
        metadata: { ...n.metadata },
        dependencies: [],
        claimed_at: null,
        lease_expires_at: null,
        attempt: 0,
      };
    });
  }

  get(id: string): Promise<Bead> {
    return this.read(() => this.one(id));
  }

  getMany(ids: readonly string[]): Promise<Bead[]> {
    return this.read(() => {
      const rows = this.stmt(
        'SELECT * FROM beads WHERE id IN (SELECT value FROM json_each(?))',
      ).all(JSON.stringify(ids)) as BeadRow[];
      const byId = new Map(this.hydrate(rows).map((b) => [b.id, b]));
      return ids.flatMap((id) => {
        const b = byId.get(id);
        return b ? [b] : [];
      });
    });
  }

  private applyStatus(r: BeadRow, status: BeadStatus, now: number, reason?: string): void {
    if (status === r.status) return;
    const lease = status === 'in_progress';
    this.stmt(
      `UPDATE beads SET status = ?, closed_at = ?, close_reason = ?,
         claimed_at = ?, lease_expires_at = ?, updated_at = ? WHERE id = ?`,
    ).run(
      status,
      status === 'closed' ? now : null,
      status === 'closed' ? (reason ?? '') : r.close_reason,
      lease ? r.claimed_at : null,
      lease ? r.lease_expires_at : null,
      now,
      r.id,
    );
    const wasClosed = r.status === 'closed';
    const isClosed = status === 'closed';
    if (wasClosed !== isClosed) this.refreshBlocked(this.blockedDependents(r.id));
  }

  update(id: string, patch: UpdateBeadInput): Promise<Bead> {
    return this.write(() => {
      const p = normalizeUpdate(patch);
      const r = this.rowById(id);
      const now = this.clock.now();
      if (p.parent !== undefined && p.parent !== '' && p.parent !== r.parent) {
        this.rowById(p.parent);
        this.checkNoCycle(id, p.parent);
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
      this.db.prepare(`UPDATE beads SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
      const addLabel = this.stmt('INSERT OR IGNORE INTO labels (bead_seq, label) VALUES (?, ?)');
      for (const l of p.labels ?? []) addLabel.run(r.seq, l);
      const delLabel = this.stmt('DELETE FROM labels WHERE bead_seq = ? AND label = ?');
      for (const l of p.remove_labels ?? []) delLabel.run(r.seq, l);
      const setMeta = this.stmt(
        'INSERT OR REPLACE INTO metadata (bead_seq, key, value) VALUES (?, ?, ?)',
      );
      for (const [k, v] of Object.entries(p.metadata ?? {})) setMeta.run(r.seq, k, v);
      if (p.parent !== undefined && p.parent !== r.parent) {
        if (r.parent) {
          this.stmt(
            `DELETE FROM deps WHERE issue_id = ? AND depends_on_id = ? AND type = '${PARENT_CHILD}'`,
          ).run(id, r.parent);
        }
        this.stmt('UPDATE beads SET parent = ? WHERE id = ?').run(p.parent, id);
        if (p.parent) this.link(id, p.parent, PARENT_CHILD);
        this.refreshBlocked([id]);
      }
      if (p.status !== undefined) this.applyStatus(this.rowById(id), p.status, now);
      return this.one(id);
    });
  }

  close(id: string, options: CloseOptions = {}): Promise<CloseResult> {
    return this.write(() => {
      const r = this.rowById(id);
      if (r.status === 'closed') return { bead: this.one(id), changed: false };
      this.applyStatus(r, 'closed', this.clock.now(), options.reason ?? '');
      return { bead: this.one(id), changed: true };
    });
  }

  delete(id: string): Promise<void> {
    return this.write(() => {
      const r = this.rowById(id);
      const dependents = (
        this.stmt('SELECT issue_id FROM deps WHERE depends_on_id = ?').all(id) as {
          issue_id: string;
        }[]
      ).map((d) => d.issue_id);
      this.stmt('DELETE FROM deps WHERE issue_id = ? OR depends_on_id = ?').run(id, id);
      this.stmt('DELETE FROM labels WHERE bead_seq = ?').run(r.seq);
      this.stmt('DELETE FROM metadata WHERE bead_seq = ?').run(r.seq);
      this.stmt("UPDATE beads SET parent = '' WHERE parent = ?").run(id);
      this.stmt('DELETE FROM beads WHERE id = ?').run(id);
      this.total--;
      this.refreshBlocked(dependents);
    });
  }

  /** SQL conditions for a filter, against alias `b`. */
  private filterSql(f: BeadFilter, where: string[], args: unknown[]): void {
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

  private pageOf(rows: BeadRow[], limit: number, key: (r: BeadRow) => number[]): Page<Bead> {
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items: this.hydrate(items),
      next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null,
    };
  }

  list(query: ListQuery): Promise<Page<Bead>> {
    return this.read(() => {
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
      this.filterSql(query, where, args);
      const rows = this.stmt(
        `SELECT b.* FROM beads b WHERE ${where.join(' AND ')} ORDER BY b.seq LIMIT ?`,
      ).all(...args, limit + 1) as BeadRow[];
      return this.pageOf(rows, limit, (r) => [r.seq]);
    });
  }

  private readyRows(q: ReadyQuery, limit: number, after?: number[], claimant?: string): BeadRow[] {
    const where = ["b.status = 'open'", 'b.blocked = 0', 'b.infra = 0'];
    const args: unknown[] = [];
    this.filterSql(q, where, args);
    if (claimant !== undefined) {
      // Skip work pre-assigned to someone else.
      where.push("(b.assignee = '' OR b.assignee = ?)");
      args.push(claimant);
    }
    if (after) {
      where.push('(b.priority > ? OR (b.priority = ? AND b.seq > ?))');
      args.push(after[0], after[0], after[1]);
    }
    return this.stmt(
      `SELECT b.* FROM beads b INDEXED BY beads_ready WHERE ${where.join(' AND ')}
       ORDER BY b.priority, b.seq LIMIT ?`,
    ).all(...args, limit) as BeadRow[];
  }

  ready(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.read(() => {
      const limit = pageSize(query.limit);
      const rows = this.readyRows(query, limit + 1, decodeCursor(query.cursor, 2));
      return this.pageOf(rows, limit, (r) => [r.priority, r.seq]);
    });
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.list({ ...query, parent: parentId });
  }

  count(filter: BeadFilter = {}): Promise<number> {
    return this.read(() => {
      const where = ['1'];
      const args: unknown[] = [];
      this.filterSql(filter, where, args);
      return (
        this.stmt(`SELECT count(*) AS n FROM beads b WHERE ${where.join(' AND ')}`).get(
          ...args,
        ) as {
          n: number;
        }
      ).n;
    });
  }

  private countReadySync(q: ReadyQuery): number {
    const where = ["b.status = 'open'", 'b.blocked = 0', 'b.infra = 0'];
    const args: unknown[] = [];
    this.filterSql(q, where, args);
    return (
      this.stmt(
        `SELECT count(*) AS n FROM beads b INDEXED BY beads_ready WHERE ${where.join(' AND ')}`,
      ).get(...args) as { n: number }
    ).n;
  }

  countReady(query: ReadyQuery = {}): Promise<number> {
    return this.read(() => this.countReadySync(query));
  }

  counts(): Promise<BeadCounts> {
    return this.read(() => {
      const c = zeroCounts();
      const infra = [...INFRA_TYPES].map((t) => `'${t}'`).join(',');
      for (const r of this.stmt(
        `SELECT status, issue_type IN (${infra}) AS infra, count(*) AS n FROM beads GROUP BY status, infra`,
      ).all() as {
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
      c.ready = this.countReadySync({});
      return c;
    });
  }

  workload(): Promise<Workload> {
    return this.read(() => {
      const routed = this.stmt(
        `SELECT m.value AS routed_to,
           sum(CASE WHEN b.status = 'open' AND b.blocked = 0 AND b.infra = 0 AND b.assignee = ''
               THEN 1 ELSE 0 END) AS ready,
           sum(CASE WHEN b.status = 'in_progress' THEN 1 ELSE 0 END) AS in_progress
         FROM metadata m JOIN beads b ON b.seq = m.bead_seq
         WHERE m.key = ? AND b.status != 'closed'
         GROUP BY m.value ORDER BY m.value`,
      ).all(ROUTED_TO) as Workload['routed'];
      const claims = this.stmt(
        `SELECT assignee, count(*) AS in_progress FROM beads INDEXED BY beads_status
         WHERE status = 'in_progress' AND assignee != '' GROUP BY assignee ORDER BY assignee`,
      ).all() as Workload['claims'];
      return { routed, claims };
    });
  }

  setMetadata(id: string, key: string, value: string): Promise<Bead> {
    return this.write(() => {
      checkMetadataKey(key);
      const v = checkMetadata({ [key]: value })[key] ?? '';
      const r = this.rowById(id);
      this.stmt('INSERT OR REPLACE INTO metadata (bead_seq, key, value) VALUES (?, ?, ?)').run(
        r.seq,
        key,
        v,
      );
      this.stmt('UPDATE beads SET updated_at = ? WHERE seq = ?').run(this.clock.now(), r.seq);
      return this.one(id);
    });
  }

  addDependency(issueId: string, dependsOnId: string, type = 'blocks'): Promise<void> {
    return this.write(() => {
      checkType(type);
      if (issueId === dependsOnId) {
        throw new ValidationError('a bead cannot depend on itself', { where: 'dependency' });
      }
      this.rowById(issueId);
      this.rowById(dependsOnId);
      const existing = this.stmt(
        'SELECT type FROM deps WHERE issue_id = ? AND depends_on_id = ?',
      ).get(issueId, dependsOnId) as { type: string } | undefined;
      if (existing?.type === type) return;
      if (isBlockingType(type)) this.checkNoCycle(issueId, dependsOnId);
      this.link(issueId, dependsOnId, type);
      this.refreshBlocked([issueId]);
    });
  }

  removeDependency(issueId: string, dependsOnId: string): Promise<void> {
    return this.write(() => {
      const r = this.rowById(issueId);
      const existing = this.stmt(
        'SELECT type FROM deps WHERE issue_id = ? AND depends_on_id = ?',
      ).get(issueId, dependsOnId) as { type: string } | undefined;
      if (!existing) return;
      this.stmt('DELETE FROM deps WHERE issue_id = ? AND depends_on_id = ?').run(
        issueId,
        dependsOnId,
      );
      if (existing.type === PARENT_CHILD && r.parent === dependsOnId) {
        this.stmt("UPDATE beads SET parent = '' WHERE id = ?").run(issueId);
      }
      this.refreshBlocked([issueId]);
    });
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.read(() => {
      this.rowById(id);
      const col = direction === 'down' ? 'issue_id' : 'depends_on_id';
      return this.stmt(
        `SELECT issue_id, depends_on_id, type FROM deps WHERE ${col} = ? ORDER BY created_at, issue_id, depends_on_id`,
      ).all(id) as Dependency[];
    });
  }

  private claimRow(r: BeadRow, actor: string, leaseMs: number): void {
    const now = this.clock.now();
    const { renew } = decideClaim(
      { id: r.id, status: r.status, assignee: r.assignee, leaseExpiresAt: r.lease_expires_at },
      actor,
      now,
    );
    this.stmt(
      `UPDATE beads SET status = 'in_progress', assignee = ?, claimed_at = ?,
         lease_expires_at = ?, attempt = ?, updated_at = ? WHERE seq = ?`,
    ).run(
      actor,
      renew ? r.claimed_at : now,
      now + leaseMs,
      renew ? r.attempt : r.attempt + 1,
      now,
      r.seq,
    );
  }

  private checkClaimant(actor: string): void {
    checkActor(actor, 'actor');
    if (actor === '') throw new ValidationError('must not be empty', { where: 'actor' });
  }

  claim(id: string, actor: string, options: ClaimOptions = {}): Promise<Bead> {
    return this.write(() => {
      this.checkClaimant(actor);
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      this.claimRow(this.rowById(id), actor, lease);
      return this.one(id);
    });
  }

  claimNextReady(actor: string, query: ReadyQuery & ClaimOptions = {}): Promise<Bead | null> {
    return this.write(() => {
      this.checkClaimant(actor);
      const lease = checkLease(query.leaseMs, this.defaultLeaseMs);
      const [row] = this.readyRows(query, 1, undefined, actor);
      if (!row) return null;
      this.claimRow(row, actor, lease);
      return this.one(row.id);
    });
  }

  renewClaim(id: string, actor: string, options: ClaimOptions = {}): Promise<Bead> {
    return this.write(() => {
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      const r = this.rowById(id);
      if (r.status !== 'in_progress' || r.assignee !== actor) {
        throw new ConflictError(`bead ${id} is not claimed by ${actor}`, {
          details: { id, holder: r.assignee, status: r.status },
        });
      }
      const now = this.clock.now();
      this.stmt('UPDATE beads SET lease_expires_at = ?, updated_at = ? WHERE seq = ?').run(
        now + lease,
        now,
        r.seq,
      );
      return this.one(id);
    });
  }

  private unclaimRow(seq: number): void {
    this.stmt(
      `UPDATE beads SET status = 'open', assignee = '', claimed_at = NULL,
         lease_expires_at = NULL, updated_at = ? WHERE seq = ?`,
    ).run(this.clock.now(), seq);
  }

  unclaim(id: string, options: UnclaimOptions = {}): Promise<Bead> {
    return this.write(() => {
      const r = this.rowById(id);
      if (r.status === 'closed') {
        throw new ConflictError(`bead ${id} is closed; reopen it with update status=open`, {
          details: { id },
        });
      }
      // Only the holder (or a forced unclaim, which passes no actor) may release.
      if (options.actor !== undefined && r.assignee !== '' && r.assignee !== options.actor) {
        throw new ConflictError(`bead ${id} is held by ${r.assignee}, not ${options.actor}`, {
          details: { id, holder: r.assignee },
        });
      }
      if (options.attempt !== undefined && r.attempt !== options.attempt) {
        throw new ConflictError(
          `bead ${id} was re-claimed (attempt ${r.attempt}, not ${options.attempt})`,
          { details: { id, attempt: r.attempt } },
        );
      }
      if (!(r.status === 'open' && r.assignee === '')) this.unclaimRow(r.seq);
      return this.one(id);
    });
  }

  private releaseWhere(sql: string, ...args: unknown[]): Bead[] {
    const rows = this.stmt(`SELECT * FROM beads WHERE ${sql}`).all(...args) as BeadRow[];
    for (const r of rows) this.unclaimRow(r.seq);
    return this.hydrate(
      rows.length
        ? (this.stmt('SELECT * FROM beads WHERE seq IN (SELECT value FROM json_each(?))').all(
            JSON.stringify(rows.map((r) => r.seq)),
          ) as BeadRow[])
        : [],
    );
  }

  releaseClaims(actor: string): Promise<Bead[]> {
    return this.write(() => this.releaseWhere("status = 'in_progress' AND assignee = ?", actor));
  }

  releaseExpiredClaims(now = this.clock.now()): Promise<Bead[]> {
    return this.write(() =>
      this.releaseWhere("status = 'in_progress' AND lease_expires_at <= ?", now),
    );
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    // Let queued writes finish before closing.
    while (this.pending.length > 0 || this.flushScheduled) {
      await new Promise((r) => setImmediate(r));
    }
    this.disposed = true;
    this.db.close();
  }
}
