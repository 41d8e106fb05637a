/**
 * Group commit for the SQLite store: concurrent async writes queue up and run
 * in one transaction, each in its own savepoint (a failing write rolls back
 * only itself), with one fsync per batch under `synchronous=FULL`. A write
 * resolves only after its batch committed. Reads run directly.
 */
import type Database from 'better-sqlite3';
import { ConflictError } from '../core/index.js';
import type { Statements } from './sqlite-rows.js';

interface PendingWrite {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** Largest batch in one transaction: bounds the latency of the first write in it. */
const MAX_BATCH = 2000;

export class GroupCommit {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private disposed = false;

  constructor(
    private readonly db: Database.Database,
    private readonly sql: Statements,
    /** Called after a batch failed as a whole (and rolled back): resync cached state. */
    private readonly onBatchRolledBack: () => void,
  ) {}

  write<T>(fn: () => T): Promise<T> {
    if (this.disposed) return Promise.reject(new ConflictError('store is disposed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
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
          const value = op.fn();
          release.run();
          results.push({ ok: true, value });
        } catch (err) {
          rollbackTo.run();
          release.run();
          results.push({ ok: false, value: err });
        }
      }
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
