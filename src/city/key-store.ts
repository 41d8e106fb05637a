/**
 * Where API keys are kept: `.gc/auth.db` with the server secret in
 * `.gc/server.secret` (0600), or, with [database] url, the city's database
 * (schema v6: `api_keys`, and the secret in `gc_secrets`) so every server of
 * the city verifies the same keys. The key ring (keyring.ts) holds the live
 * keys in memory; this is only their durable copy.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SqlDb } from '../db/index.js';

/** `metrics`: may only scrape GET /metrics (a Prometheus bearer token). */
export type PrincipalKind = 'admin' | 'operator' | 'agent' | 'metrics';

export interface KeyRow {
  seq: number;
  key_id: string;
  kind: PrincipalKind;
  name: string;
  owner: string;
  max_sessions: number;
  webhook_url: string;
  hmac: Buffer;
  created_at: string;
  revoked_at: string | null;
}

export type NewKeyRow = Omit<KeyRow, 'seq' | 'revoked_at'>;

export interface KeyQuery {
  kind?: PrincipalKind | undefined;
  owner?: string | undefined;
  includeRevoked?: boolean | undefined;
  after: number;
  limit: number;
}

export interface KeyStore {
  readonly backend: string;
  /** The server secret the key HMACs are made with: made once, then always the same. */
  secret(): Promise<Buffer>;
  /** Every unrevoked key. */
  live(): Promise<KeyRow[]>;
  /**
   * Record new keys and revocations in one transaction (all or nothing);
   * resolves with the new keys' seqs, in order. Revoking a revoked key keeps
   * its first revocation time.
   */
  commit(
    creates: readonly NewKeyRow[],
    revokes: readonly [keyId: string, at: string][],
  ): Promise<number[]>;
  get(keyId: string): Promise<KeyRow | undefined>;
  /** Keys in seq order after `after`, at most `limit`. */
  list(q: KeyQuery): Promise<KeyRow[]>;
  close(): Promise<void>;
}

function where(q: KeyQuery): { sql: string; args: unknown[] } {
  const w = ['seq > ?'];
  const args: unknown[] = [q.after];
  if (q.kind) {
    w.push('kind = ?');
    args.push(q.kind);
  }
  if (q.owner !== undefined) {
    w.push('owner = ?');
    args.push(q.owner);
  }
  if (!q.includeRevoked) w.push('revoked_at IS NULL');
  return { sql: w.join(' AND '), args };
}

const settled = <T>(fn: () => T): Promise<T> => {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
};

export class SqliteKeyStore implements KeyStore {
  readonly backend = 'sqlite';
  private readonly db: Database.Database;

  constructor(private readonly gcDir: string) {
    mkdirSync(gcDir, { recursive: true });
    this.db = new Database(path.join(gcDir, 'auth.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    const table = (name: string) => `CREATE TABLE ${name} (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      key_id TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('admin','operator','agent','metrics')),
      name TEXT NOT NULL,
      owner TEXT NOT NULL DEFAULT '',
      max_sessions INTEGER NOT NULL DEFAULT 0,
      webhook_url TEXT NOT NULL DEFAULT '',
      hmac BLOB NOT NULL,
      created_at TEXT NOT NULL,
      revoked_at TEXT
    )`;
    const old = this.db
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'keys'")
      .get() as { sql: string } | undefined;
    if (!old) this.db.exec(table('keys'));
    else if (!old.sql.includes("'metrics'")) {
      // A table from before metrics keys: its CHECK refuses them. SQLite
      // cannot change a CHECK in place, so the table is copied, in one transaction.
      this.db.transaction(() => {
        this.db.exec(table('keys_new'));
        this.db.exec('INSERT INTO keys_new SELECT * FROM keys');
        this.db.exec('DROP TABLE keys');
        this.db.exec('ALTER TABLE keys_new RENAME TO keys');
      })();
    }
    this.db.exec(
      'CREATE INDEX IF NOT EXISTS keys_by_name ON keys(kind, name) WHERE revoked_at IS NULL',
    );
  }

  secret(): Promise<Buffer> {
    return settled(() => {
      const file = path.join(this.gcDir, 'server.secret');
      if (!existsSync(file)) {
        writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
      }
      return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    });
  }

  live(): Promise<KeyRow[]> {
    return settled(
      () =>
        this.db
          .prepare('SELECT * FROM keys WHERE revoked_at IS NULL ORDER BY seq')
          .all() as KeyRow[],
    );
  }

  commit(creates: readonly NewKeyRow[], revokes: readonly [string, string][]): Promise<number[]> {
    return settled(() =>
      this.db.transaction(() => {
        const insert = this.db.prepare(
          `INSERT INTO keys (key_id, kind, name, owner, max_sessions, webhook_url, hmac, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        const seqs = creates.map((k) =>
          Number(
            insert.run(
              k.key_id,
              k.kind,
              k.name,
              k.owner,
              k.max_sessions,
              k.webhook_url,
              k.hmac,
              k.created_at,
            ).lastInsertRowid,
          ),
        );
        const revoke = this.db.prepare(
          'UPDATE keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL',
        );
        for (const [id, at] of revokes) revoke.run(at, id);
        return seqs;
      })(),
    );
  }

  get(keyId: string): Promise<KeyRow | undefined> {
    return settled(
      () => this.db.prepare('SELECT * FROM keys WHERE key_id = ?').get(keyId) as KeyRow | undefined,
    );
  }

  list(q: KeyQuery): Promise<KeyRow[]> {
    const { sql, args } = where(q);
    return settled(
      () =>
        this.db
          .prepare(`SELECT * FROM keys WHERE ${sql} ORDER BY seq LIMIT ?`)
          .all(...args, q.limit) as KeyRow[],
    );
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}

interface SqlKeyRow extends Omit<KeyRow, 'hmac'> {
  hmac: string;
}

const fromSql = (r: SqlKeyRow): KeyRow => ({
  ...r,
  seq: Number(r.seq),
  max_sessions: Number(r.max_sessions),
  hmac: Buffer.from(r.hmac, 'hex'),
});

const COLS =
  'seq, key_id, kind, name, owner, max_sessions, webhook_url, hmac, created_at, revoked_at';

export class SqlKeyStore implements KeyStore {
  readonly backend: string;

  constructor(
    private readonly db: SqlDb,
    /** Close the pool with the store (a pool opened only for the keys). */
    private readonly ownsDb = false,
  ) {
    this.backend = db.dialect;
  }

  async secret(): Promise<Buffer> {
    const made = randomBytes(32).toString('base64');
    await this.db.run(
      this.db.dialect === 'postgres'
        ? "INSERT INTO gc_secrets (name, value) VALUES ('server', ?) ON CONFLICT (name) DO NOTHING"
        : "INSERT IGNORE INTO gc_secrets (name, value) VALUES ('server', ?)",
      [made],
    );
    const [r] = await this.db.query<{ value: string }>(
      "SELECT value FROM gc_secrets WHERE name = 'server'",
    );
    if (!r) throw new Error('the server secret is missing from gc_secrets');
    return Buffer.from(r.value, 'base64');
  }

  async live(): Promise<KeyRow[]> {
    const rows = await this.db.query<SqlKeyRow>(
      `SELECT ${COLS} FROM api_keys WHERE revoked_at IS NULL ORDER BY seq`,
    );
    return rows.map(fromSql);
  }

  commit(creates: readonly NewKeyRow[], revokes: readonly [string, string][]): Promise<number[]> {
    return this.db.transaction(async (tx) => {
      const seqs: number[] = [];
      for (const k of creates) {
        await tx.run(
          `INSERT INTO api_keys (key_id, kind, name, owner, max_sessions, webhook_url, hmac, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            k.key_id,
            k.kind,
            k.name,
            k.owner,
            k.max_sessions,
            k.webhook_url,
            k.hmac.toString('hex'),
            k.created_at,
          ],
        );
        const [r] = await tx.query<{ seq: number }>('SELECT seq FROM api_keys WHERE key_id = ?', [
          k.key_id,
        ]);
        seqs.push(Number(r?.seq));
      }
      for (const [id, at] of revokes) {
        await tx.run('UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL', [
          at,
          id,
        ]);
      }
      return seqs;
    });
  }

  async get(keyId: string): Promise<KeyRow | undefined> {
    const [r] = await this.db.query<SqlKeyRow>(`SELECT ${COLS} FROM api_keys WHERE key_id = ?`, [
      keyId,
    ]);
    return r ? fromSql(r) : undefined;
  }

  async list(q: KeyQuery): Promise<KeyRow[]> {
    const { sql, args } = where(q);
    const rows = await this.db.query<SqlKeyRow>(
      `SELECT ${COLS} FROM api_keys WHERE ${sql} ORDER BY seq LIMIT ${Math.max(1, Math.trunc(q.limit))}`,
      args,
    );
    return rows.map(fromSql);
  }

  close(): Promise<void> {
    return this.ownsDb ? this.db.close() : Promise.resolve();
  }
}
