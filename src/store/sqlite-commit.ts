/**
 * Group commit for the SQLite store: concurrent async writes queue up and run
 * in one transaction, each in its own savepoint (a failing write rolls back
 * only itself), with one fsync per batch under `synchronous=FULL`. A write
 * resolves only after its batch committed. Reads run directly.
 */
import type Database from 'better-sqlite3';
import { ConflictError, ValidationError, fault } from '../core/index.js';
import type { Statements } from './sqlite-rows.js';
import { REQUEST_TTL_MS, type WriteRecord } from './types.js';

interface PendingWrite {
  fn: () => unknown;
  rec: WriteRecord<unknown> | undefined;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * Largest batch in one transaction. A batch runs on the event loop, so this
 * bounds how long the server stops answering while one commits: at 2,000 a
 * burst of mail held it 100-150 ms at a time (the API's p99 with it);
 * at 128, under 70 ms (see docs/database.md, bench/api.ts).
 */
const MAX_BATCH = 128;

export class GroupCommit {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private disposed = false;

  private lastPrune = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly sql: Statements,
    /** Called after a batch failed as a whole (and rolled back): resync cached state. */
    private readonly onBatchRolledBack: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  write<T>(fn: () => T, rec?: WriteRecord<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new ConflictError('store is disposed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        fn,
        rec: rec as WriteRecord<unknown> | undefined,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  read<T>(fn: () => T): Promise<T> {
    if (this.disposed) return Promise.reject(new ConflictError('store is disposed'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Let queued writes finish, then refuse new ones. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushScheduled) {
      await new Promise((r) => setImmediate(r));
    }
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Run `fn` with its record, inside the caller's savepoint. */
  private recorded(fn: () => unknown, rec: WriteRecord<unknown>): unknown {
    const now = this.now();
    const req = rec.request;
    if (req) {
      const kept = this.sql
        .stmt('SELECT fp, result FROM requests WHERE scope = ? AND key = ? AND n = ?')
        .get(req.scope, req.key, req.n) as { fp: string; result: string } | undefined;
      if (kept) {
        if (kept.fp !== req.fp) {
          throw new ValidationError(
            'was already used for a different request (method, path or body differ)',
            { where: 'Idempotency-Key' },
          );
        }
        return JSON.parse(kept.result) as unknown;
      }
    }
    const value = fn();
    const events = rec.events?.(value) ?? [];
    if (events.length) {
      const ts = new Date(now).toISOString();
      const add = this.sql.stmt('INSERT INTO outbox (event) VALUES (?)');
      for (const e of events) add.run(JSON.stringify({ ...e, ts: e.ts ?? ts }));
    }
    if (req && (rec.keep?.(value) ?? true)) {
      this.sql
        .stmt('INSERT INTO requests (scope, key, n, fp, result, at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(req.scope, req.key, req.n, req.fp, JSON.stringify(value ?? null), now);
      if (now - this.lastPrune > 3600_000) {
        this.lastPrune = now;
        this.sql.stmt('DELETE FROM requests WHERE at < ?').run(now - REQUEST_TTL_MS);
      }
    }
    return value;
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
      this.sql.stmt('BEGIN IMMEDIATE').run();
      const savepoint = this.sql.stmt('SAVEPOINT op');
      const release = this.sql.stmt('RELEASE op');
      const rollbackTo = this.sql.stmt('ROLLBACK TO op');
      for (const op of batch) {
        savepoint.run();
        try {
          const value = op.rec ? this.recorded(op.fn, op.rec) : op.fn();
          release.run();
          results.push({ ok: true, value });
        } catch (err) {
          rollbackTo.run();
          release.run();
          results.push({ ok: false, value: err });
        }
      }
      fault('store.commit');
      this.sql.stmt('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.onBatchRolledBack();
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
}
