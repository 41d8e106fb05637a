/**
 * Where the merge queue keeps its rows: `.gc/mq.db` (SQLite, WAL, so the
 * CLI and the city server can both open it) or, with [database] url, the
 * city's database (schema v8), so every server of the city sees one queue.
 * Both are reached through the same small async connection, so the queue's
 * SQL is written once (queue.ts); only the rig lock differs per dialect.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { retryable, type SqlDb } from '../db/index.js';

export type MqDialect = 'sqlite' | 'postgres' | 'mysql';

/** Statements inside one transaction. */
export interface MqTx {
  readonly dialect: MqDialect;
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** A statement's affected (matched) row count. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface MqConn extends MqTx {
  /** `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: MqTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS mr (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  rig TEXT NOT NULL,
  branch TEXT NOT NULL,
  head TEXT NOT NULL,
  bead TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL DEFAULT '',
  priority INTEGER NOT NULL DEFAULT 2,
  state TEXT NOT NULL,
  submitted_at INTEGER NOT NULL,
  retries INTEGER NOT NULL DEFAULT 0,
  base TEXT NOT NULL DEFAULT '',
  tested TEXT NOT NULL DEFAULT '',
  merged_sha TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  conflict_bead TEXT NOT NULL DEFAULT '',
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mr_rig_state ON mr(rig, state, seq);
CREATE INDEX IF NOT EXISTS mr_branch ON mr(rig, branch, head);
CREATE INDEX IF NOT EXISTS mr_bead ON mr(bead) WHERE bead != '';
CREATE TABLE IF NOT EXISTS mr_attempts (
  mr_id TEXT NOT NULL,
  rig TEXT NOT NULL,
  outcome TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mr_attempts_rig ON mr_attempts(rig, at);
CREATE TABLE IF NOT EXISTS mq_builds (
  rig TEXT NOT NULL,
  size INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  depth INTEGER NOT NULL DEFAULT 0,
  gate_runs INTEGER NOT NULL DEFAULT 0,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mq_builds_rig ON mq_builds(rig, at);
`;

/**
 * A SQLite file (or ':memory:') behind the async connection. better-sqlite3
 * is synchronous and has one connection, so operations take turns: a
 * transaction's statements never interleave with another caller's.
 */
export function sqliteMqConn(file: string): MqConn {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 10000');
  db.exec(SQLITE_SCHEMA);
  const prepared = new Map<string, Database.Statement>();
  const stmt = (sql: string) => {
    let s = prepared.get(sql);
    if (!s) prepared.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const tx: MqTx = {
    dialect: 'sqlite',
    query: <T>(sql: string, params: readonly unknown[] = []) =>
      Promise.resolve(stmt(sql).all(...params) as T[]),
    run: (sql: string, params: readonly unknown[] = []) =>
      Promise.resolve(stmt(sql).run(...params).changes),
  };
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    const result = turn.then(fn);
    turn = result.catch(() => undefined);
    return result;
  };
  return {
    ...tx,
    query: (sql, params) => inTurn(() => tx.query(sql, params)),
    run: (sql, params) => inTurn(() => tx.run(sql, params)),
    transaction: (fn) =>
      inTurn(async () => {
        // IMMEDIATE: the write lock up front, so another process's writer
        // waits (busy_timeout) instead of failing at our first write.
        stmt('BEGIN IMMEDIATE').run();
        try {
          const value = await fn(tx);
          stmt('COMMIT').run();
          return value;
        } catch (e) {
          if (db.inTransaction) stmt('ROLLBACK').run();
          throw e;
        }
      }),
    close: () =>
      inTurn(() => {
        db.close();
        return Promise.resolve();
      }),
  };
}

/**
 * The city's database behind the async connection. A transaction that
 * lost a race (deadlock, serialization failure: where row locks are no-ops,
 * as on Dolt, a conflicting commit fails) runs again, a few times.
 */
export function sqlMqConn(db: SqlDb): MqConn {
  return {
    dialect: db.dialect,
    query: (sql, params) => db.query(sql, params),
    run: (sql, params) => db.run(sql, params),
    async transaction(fn) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await db.transaction((c) => fn(c));
        } catch (e) {
          if (attempt >= 8 || !retryable(e)) throw e;
          await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
        }
      }
    },
    // The pool belongs to the city state: it closes it.
    close: () => Promise.resolve(),
  };
}
