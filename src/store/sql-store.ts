/**
 * The store on a database server: PostgreSQL or a MySQL-protocol server
 * (MariaDB here), shared by any number of processes. Same contract and
 * conformance suite as the SQLite store.
 *
 * Every write is one transaction: the change, the events that record it
 * (appended to the event log table, schema v3) and the answer kept for a
 * retried request commit together. Lost
 * races (deadlock, serialization failure, a duplicate key from a racing
 * insert) run the transaction again. Claims pick with `FOR UPDATE SKIP
 * LOCKED` and then update with a compare-and-set whose affected-row count
 * is checked, so a server where those locks do nothing (Dolt) still never
 * hands one bead to two claimants.
 */
import {
  ConflictError,
  ValidationError,
  newBeadId,
  systemClock,
  type Clock,
} from '../core/index.js';
import {
  claimAll,
  claimById,
  claimNext,
  type ClaimNextItem,
  eventRowsOf,
  recorded,
  releaseWhere,
  renewIn,
  unclaimIn,
  valueFiltered,
} from './sql-claims.js';
import { LOST, SqlGroupCommit } from './sql-commit.js';
import {
  migrate,
  openSqlDb,
  retryable,
  schemaVersion,
  type SqlConn,
  type SqlDb,
  type SqlDbOptions,
} from '../db/index.js';
import {
  limitSql,
  beadCounts,
  countBeads,
  countReady,
  listPage,
  readyPage,
  workloadOf,
} from './sql-reads.js';
import {
  createAll,
  createBatch,
  createLinked,
  type CreateItem,
  type IdSource,
} from './sql-create.js';
import { createAlone, insertPlainBead } from './sql-insert.js';
import { applyStatus, deleteIn, updateIn } from './sql-update.js';
import {
  checkNoCycle,
  hydrate,
  link,
  lockIds,
  marks,
  one,
  refreshBlocked,
  rowById,
  rowsWhere,
  setMetadata,
} from './sql-rows.js';

import type { Store } from './store.js';
import {
  PARENT_CHILD,
  type Bead,
  type BeadCounts,
  type BeadFilter,
  type ClaimOptions,
  type CloseOptions,
  type CloseResult,
  type CreateBeadInput,
  type Dependency,
  type ListQuery,
  type OutboxRow,
  type Page,
  type ReadyQuery,
  type UnclaimOptions,
  type UpdateBeadInput,
  type Workload,
  type WriteRecord,
} from './types.js';
import {
  DEFAULT_LEASE_MS,
  checkActor,
  checkLease,
  checkMetadata,
  checkMetadataKey,
  checkType,
  isBlockingType,
  normalizeCreate,
  type NormalizedCreate,
} from './validate.js';

export interface SqlStoreOptions extends SqlDbOptions {
  /** `postgres://...` or `mysql://...`. */
  url?: string;
  /** A pool the caller opened and migrated (and closes): the city shares one. Else `url`. */
  db?: SqlDb;
  /** Write batches in flight at once, each on a connection of the pool (default 2). */
  writeLanes?: number;
  prefix?: string;
  clock?: Clock;
  defaultLeaseMs?: number;
}

/**
 * Write batches in flight at once. Batches commit one after another anyway
 * (the event counter), so more lanes overlap one batch's statements with
 * another's commit; past three, mostly lock waits and CPU (500 claimers on
 * PostgreSQL, 2 cores: 2 lanes 2,240/s, 3 lanes 2,610/s, 6 lanes 2,220/s).
 */
const DEFAULT_LANES = 3;
/** Times a write of its own runs before a lost race is reported. */
const MAX_TRIES = 12;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SqlStore implements Store {
  readonly backend: string;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly defaultLeaseMs: number;
  /** Beads in the table, for the id length (approximate across processes: ids are unique by key). */
  private total = 0;
  /** When old request answers were last pruned (at most hourly, inside a write). */
  private readonly prune = { last: 0 };
  private disposed = false;
  private ownsDb = true;
  private readonly commits: SqlGroupCommit;

  private constructor(
    private readonly db: SqlDb,
    options: SqlStoreOptions,
  ) {
    this.backend = db.dialect;
    this.prefix = options.prefix ?? 'gc';
    this.clock = options.clock ?? systemClock;
    this.defaultLeaseMs = options.defaultLeaseMs ?? DEFAULT_LEASE_MS;
    this.commits = new SqlGroupCommit(db, options.writeLanes ?? DEFAULT_LANES);
  }

  /** Connect, bring the schema up to date (once across processes), and open. */
  static async open(options: SqlStoreOptions): Promise<SqlStore> {
    if (options.db) {
      const store = new SqlStore(options.db, options);
      store.ownsDb = false;
      store.total = await countBeads(options.db, {});
      return store;
    }
    if (!options.url) throw new Error('SqlStore needs db or url');
    const db = await openSqlDb(options.url, options);
    try {
      await migrate(db);
      const store = new SqlStore(db, options);
      store.total = await countBeads(db, {});
      return store;
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  /** Writes that ran merged with others in a batch (claim-nexts sharing a query). */
  get mergedWrites(): number {
    return this.commits.mergedWrites;
  }

  schemaVersion(): Promise<number> {
    return schemaVersion(this.db);
  }

  private live(): void {
    if (this.disposed) throw new ConflictError('store is disposed');
  }

  private async read<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    this.live();
    return fn(this.db);
  }

  /**
   * One write with its record. A write that records events goes into a
   * batch's transaction (sql-commit.ts): those commit one after another (the
   * event counter), so they are grouped. Any other write runs in its own
   * transaction, in parallel with the rest. Either way it runs again after
   * a lost race.
   */
  private async write<T>(
    fn: (tx: SqlConn) => Promise<T>,
    rec?: WriteRecord<T>,
    /** Its statements filter by values whose selectivity varies: plan them for the values. */
    customPlans = false,
  ): Promise<T> {
    this.live();
    if (rec?.events) {
      return this.commits.write(
        (tx, events) => recorded(tx, fn, rec, this.clock.now(), this.prune, events),
        customPlans,
      );
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction((tx) =>
          rec ? recorded(tx, fn, rec, this.clock.now(), this.prune) : fn(tx),
        );
      } catch (e) {
        if (!retryable(e) || attempt >= MAX_TRIES) throw e;
        await sleep(Math.min(200, 2 ** attempt) * (0.5 + Math.random()));
      }
    }
  }

  // ---- Store ----

  create(input: CreateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    let n: NormalizedCreate;
    try {
      this.live();
      n = normalizeCreate(input);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const run = async (tx: SqlConn) => {
      const now = this.clock.now();
      if (!n.parent && !n.needs.length) {
        // Nothing to link or lock: insert, and build the bead from what was written.
        const bead = await insertPlainBead(tx, n, now, (extra) => this.ids.next(extra));
        this.ids.made();
        return bead;
      }
      return createLinked(tx, n, now, this.ids);
    };
    if (!rec?.events || n.parent || n.needs.length) return this.write(run, rec);
    // Recorded plain creates in one batch are inserted as one (createAll).
    const item: CreateItem = {
      n,
      request: rec.request,
      events: (b) => rec.events?.(b) ?? [],
      finish: (tx, events, bead) =>
        recorded(tx, () => Promise.resolve(bead), rec, this.clock.now(), this.prune, events),
    };
    return this.commits.write(
      (tx, events) => recorded(tx, run, rec, this.clock.now(), this.prune, events),
      false,
      {
        key: 'create',
        item,
        runAll: (tx, events, items) =>
          createAll(tx, items as CreateItem[], this.clock.now(), this.ids, events),
        ...(this.db.dialect === 'postgres' && !rec.request
          ? {
              alone: (db: SqlConn, items: unknown[]) => this.createAlone(db, items as CreateItem[]),
            }
          : {}),
      },
    );
  }

  /** A batch of recorded plain creates in one statement of its own (see createAlone). */
  private async createAlone(db: SqlConn, items: readonly CreateItem[]): Promise<unknown[]> {
    const now = this.clock.now();
    const beads = await createAlone(
      db,
      items.map((c) => ({ n: c.n, events: (b) => eventRowsOf(c.events(b), now) })),
      now,
      (extra) => this.ids.next(extra),
    );
    return beads.map((b) => {
      if (!b) return LOST;
      this.ids.made();
      return b;
    });
  }

  createMany(inputs: readonly CreateBeadInput[], rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write((tx) => createBatch(tx, inputs, this.clock.now(), this.ids), rec);
  }

  /** New bead ids: the count so far makes them short while the city is small. */
  private readonly ids: IdSource = {
    next: (extra) => newBeadId(this.prefix, this.total, extra),
    made: () => {
      this.total++;
    },
  };

  get(id: string): Promise<Bead> {
    return this.read((c) => one(c, id));
  }

  getMany(ids: readonly string[]): Promise<Bead[]> {
    return this.read(async (c) => {
      const byId = new Map<string, Bead>();
      for (let i = 0; i < ids.length; i += 1000) {
        const chunk = ids.slice(i, i + 1000);
        if (!chunk.length) continue;
        const rows = await rowsWhere(c, `b.id IN (${marks(chunk.length)})`, chunk);
        for (const b of await hydrate(c, rows)) byId.set(b.id, b);
      }
      return ids.flatMap((id) => {
        const b = byId.get(id);
        return b ? [b] : [];
      });
    });
  }

  update(id: string, patch: UpdateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write((tx) => updateIn(tx, id, patch, this.clock.now()), rec);
  }

  close(
    id: string,
    options: CloseOptions = {},
    rec?: WriteRecord<CloseResult>,
  ): Promise<CloseResult> {
    return this.write(async (tx) => {
      const r = await rowById(tx, id, true);
      if (r.status === 'closed') return { bead: await one(tx, id), changed: false };
      await applyStatus(tx, r, 'closed', this.clock.now(), options.reason ?? '');
      return { bead: await one(tx, id), changed: true };
    }, rec);
  }

  delete(id: string, rec?: WriteRecord<void>): Promise<void> {
    return this.write(async (tx) => {
      await deleteIn(tx, id);
      this.total--;
    }, rec);
  }

  list(query: ListQuery): Promise<Page<Bead>> {
    return this.read((c) => listPage(c, query));
  }

  ready(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.read((c) => readyPage(c, query));
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.list({ ...query, parent: parentId });
  }

  count(filter: BeadFilter = {}): Promise<number> {
    return this.read((c) => countBeads(c, filter));
  }

  countReady(query: ReadyQuery = {}): Promise<number> {
    return this.read((c) => countReady(c, query));
  }

  counts(): Promise<BeadCounts> {
    return this.read((c) => beadCounts(c));
  }

  workload(): Promise<Workload> {
    return this.read((c) => workloadOf(c));
  }

  setMetadata(id: string, key: string, value: string, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(async (tx) => {
      checkMetadataKey(key);
      const v = checkMetadata({ [key]: value })[key] ?? '';
      const r = await rowById(tx, id, true);
      await setMetadata(tx, r.seq, [[key, v]]);
      await tx.run('UPDATE beads SET updated_at = ? WHERE seq = ?', [this.clock.now(), r.seq]);
      return one(tx, id);
    }, rec);
  }

  addDependency(
    issueId: string,
    dependsOnId: string,
    type = 'blocks',
    rec?: WriteRecord<void>,
  ): Promise<void> {
    return this.write(async (tx) => {
      checkType(type);
      if (issueId === dependsOnId) {
        throw new ValidationError('a bead cannot depend on itself', { where: 'dependency' });
      }
      await lockIds(tx, [issueId, dependsOnId]);
      await rowById(tx, issueId);
      await rowById(tx, dependsOnId);
      const [existing] = await tx.query<{ type: string }>(
        'SELECT type FROM deps WHERE issue_id = ? AND depends_on_id = ?',
        [issueId, dependsOnId],
      );
      if (existing?.type === type) return;
      if (isBlockingType(type)) await checkNoCycle(tx, issueId, dependsOnId);
      await link(tx, issueId, dependsOnId, type, this.clock.now());
      await refreshBlocked(tx, [issueId]);
    }, rec);
  }

  removeDependency(issueId: string, dependsOnId: string, rec?: WriteRecord<void>): Promise<void> {
    return this.write(async (tx) => {
      await lockIds(tx, [issueId, dependsOnId]);
      const r = await rowById(tx, issueId);
      const [existing] = await tx.query<{ type: string }>(
        'SELECT type FROM deps WHERE issue_id = ? AND depends_on_id = ?',
        [issueId, dependsOnId],
      );
      if (!existing) return;
      await tx.run('DELETE FROM deps WHERE issue_id = ? AND depends_on_id = ?', [
        issueId,
        dependsOnId,
      ]);
      if (existing.type === PARENT_CHILD && r.parent === dependsOnId) {
        await tx.run("UPDATE beads SET parent = '' WHERE id = ?", [issueId]);
      }
      await refreshBlocked(tx, [issueId]);
    }, rec);
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.read(async (c) => {
      await rowById(c, id);
      const col = direction === 'down' ? 'issue_id' : 'depends_on_id';
      return c.query<Dependency>(
        `SELECT issue_id, depends_on_id, type FROM deps WHERE ${col} = ?
         ORDER BY created_at, issue_id, depends_on_id`,
        [id],
      );
    });
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
    return this.write((tx) => {
      this.checkClaimant(actor);
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      return claimById(tx, id, actor, lease, this.clock.now());
    }, rec);
  }

  claimNextReady(
    actor: string,
    query: ReadyQuery & ClaimOptions = {},
    rec?: WriteRecord<Bead | null>,
  ): Promise<Bead | null> {
    const claim = (tx: SqlConn) => {
      this.checkClaimant(actor);
      const lease = checkLease(query.leaseMs, this.defaultLeaseMs);
      return claimNext(tx, query, actor, lease, this.clock.now());
    };
    // Recorded claim-nexts with the same query in one batch run as one (claimAll).
    if (!rec?.events || query.assignee !== undefined) {
      return this.write(claim, rec, valueFiltered(query));
    }
    let lease: number;
    try {
      this.live();
      this.checkClaimant(actor);
      lease = checkLease(query.leaseMs, this.defaultLeaseMs);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const item: ClaimNextItem = {
      actor,
      lease,
      request: rec.request,
      finish: (tx, events, bead) =>
        recorded(tx, () => Promise.resolve(bead), rec, this.clock.now(), this.prune, events),
    };
    const { leaseMs: _lease, ...ready } = query;
    return this.commits.write(
      (tx, events) => recorded(tx, claim, rec, this.clock.now(), this.prune, events),
      valueFiltered(query),
      {
        key: `claim-next ${JSON.stringify(ready)}`,
        item,
        runAll: (tx, events, items) =>
          claimAll(tx, ready, items as ClaimNextItem[], this.clock.now(), events),
      },
    );
  }

  renewClaim(id: string, actor: string, options: ClaimOptions = {}): Promise<Bead> {
    return this.write((tx) =>
      renewIn(tx, id, actor, checkLease(options.leaseMs, this.defaultLeaseMs), this.clock.now()),
    );
  }

  unclaim(id: string, options: UnclaimOptions = {}, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write((tx) => unclaimIn(tx, id, options, this.clock.now()), rec);
  }

  releaseClaims(actor: string, rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(
      (tx) =>
        releaseWhere(tx, "b.status = 'in_progress' AND b.assignee = ?", [actor], this.clock.now()),
      rec,
    );
  }

  releaseExpiredClaims(now = this.clock.now(), rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(
      (tx) =>
        releaseWhere(
          tx,
          "b.status = 'in_progress' AND b.lease_expires_at <= ?",
          [now],
          this.clock.now(),
        ),
      rec,
    );
  }

  /**
   * Events left in the outbox by a gc before schema v3 (which wrote them
   * there for a separate log): the city's publisher moves them to the log
   * once. Writes since v3 append to the log in their own transaction.
   */
  readonly eventsInline = true;

  outbox(limit = 1000, afterId = 0): Promise<OutboxRow[]> {
    return this.read(async (c) =>
      (
        await c.query<{ id: number; event: string }>(
          `SELECT id, event FROM outbox WHERE id > ? ORDER BY id ${limitSql(Math.trunc(limit))}`,
          [afterId],
        )
      ).map((r) => ({ id: Number(r.id), event: JSON.parse(r.event) as OutboxRow['event'] })),
    );
  }

  ackOutbox(throughId: number): Promise<void> {
    return this.write(async (tx) => {
      await tx.run('DELETE FROM outbox WHERE id <= ?', [throughId]);
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.commits.drain();
    if (this.ownsDb) await this.db.close();
  }
}
