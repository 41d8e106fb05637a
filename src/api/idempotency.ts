/**
 * Idempotency keys for writes: a client that sends `Idempotency-Key` on a
 * POST/PATCH/DELETE and retries it (after a timeout, a dropped connection,
 * a server restart) gets the first answer again instead of a second write.
 *
 * Records live in SQLite (`.gc/api.db`), or in the city's database with
 * [database] url (idempotency-sql.ts), so they survive a server restart and
 * are shared by every server of the city; scoped by API key, they expire
 * after a day. A record is written `pending` before the handler runs: a
 * concurrent duplicate gets 409 rather than a second execution. Answers
 * with status >= 500 are not kept (the write may not have happened;
 * retrying is the point).
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fault } from '../core/index.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** A pending record older than this is from a handler that died with its server. */
export const PENDING_STALE_MS = 120_000;

/** The idempotency records seam (one conformance suite: idempotency-conformance.ts). */
export interface IdempotencyRecords {
  /** Claim `key` for a request with this fingerprint, or say what to answer instead. */
  begin(scope: string, key: string, fp: string): Promise<Begin>;
  /** Keep the answer (a status >= 500 is forgotten instead, so a retry runs again). */
  finish(scope: string, key: string, status: number, body: string): Promise<void>;
  /** Forget a pending claim (the request got no answer worth keeping). */
  abandon(scope: string, key: string): Promise<void>;
  /** Drop records past the TTL; resolves with how many. */
  prune(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The keys this process is claiming or answering, counted. A pending
 * record this process holds but nobody here answers is dead: its handler
 * ended without its answer being written (the database was away, the disk
 * full), and the retry takes it over at once rather than waiting out
 * PENDING_STALE_MS. A handler leaves when it ends, whether or not writing
 * its answer worked.
 */
export class Answering {
  private readonly counts = new Map<string, number>();
  private static id(scope: string, key: string): string {
    return `${scope}\0${key}`;
  }
  enter(scope: string, key: string): void {
    const id = Answering.id(scope, key);
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }
  leave(scope: string, key: string): void {
    const id = Answering.id(scope, key);
    const n = (this.counts.get(id) ?? 0) - 1;
    if (n > 0) this.counts.set(id, n);
    else this.counts.delete(id);
  }
  count(scope: string, key: string): number {
    return this.counts.get(Answering.id(scope, key)) ?? 0;
  }
}

export type Begin =
  | { state: 'new' }
  | { state: 'replay'; status: number; body: string }
  | { state: 'in_progress' }
  | { state: 'mismatch' };

export function fingerprint(parts: readonly (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\0');
  }
  return h.digest('hex');
}

/** The records in `.gc/api.db`: one server per city, so pending records at open are dead. */
export class IdempotencyStore implements IdempotencyRecords {
  private readonly db: Database.Database;
  /** The api.db handle, shared with the run registry. */
  get database(): Database.Database {
    return this.db;
  }
  private readonly stmts: {
    get: Database.Statement<
      [string, string],
      { fp: string; status: number; body: string | null; at: number }
    >;
    insert: Database.Statement<[string, string, string, number]>;
    retake: Database.Statement<[string, number, string, string]>;
    finish: Database.Statement<[number, string, number, string, string]>;
    abandon: Database.Statement<[string, string]>;
    prune: Database.Statement<[number]>;
  };
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly answering = new Answering();

  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS idempotency (
      scope TEXT NOT NULL, key TEXT NOT NULL, fp TEXT NOT NULL,
      status INTEGER NOT NULL DEFAULT 0, body TEXT, at INTEGER NOT NULL,
      PRIMARY KEY (scope, key)) WITHOUT ROWID`);
    this.db.exec('CREATE INDEX IF NOT EXISTS idempotency_at ON idempotency(at)');
    this.stmts = {
      get: this.db.prepare(
        'SELECT fp, status, body, at FROM idempotency WHERE scope = ? AND key = ?',
      ),
      insert: this.db.prepare(
        'INSERT INTO idempotency (scope, key, fp, status, body, at) VALUES (?, ?, ?, 0, NULL, ?)',
      ),
      retake: this.db.prepare(
        'UPDATE idempotency SET fp = ?, status = 0, body = NULL, at = ? WHERE scope = ? AND key = ?',
      ),
      finish: this.db.prepare(
        'UPDATE idempotency SET status = ?, body = ?, at = ? WHERE scope = ? AND key = ?',
      ),
      abandon: this.db.prepare(
        'DELETE FROM idempotency WHERE scope = ? AND key = ? AND status = 0',
      ),
      prune: this.db.prepare('DELETE FROM idempotency WHERE at < ?'),
    };
    // Only one server holds a city: a pending record at open is from a
    // handler that died with its server. Its retry may run now (the writes
    // it made kept their results, so they are not made twice).
    this.db.prepare('DELETE FROM idempotency WHERE status = 0').run();
    this.pruneNow();
    this.pruneTimer = setInterval(() => {
      this.prune().catch(() => undefined);
    }, 3600_000);
    this.pruneTimer.unref();
  }

  static open(gcDir: string): IdempotencyStore {
    return new IdempotencyStore(path.join(gcDir, 'api.db'));
  }

  begin(scope: string, key: string, fp: string): Promise<Begin> {
    try {
      const b = this.beginNow(scope, key, fp);
      if (b.state === 'new') this.answering.enter(scope, key);
      return Promise.resolve(b);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private beginNow(scope: string, key: string, fp: string): Begin {
    return this.db
      .transaction((): Begin => {
        const now = this.now();
        const row = this.stmts.get.get(scope, key);
        if (!row || row.at < now - IDEMPOTENCY_TTL_MS) {
          if (row) this.stmts.retake.run(fp, now, scope, key);
          else this.stmts.insert.run(scope, key, fp, now);
          return { state: 'new' };
        }
        if (row.fp !== fp) return { state: 'mismatch' };
        if (row.status === 0) {
          // One server per city: a claim nobody here answers is dead.
          if (row.at < now - PENDING_STALE_MS || this.answering.count(scope, key) === 0) {
            this.stmts.retake.run(fp, now, scope, key);
            return { state: 'new' };
          }
          return { state: 'in_progress' };
        }
        return { state: 'replay', status: row.status, body: row.body ?? '' };
      })
      .immediate();
  }

  finish(scope: string, key: string, status: number, body: string): Promise<void> {
    this.answering.leave(scope, key);
    return settled(() => {
      fault('idempotency.write');
      if (status >= 500) this.stmts.abandon.run(scope, key);
      else this.stmts.finish.run(status, body, this.now(), scope, key);
    });
  }

  abandon(scope: string, key: string): Promise<void> {
    this.answering.leave(scope, key);
    return settled(() => {
      fault('idempotency.write');
      this.stmts.abandon.run(scope, key);
    });
  }

  prune(): Promise<number> {
    return settled(() => this.pruneNow());
  }

  private pruneNow(): number {
    return this.stmts.prune.run(this.now() - IDEMPOTENCY_TTL_MS).changes;
  }

  close(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}

function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}
