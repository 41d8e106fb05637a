/**
 * Running the schema's migrations (migrations.ts): each runs once, in
 * order, under a database-wide lock, so several processes starting
 * together migrate once.
 */
import { GcError } from '../core/index.js';
import type { SqlConn, SqlDb } from './db.js';
import { MY_TABLE, SQL_MIGRATIONS } from './migrations.js';

const LOCK_ID = 7_160_431; // pg_advisory_lock key for migrations
const LOCK_NAME = 'gc_schema_migrate';

async function applied(c: SqlConn): Promise<number> {
  const ddl =
    c.dialect === 'postgres'
      ? `CREATE TABLE IF NOT EXISTS gc_schema (
          version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)`
      : `CREATE TABLE IF NOT EXISTS gc_schema (
          version INT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL) ${MY_TABLE}`;
  await c.run(ddl);
  const [row] = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM gc_schema');
  return Number(row?.v ?? 0);
}

/** The schema version of the database (0: none yet). */
export function schemaVersion(db: SqlDb): Promise<number> {
  return db.withConnection(applied);
}

/**
 * Bring the schema up to date, once across processes: a session-level lock
 * (PostgreSQL advisory lock, MySQL GET_LOCK) held while the versions are
 * read and the missing ones applied. On PostgreSQL each migration is one
 * transaction; MySQL commits DDL as it goes, so a migration cut off there
 * is finished by hand (the error names it).
 */
export async function migrate(db: SqlDb): Promise<number> {
  const latest = SQL_MIGRATIONS[SQL_MIGRATIONS.length - 1]?.version ?? 0;
  return db.withConnection(async (c) => {
    if (c.dialect === 'postgres') await c.run('SELECT pg_advisory_lock(?)', [LOCK_ID]);
    else {
      const [got] = await c.query<{ ok: number }>('SELECT GET_LOCK(?, 120) AS ok', [LOCK_NAME]);
      if (Number(got?.ok) !== 1) {
        throw new GcError('unavailable', 'another process held the schema lock for 120 s');
      }
    }
    try {
      const current = await applied(c);
      if (current > latest) {
        throw new GcError(
          'unsupported',
          `the database has schema version ${current}, newer than this gc knows (${latest})`,
          { fix: 'upgrade gc to the version that wrote this city' },
        );
      }
      for (const m of SQL_MIGRATIONS) {
        if (m.version <= current) continue;
        const statements = m.statements[c.dialect];
        if (c.dialect === 'postgres') await c.run('BEGIN');
        try {
          for (const sql of statements) await c.run(sql);
          await c.run('INSERT INTO gc_schema (version, description, applied_at) VALUES (?, ?, ?)', [
            m.version,
            m.description,
            Date.now(),
          ]);
          if (c.dialect === 'postgres') await c.run('COMMIT');
        } catch (e) {
          if (c.dialect === 'postgres') await c.run('ROLLBACK').catch(() => undefined);
          throw new GcError(
            'internal',
            `schema migration ${m.version} (${m.description}) failed: ${(e as Error).message}`,
          );
        }
      }
      return latest;
    } finally {
      if (c.dialect === 'postgres') {
        await c.run('SELECT pg_advisory_unlock(?)', [LOCK_ID]).catch(() => undefined);
      } else await c.run('SELECT RELEASE_LOCK(?)', [LOCK_NAME]).catch(() => undefined);
    }
  });
}
