/**
 * Where runs are recorded: `.gc/api.db` (SQLite) or, with [database] url,
 * the city's database (schema v5), so every server of the city knows them.
 * One seam, one conformance suite (run-records-conformance.ts).
 */
import type Database from 'better-sqlite3';
import type { SqlDb } from '../db/index.js';

export type RunState = 'running' | 'exited' | 'stopped' | 'failed';

export interface RunRow {
  seq: number;
  id: string;
  session: string;
  template: string;
  owner: string;
  owner_key: string;
  owner_kind: string;
  state: RunState;
  exit_code: number | null;
  error: string;
  created_at: string;
  ended_at: string | null;
}

export type NewRun = Pick<
  RunRow,
  'id' | 'session' | 'template' | 'owner' | 'owner_key' | 'owner_kind' | 'created_at'
>;

export interface RunRecords {
  /** Record a run as running; resolves with its row (seq assigned in start order). */
  insert(run: NewRun): Promise<RunRow>;
  /** Set a run's end (state, exit code, error, time). */
  end(
    seq: number,
    state: RunState,
    exitCode: number | null,
    error: string,
    at: string,
  ): Promise<void>;
  /** A run by id; undefined when there is none. */
  get(id: string): Promise<RunRow | undefined>;
  /** Runs in start order after `after` (a seq), at most `limit`, optionally one owner's. */
  list(after: number, limit: number, ownerKey?: string): Promise<RunRow[]>;
  /** Every run still running. */
  running(): Promise<RunRow[]>;
}

const num = (v: number | null): number | null => (v === null ? null : Number(v));
const normal = (r: RunRow): RunRow => ({ ...r, seq: Number(r.seq), exit_code: num(r.exit_code) });

export class SqliteRunRecords implements RunRecords {
  constructor(private readonly db: Database.Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS runs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, session TEXT NOT NULL,
      template TEXT NOT NULL, owner TEXT NOT NULL, owner_key TEXT NOT NULL, owner_kind TEXT NOT NULL,
      state TEXT NOT NULL, exit_code INTEGER, error TEXT NOT NULL DEFAULT '',
      created_at TEXT NOT NULL, ended_at TEXT)`);
    db.exec('CREATE INDEX IF NOT EXISTS runs_state ON runs(state)');
  }

  private now<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  insert(r: NewRun): Promise<RunRow> {
    return this.now(() => {
      const info = this.db
        .prepare(
          `INSERT INTO runs (id, session, template, owner, owner_key, owner_kind, state, created_at)
           VALUES (?, ?, ?, ?, ?, ?, 'running', ?)`,
        )
        .run(r.id, r.session, r.template, r.owner, r.owner_key, r.owner_kind, r.created_at);
      return this.db
        .prepare('SELECT * FROM runs WHERE seq = ?')
        .get(info.lastInsertRowid) as RunRow;
    });
  }

  end(seq: number, state: RunState, exitCode: number | null, error: string, at: string) {
    return this.now(() => {
      this.db
        .prepare('UPDATE runs SET state = ?, exit_code = ?, error = ?, ended_at = ? WHERE seq = ?')
        .run(state, exitCode, error, at, seq);
    });
  }

  get(id: string): Promise<RunRow | undefined> {
    return this.now(
      () => this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined,
    );
  }

  list(after: number, limit: number, ownerKey?: string): Promise<RunRow[]> {
    return this.now(
      () =>
        (ownerKey === undefined
          ? this.db
              .prepare('SELECT * FROM runs WHERE seq > ? ORDER BY seq LIMIT ?')
              .all(after, limit)
          : this.db
              .prepare('SELECT * FROM runs WHERE seq > ? AND owner_key = ? ORDER BY seq LIMIT ?')
              .all(after, ownerKey, limit)) as RunRow[],
    );
  }

  running(): Promise<RunRow[]> {
    return this.now(
      () =>
        this.db
          .prepare("SELECT * FROM runs WHERE state = 'running' ORDER BY seq")
          .all() as RunRow[],
    );
  }
}

const COLS =
  'seq, id, session, template, owner, owner_key, owner_kind, state, exit_code, error, created_at, ended_at';

export class SqlRunRecords implements RunRecords {
  constructor(private readonly db: SqlDb) {}

  async insert(r: NewRun): Promise<RunRow> {
    await this.db.run(
      `INSERT INTO runs (id, session, template, owner, owner_key, owner_kind, state, error, created_at)
       VALUES (?, ?, ?, ?, ?, ?, 'running', '', ?)`,
      [r.id, r.session, r.template, r.owner, r.owner_key, r.owner_kind, r.created_at],
    );
    const row = await this.get(r.id);
    if (!row) throw new Error(`run ${r.id} was not recorded`);
    return row;
  }

  async end(seq: number, state: RunState, exitCode: number | null, error: string, at: string) {
    await this.db.run(
      'UPDATE runs SET state = ?, exit_code = ?, error = ?, ended_at = ? WHERE seq = ?',
      [state, exitCode, error, at, seq],
    );
  }

  async get(id: string): Promise<RunRow | undefined> {
    const [r] = await this.db.query<RunRow>(`SELECT ${COLS} FROM runs WHERE id = ?`, [id]);
    return r ? normal(r) : undefined;
  }

  async list(after: number, limit: number, ownerKey?: string): Promise<RunRow[]> {
    const n = Math.max(1, Math.trunc(limit));
    const rows =
      ownerKey === undefined
        ? await this.db.query<RunRow>(
            `SELECT ${COLS} FROM runs WHERE seq > ? ORDER BY seq LIMIT ${n}`,
            [after],
          )
        : await this.db.query<RunRow>(
            `SELECT ${COLS} FROM runs WHERE seq > ? AND owner_key = ? ORDER BY seq LIMIT ${n}`,
            [after, ownerKey],
          );
    return rows.map(normal);
  }

  async running(): Promise<RunRow[]> {
    const rows = await this.db.query<RunRow>(
      `SELECT ${COLS} FROM runs WHERE state = 'running' ORDER BY seq`,
    );
    return rows.map(normal);
  }
}
