/**
 * SQLite store (better-sqlite3, WAL). The default backend.
 *
 * Writes are group-committed (sqlite-commit.ts); rows, hydration and the
 * blocked flag live in sqlite-rows.ts; the schema in sqlite-schema.ts. This
 * file is the Store contract over them.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  ConflictError,
  GcError,
  ValidationError,
  newBeadId,
  systemClock,
  type Clock,
} from '../core/index.js';
import type { Store } from './store.js';
import { GroupCommit } from './sqlite-commit.js';
import { freshBead, insertBead } from './sqlite-create.js';
import {
  Statements,
  blockedDependents,
  checkNoCycle,
  hydrate,
  link,
  one,
  refreshBlocked,
  rowById,
  type BeadRow,
} from './sqlite-rows.js';
import {
  beadCounts,
  countBeads,
  countReady,
  listPage,
  readyPage,
  readyRows,
  workloadOf,
} from './sqlite-reads.js';
import { MIGRATIONS } from './sqlite-schema.js';
import {
  PARENT_CHILD,
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
  type OutboxRow,
  type WriteRecord,
} from './types.js';
import {
  DEFAULT_LEASE_MS,
  checkActor,
  checkLease,
  checkMetadata,
  checkMetadataKey,
  checkType,
  decideClaim,
  isBlockingType,
  isInfraType,
  normalizeCreate,
  normalizeBatch,
  resolveBatch,
  type NormalizedCreate,
  normalizeUpdate,
  decideUnclaim,
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

export class SqliteStore implements Store {
  readonly backend = 'sqlite';
  private readonly db: Database.Database;
  private readonly sql: Statements;
  private readonly commits: GroupCommit;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly defaultLeaseMs: number;
  /** Beads in the table (for id length); resynced when a batch rolls back. */
  private total: number;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path, { readonly: options.readonly ?? false });
    this.sql = new Statements(this.db);
    // Ops that succeeded inside a rolled-back batch may have bumped the cached total.
    this.commits = new GroupCommit(
      this.db,
      this.sql,
      () => {
        this.total = this.countAll();
      },
      () => this.clock.now(),
    );
    this.prefix = options.prefix ?? 'gc';
    this.clock = options.clock ?? systemClock;
    this.defaultLeaseMs = options.defaultLeaseMs ?? DEFAULT_LEASE_MS;
    this.db.pragma('busy_timeout = 10000');
    // Every write in a group commit runs in its own savepoint, whose undo
    // journal SQLite keeps in a temporary file past a few pages: in memory,
    // a mail send costs half as much (bench/api.ts, mail_direct_msgs_per_s).
    // Temporary files hold nothing that must survive a crash.
    this.db.pragma('temp_store = MEMORY');
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.migrate();
    }
    this.total = this.countAll();
  }

  private countAll(): number {
    return (this.sql.stmt('SELECT count(*) AS n FROM beads').get() as { n: number }).n;
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

  // ---- Store ----

  create(input: CreateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.commits.write(() => {
      const n = normalizeCreate(input);
      for (const need of n.needs) rowById(this.sql, need.id);
      if (n.parent) rowById(this.sql, n.parent);
      const { id, now } = this.insert(n);
      if (n.parent || n.needs.length) {
        refreshBlocked(this.sql, [id]);
        return one(this.sql, id);
      }
      // Nothing else can have touched the new row inside this savepoint: build
      // the answer from what was written instead of reading it back.
      return freshBead(id, n, now);
    }, rec);
  }

  createMany(inputs: readonly CreateBeadInput[], rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.commits.write(() => {
      const batch = normalizeBatch(inputs);
      for (const b of batch) for (const id of b.outside) rowById(this.sql, id);
      const ids: string[] = [];
      for (const b of batch) ids.push(this.insert(resolveBatch(b.n, ids)).id);
      // A stack: reversed, so parents are settled before their children.
      refreshBlocked(this.sql, [...ids].reverse());
      return ids.map((id) => one(this.sql, id));
    }, rec);
  }

  /** The bead's rows: itself, labels, metadata, links (blocked state is the caller's). */
  private insert(n: NormalizedCreate): { id: string; now: number } {
    const exists = this.sql.stmt('SELECT 1 FROM beads WHERE id = ?');
    let id = newBeadId(this.prefix, this.total);
    for (let extra = 1; exists.get(id); extra++) id = newBeadId(this.prefix, this.total, extra);
    const now = this.clock.now();
    const seq = insertBead(this.sql, id, n, now);
    const addLabel = this.sql.stmt('INSERT OR IGNORE INTO labels (bead_seq, label) VALUES (?, ?)');
    for (const l of n.labels) addLabel.run(seq, l);
    const setMeta = this.sql.stmt(
      'INSERT OR REPLACE INTO metadata (bead_seq, key, value) VALUES (?, ?, ?)',
    );
    for (const [k, v] of Object.entries(n.metadata)) setMeta.run(seq, k, v);
    if (n.parent) link(this.sql, id, n.parent, PARENT_CHILD, this.clock.now());
    for (const need of n.needs) link(this.sql, id, need.id, need.type, this.clock.now());
    this.total++;
    return { id, now };
  }

  get(id: string): Promise<Bead> {
    return this.commits.read(() => one(this.sql, id));
  }

  getMany(ids: readonly string[]): Promise<Bead[]> {
    return this.commits.read(() => {
      const rows = this.sql
        .stmt('SELECT * FROM beads WHERE id IN (SELECT value FROM json_each(?))')
        .all(JSON.stringify(ids)) as BeadRow[];
      const byId = new Map(hydrate(this.sql, rows).map((b) => [b.id, b]));
      return ids.flatMap((id) => {
        const b = byId.get(id);
        return b ? [b] : [];
      });
    });
  }

  private applyStatus(r: BeadRow, status: BeadStatus, now: number, reason?: string): void {
    if (status === r.status) return;
    const lease = status === 'in_progress';
    this.sql
      .stmt(
        `UPDATE beads SET status = ?, closed_at = ?, close_reason = ?,
         claimed_at = ?, lease_expires_at = ?, updated_at = ? WHERE id = ?`,
      )
      .run(
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
    if (wasClosed !== isClosed) refreshBlocked(this.sql, blockedDependents(this.sql, r.id));
  }

  update(id: string, patch: UpdateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.commits.write(() => {
      const p = normalizeUpdate(patch);
      const r = rowById(this.sql, id);
      const now = this.clock.now();
      if (p.parent !== undefined && p.parent !== '' && p.parent !== r.parent) {
        rowById(this.sql, p.parent);
        checkNoCycle(this.sql, id, p.parent);
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
      const addLabel = this.sql.stmt(
        'INSERT OR IGNORE INTO labels (bead_seq, label) VALUES (?, ?)',
      );
      for (const l of p.labels ?? []) addLabel.run(r.seq, l);
      const delLabel = this.sql.stmt('DELETE FROM labels WHERE bead_seq = ? AND label = ?');
      for (const l of p.remove_labels ?? []) delLabel.run(r.seq, l);
      const setMeta = this.sql.stmt(
        'INSERT OR REPLACE INTO metadata (bead_seq, key, value) VALUES (?, ?, ?)',
      );
      for (const [k, v] of Object.entries(p.metadata ?? {})) setMeta.run(r.seq, k, v);
      if (p.parent !== undefined && p.parent !== r.parent) {
        if (r.parent) {
          this.sql
            .stmt(
              `DELETE FROM deps WHERE issue_id = ? AND depends_on_id = ? AND type = '${PARENT_CHILD}'`,
            )
            .run(id, r.parent);
        }
        this.sql.stmt('UPDATE beads SET parent = ? WHERE id = ?').run(p.parent, id);
        if (p.parent) link(this.sql, id, p.parent, PARENT_CHILD, this.clock.now());
        refreshBlocked(this.sql, [id]);
      }
      if (p.status !== undefined) this.applyStatus(rowById(this.sql, id), p.status, now);
      return one(this.sql, id);
    }, rec);
  }

  close(
    id: string,
    options: CloseOptions = {},
    rec?: WriteRecord<CloseResult>,
  ): Promise<CloseResult> {
    return this.commits.write(() => {
      const r = rowById(this.sql, id);
      if (r.status === 'closed') return { bead: one(this.sql, id), changed: false };
      this.applyStatus(r, 'closed', this.clock.now(), options.reason ?? '');
      return { bead: one(this.sql, id), changed: true };
    }, rec);
  }

  delete(id: string, rec?: WriteRecord<void>): Promise<void> {
    return this.commits.write(() => {
      const r = rowById(this.sql, id);
      const dependents = (
        this.sql.stmt('SELECT issue_id FROM deps WHERE depends_on_id = ?').all(id) as {
          issue_id: string;
        }[]
      ).map((d) => d.issue_id);
      this.sql.stmt('DELETE FROM deps WHERE issue_id = ? OR depends_on_id = ?').run(id, id);
      this.sql.stmt('DELETE FROM labels WHERE bead_seq = ?').run(r.seq);
      this.sql.stmt('DELETE FROM metadata WHERE bead_seq = ?').run(r.seq);
      this.sql.stmt("UPDATE beads SET parent = '' WHERE parent = ?").run(id);
      this.sql.stmt('DELETE FROM beads WHERE id = ?').run(id);
      this.total--;
      refreshBlocked(this.sql, dependents);
    }, rec);
  }

  list(query: ListQuery): Promise<Page<Bead>> {
    return this.commits.read(() => listPage(this.sql, query));
  }

  ready(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.commits.read(() => readyPage(this.sql, query));
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.list({ ...query, parent: parentId });
  }

  count(filter: BeadFilter = {}): Promise<number> {
    return this.commits.read(() => countBeads(this.sql, filter));
  }

  countReady(query: ReadyQuery = {}): Promise<number> {
    return this.commits.read(() => countReady(this.sql, query));
  }

  counts(): Promise<BeadCounts> {
    return this.commits.read(() => beadCounts(this.sql));
  }

  workload(): Promise<Workload> {
    return this.commits.read(() => workloadOf(this.sql));
  }

  setMetadata(id: string, key: string, value: string, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.commits.write(() => {
      checkMetadataKey(key);
      const v = checkMetadata({ [key]: value })[key] ?? '';
      const r = rowById(this.sql, id);
      this.sql
        .stmt('INSERT OR REPLACE INTO metadata (bead_seq, key, value) VALUES (?, ?, ?)')
        .run(r.seq, key, v);
      this.sql.stmt('UPDATE beads SET updated_at = ? WHERE seq = ?').run(this.clock.now(), r.seq);
      return one(this.sql, id);
    }, rec);
  }

  addDependency(
    issueId: string,
    dependsOnId: string,
    type = 'blocks',
    rec?: WriteRecord<void>,
  ): Promise<void> {
    return this.commits.write(() => {
      checkType(type);
      if (issueId === dependsOnId) {
        throw new ValidationError('a bead cannot depend on itself', { where: 'dependency' });
      }
      rowById(this.sql, issueId);
      rowById(this.sql, dependsOnId);
      const existing = this.sql
        .stmt('SELECT type FROM deps WHERE issue_id = ? AND depends_on_id = ?')
        .get(issueId, dependsOnId) as { type: string } | undefined;
      if (existing?.type === type) return;
      if (isBlockingType(type)) checkNoCycle(this.sql, issueId, dependsOnId);
      link(this.sql, issueId, dependsOnId, type, this.clock.now());
      refreshBlocked(this.sql, [issueId]);
    }, rec);
  }

  removeDependency(issueId: string, dependsOnId: string, rec?: WriteRecord<void>): Promise<void> {
    return this.commits.write(() => {
      const r = rowById(this.sql, issueId);
      const existing = this.sql
        .stmt('SELECT type FROM deps WHERE issue_id = ? AND depends_on_id = ?')
        .get(issueId, dependsOnId) as { type: string } | undefined;
      if (!existing) return;
      this.sql
        .stmt('DELETE FROM deps WHERE issue_id = ? AND depends_on_id = ?')
        .run(issueId, dependsOnId);
      if (existing.type === PARENT_CHILD && r.parent === dependsOnId) {
        this.sql.stmt("UPDATE beads SET parent = '' WHERE id = ?").run(issueId);
      }
      refreshBlocked(this.sql, [issueId]);
    }, rec);
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.commits.read(() => {
      rowById(this.sql, id);
      const col = direction === 'down' ? 'issue_id' : 'depends_on_id';
      return this.sql
        .stmt(
          `SELECT issue_id, depends_on_id, type FROM deps WHERE ${col} = ? ORDER BY created_at, issue_id, depends_on_id`,
        )
        .all(id) as Dependency[];
    });
  }

  private claimRow(r: BeadRow, actor: string, leaseMs: number): void {
    const now = this.clock.now();
    const { renew } = decideClaim(
      { id: r.id, status: r.status, assignee: r.assignee, leaseExpiresAt: r.lease_expires_at },
      actor,
      now,
    );
    this.sql
      .stmt(
        `UPDATE beads SET status = 'in_progress', assignee = ?, claimed_at = ?,
         lease_expires_at = ?, attempt = ?, updated_at = ? WHERE seq = ?`,
      )
      .run(
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

  claim(
    id: string,
    actor: string,
    options: ClaimOptions = {},
    rec?: WriteRecord<Bead>,
  ): Promise<Bead> {
    return this.commits.write(() => {
      this.checkClaimant(actor);
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      this.claimRow(rowById(this.sql, id), actor, lease);
      return one(this.sql, id);
    }, rec);
  }

  claimNextReady(
    actor: string,
    query: ReadyQuery & ClaimOptions = {},
    rec?: WriteRecord<Bead | null>,
  ): Promise<Bead | null> {
    return this.commits.write(() => {
      this.checkClaimant(actor);
      const lease = checkLease(query.leaseMs, this.defaultLeaseMs);
      const [row] = readyRows(this.sql, query, 1, undefined, actor);
      if (!row) return null;
      this.claimRow(row, actor, lease);
      return one(this.sql, row.id);
    }, rec);
  }

  renewClaim(id: string, actor: string, options: ClaimOptions = {}): Promise<Bead> {
    return this.commits.write(() => {
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      const r = rowById(this.sql, id);
      if (r.status !== 'in_progress' || r.assignee !== actor) {
        throw new ConflictError(`bead ${id} is not claimed by ${actor}`, {
          details: { id, holder: r.assignee, status: r.status },
        });
      }
      const now = this.clock.now();
      this.sql
        .stmt('UPDATE beads SET lease_expires_at = ?, updated_at = ? WHERE seq = ?')
        .run(now + lease, now, r.seq);
      return one(this.sql, id);
    });
  }

  private unclaimRow(seq: number): void {
    this.sql
      .stmt(
        `UPDATE beads SET status = 'open', assignee = '', claimed_at = NULL,
         lease_expires_at = NULL, updated_at = ? WHERE seq = ?`,
      )
      .run(this.clock.now(), seq);
  }

  unclaim(id: string, options: UnclaimOptions = {}, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.commits.write(() => {
      const r = rowById(this.sql, id);
      if (decideUnclaim(r, options)) this.unclaimRow(r.seq);
      return one(this.sql, id);
    }, rec);
  }

  private releaseWhere(sql: string, ...args: unknown[]): Bead[] {
    const rows = this.sql.stmt(`SELECT * FROM beads WHERE ${sql}`).all(...args) as BeadRow[];
    for (const r of rows) this.unclaimRow(r.seq);
    return hydrate(
      this.sql,
      rows.length
        ? (this.sql
            .stmt('SELECT * FROM beads WHERE seq IN (SELECT value FROM json_each(?))')
            .all(JSON.stringify(rows.map((r) => r.seq))) as BeadRow[])
        : [],
    );
  }

  releaseClaims(actor: string, rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.commits.write(
      () => this.releaseWhere("status = 'in_progress' AND assignee = ?", actor),
      rec,
    );
  }

  releaseExpiredClaims(now = this.clock.now(), rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.commits.write(
      () => this.releaseWhere("status = 'in_progress' AND lease_expires_at <= ?", now),
      rec,
    );
  }

  outbox(limit = 1000, afterId = 0): Promise<OutboxRow[]> {
    return this.commits.read(() =>
      (
        this.sql
          .stmt('SELECT id, event FROM outbox WHERE id > ? ORDER BY id LIMIT ?')
          .all(afterId, limit) as {
          id: number;
          event: string;
        }[]
      ).map((r) => ({ id: r.id, event: JSON.parse(r.event) as OutboxRow['event'] })),
    );
  }

  ackOutbox(throughId: number): Promise<void> {
    return this.commits.write(() => {
      this.sql.stmt('DELETE FROM outbox WHERE id <= ?').run(throughId);
    });
  }

  async dispose(): Promise<void> {
    if (this.commits.isDisposed) return;
    // Let queued writes finish before closing.
    await this.commits.drain();
    this.db.close();
  }
}
