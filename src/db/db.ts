/**
 * The driver layer for database servers: PostgreSQL (`pg`) and the MySQL
 * protocol (`mysql2`: MariaDB, MySQL, Dolt) behind one small async
 * interface. SQL is written once with `?` placeholders (turned into `$n`
 * for PostgreSQL); only what differs between the dialects (DDL, upserts,
 * row locking) is spelled per dialect by the callers.
 *
 * The drivers are loaded on first use, so a city on SQLite never loads them.
 */
import { availableParallelism } from 'node:os';
import { GcError } from '../core/index.js';

/** The database server cannot be reached or refused the connection (HTTP 503). */
export class DatabaseUnavailableError extends GcError {
  constructor(where: string, reason: string) {
    super('unavailable', `database ${where} unavailable: ${reason}`, {
      fix: 'check that the database server runs and [database] url is right',
    });
  }
}

export type Dialect = 'postgres' | 'mysql';

/** One connection's view: statements, inside or outside a transaction. */
export interface SqlConn {
  readonly dialect: Dialect;
  /** The schema (PostgreSQL) or database (MySQL) given at open; '' for the URL's own. */
  readonly scope: string;
  /** Rows of a query. */
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** A statement's affected row count. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface SqlDb extends SqlConn {
  /**
   * Run `fn` in one transaction (READ COMMITTED) on one connection: commit
   * when it resolves, roll back when it throws.
   */
  transaction<T>(fn: (tx: SqlConn) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** One connection held for `fn` (session locks, DDL). */
  withConnection<T>(fn: (c: SqlConn) => Promise<T>): Promise<T>;
  /**
   * PostgreSQL only: a connection of its own that LISTENs on `channel`.
   * Resolves once LISTEN took effect; `onNotify` gets each payload, and
   * `onLost` is called once if the connection fails (listen again then).
   */
  listen?(
    channel: string,
    onNotify: (payload: string) => void,
    onLost: (e: Error) => void,
  ): Promise<Listener>;
  close(): Promise<void>;
}

export interface TransactionOptions {
  /**
   * PostgreSQL: let the server reuse its plans of the transaction's
   * statements (plan_cache_mode = auto, set with BEGIN in one round trip)
   * where connections otherwise plan each statement for its values.
   * Ignored on MySQL.
   */
  reusePlans?: boolean;
}

export interface Listener {
  close(): Promise<void>;
}

export interface SqlDbOptions {
  /** Most connections held at once. */
  poolSize?: number;
  /**
   * PostgreSQL: the schema to work in (search_path). MySQL: the database
   * (overrides the URL's). Tests give each store its own.
   */
  schema?: string;
}

/**
 * Connections a process holds when [database] pool_size is 0: two per CPU
 * core plus four (statements wait on the network, so a core keeps more
 * than one busy), at most 20 (a server shared by several processes and
 * replicas has a connection limit: PostgreSQL's default is 100).
 */
export function defaultPoolSize(cores = availableParallelism()): number {
  return Math.min(20, 2 * cores + 4);
}

/** `?` placeholders to PostgreSQL's `$1..$n` (the SQL here never holds a literal `?`). */
export function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

/** The dialect a URL names, or a ValidationError-like GcError saying which are known. */
export function dialectOf(url: string): Dialect {
  const scheme = /^([a-z0-9+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  // The URL itself is never echoed: it may hold a password.
  throw new GcError(
    'invalid',
    `unknown database URL scheme ${JSON.stringify(scheme ?? '(none)')}`,
    {
      fix: 'use postgres://user@host:5432/db or mysql://user@host:3306/db',
    },
  );
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable database URL)';
  }
}

/** A compare-and-set kept losing to concurrent writers (a conflict, worth running again). */
export class LostRaceError extends GcError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Errors worth running the whole transaction again for: lost races, not mistakes. */
export function retryable(e: unknown): boolean {
  if (e instanceof LostRaceError) return true;
  const err = e as { code?: string; errno?: number };
  // PostgreSQL: serialization failure, deadlock, unique violation (a racing
  // insert of the same key: the retry sees the winner's row).
  if (err.code === '40001' || err.code === '40P01' || err.code === '23505') return true;
  // MySQL: deadlock, lock wait timeout, duplicate key.
  return err.errno === 1213 || err.errno === 1205 || err.errno === 1062;
}

/** The server could not be reached or refused us: the store is unavailable, not broken. */
export function unavailable(e: unknown, url: string): Error {
  const err = e as { code?: string; errno?: number; message?: string };
  const connectCodes = new Set([
    'ECONNREFUSED',
    'ECONNRESET',
    'ETIMEDOUT',
    'ENOTFOUND',
    'EHOSTUNREACH',
    'EPIPE',
    'PROTOCOL_CONNECTION_LOST',
    '57P01', // admin shutdown
    '57P03', // cannot connect now
    '08006',
    '08001',
    '08004',
    '28P01', // password authentication failed
    '3D000', // database does not exist
  ]);
  if (
    (err.code && connectCodes.has(err.code)) ||
    err.errno === 1045 || // access denied
    err.errno === 1049 || // unknown database
    /Connection terminated|connect ECONNREFUSED|Client has encountered a connection error/.test(
      err.message ?? '',
    )
  ) {
    return new DatabaseUnavailableError(redactUrl(url), err.message ?? String(e));
  }
  return e instanceof Error ? e : new Error(String(e));
}

export async function openSqlDb(url: string, options: SqlDbOptions = {}): Promise<SqlDb> {
  return dialectOf(url) === 'postgres' ? openPostgres(url, options) : openMysql(url, options);
}

async function openPostgres(url: string, options: SqlDbOptions): Promise<SqlDb> {
  const pg = (await import('pg')).default;
  // int8 (counts, epoch milliseconds) and numeric (sums) as numbers: every
  // value stored here is far below 2^53.
  const parsers = new Map<number, (v: string) => unknown>([
    [20, Number],
    [1700, Number],
  ]);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize || defaultPoolSize(),
    connectionTimeoutMillis: 10_000,
    // Plans for the values at hand: after five runs a prepared statement may
    // switch to a generic plan, which for the store's filters (a mailbox, a
    // routed agent) walked every row of the kind; the API mail burst fell
    // from 739 to 243 messages/s as messages piled up.
    options: `-c plan_cache_mode=force_custom_plan${options.schema ? ` -c search_path=${options.schema}` : ''}`,
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        parsers.get(oid) ??
        (pg.types.getTypeParser(oid, format as 'text') as (
          v: string,
        ) => unknown)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client whose server went away: logged by the caller's next error, never a crash.
  pool.on('error', () => undefined);
  // Statements the store repeats are prepared once per connection (named):
  // the server skips parsing and planning them again.
  const named = new Map<string, { name: string; text: string }>();
  const statement = (sql: string, params: readonly unknown[]) => {
    let s = named.get(sql);
    if (!s) {
      const text = numbered(sql);
      const dml = /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i.test(sql) && !/pg_advisory/.test(sql);
      // Named only while the cache has room: a name always means one text.
      if (!dml || named.size >= 5000) return { text, values: params as unknown[] };
      s = { name: `gc_${named.size}`, text };
      named.set(sql, s);
    }
    return { name: s.name, text: s.text, values: params as unknown[] };
  };
  const scope = options.schema ?? '';
  const conn = (q: { query: typeof pool.query }): SqlConn => ({
    dialect: 'postgres',
    scope,
    async query<T>(sql: string, params: readonly unknown[] = []) {
      try {
        return (await q.query(statement(sql, params))).rows as T[];
      } catch (e) {
        throw unavailable(e, url);
      }
    },
    async run(sql: string, params: readonly unknown[] = []) {
      try {
        return (await q.query(statement(sql, params))).rowCount ?? 0;
      } catch (e) {
        throw unavailable(e, url);
      }
    },
  });
  const held = async <T>(fn: (c: SqlConn, raw: InstanceType<typeof pg.Client>) => Promise<T>) => {
    let client;
    try {
      client = await pool.connect();
    } catch (e) {
      throw unavailable(e, url);
    }
    let broken = false;
    // A held client whose server goes away between two statements emits
    // 'error' with nobody listening (the pool listens only while it is
    // idle): that would end the process. The next statement fails instead.
    const lost = () => {
      broken = true;
    };
    client.on('error', lost);
    try {
      return await fn(conn(client), client);
    } catch (e) {
      broken ||= e instanceof DatabaseUnavailableError;
      throw e;
    } finally {
      client.off('error', lost);
      client.release(broken);
    }
  };
  return {
    ...conn(pool),
    withConnection: (fn) => held((c) => fn(c)),
    transaction: (fn, options) =>
      held(async (c) => {
        // No parameters: one simple query, both statements in one round trip.
        await c.run(
          options?.reusePlans
            ? 'BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL plan_cache_mode = auto'
            : 'BEGIN ISOLATION LEVEL READ COMMITTED',
        );
        try {
          const value = await fn(c);
          await c.run('COMMIT');
          return value;
        } catch (e) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    async listen(channel, onNotify, onLost) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`bad channel ${channel}`);
      const client = new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: 10_000,
        ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
      });
      let lost = false;
      const fail = (e: Error) => {
        if (lost) return;
        lost = true;
        client.end().catch(() => undefined);
        onLost(unavailable(e, url));
      };
      client.on('notification', (m) => onNotify(m.payload ?? ''));
      client.on('error', fail);
      client.on('end', () => fail(new Error('Connection terminated')));
      try {
        await client.connect();
        await client.query(`LISTEN ${channel}`);
      } catch (e) {
        lost = true;
        await client.end().catch(() => undefined);
        throw unavailable(e, url);
      }
      return {
        async close() {
          lost = true;
          await client.end().catch(() => undefined);
        },
      };
    },
    close: () => pool.end(),
  };
}

/** The notification channel of a database's event log (one per schema: channels are server-wide). */
export function eventChannel(c: SqlConn): string {
  const tail = c.scope.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return (tail ? `gc_events_${tail}` : 'gc_events').slice(0, 63);
}

/**
 * Take `n` numbers from a counter row (`event_seq`): returns the first. The
 * row stays locked until the transaction ends, so numbers are handed out in
 * commit order with no gap. Take it as the transaction's last statement.
 */
export async function takeSeqs(tx: SqlConn, counter: 'event_seq' | 'outbox_seq', n: number) {
  let last: number;
  if (tx.dialect === 'postgres') {
    const [r] = await tx.query<{ next: number }>(
      `UPDATE ${counter} SET next = next + ? WHERE id = 1 RETURNING next`,
      [n],
    );
    last = Number(r?.next);
  } else {
    await tx.run(`UPDATE ${counter} SET next = LAST_INSERT_ID(next + ?) WHERE id = 1`, [n]);
    const [r] = await tx.query<{ next: number }>('SELECT LAST_INSERT_ID() AS next');
    last = Number(r?.next);
  }
  if (!Number.isFinite(last) || last < n) throw new Error(`the ${counter} counter row is missing`);
  return last - n + 1;
}

async function openMysql(url: string, options: SqlDbOptions): Promise<SqlDb> {
  const mysql = await import('mysql2/promise');
  const u = new URL(url);
  const pool = mysql.createPool({
    host: u.hostname,
    port: Number(u.port) || 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: options.schema ?? decodeURIComponent(u.pathname.replace(/^\//, '')),
    connectionLimit: options.poolSize || defaultPoolSize(),
    connectTimeout: 10_000,
    charset: 'utf8mb4_bin',
    // BIGINT and DECIMAL (sums) as numbers: every value stored here is far below 2^53.
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    multipleStatements: false,
  });
  type Queryable = {
    query: (sql: string, params: unknown[]) => Promise<[unknown, unknown]>;
  };
  const scope = options.schema ?? '';
  const conn = (q: Queryable): SqlConn => ({
    dialect: 'mysql',
    scope,
    async query<T>(sql: string, params: readonly unknown[] = []) {
      try {
        return (await q.query(sql, [...params]))[0] as T[];
      } catch (e) {
        throw unavailable(e, url);
      }
    },
    async run(sql: string, params: readonly unknown[] = []) {
      try {
        const [r] = await q.query(sql, [...params]);
        return (r as { affectedRows?: number }).affectedRows ?? 0;
      } catch (e) {
        throw unavailable(e, url);
      }
    },
  });
  // Connections whose session already reads at READ COMMITTED (set once each).
  const committedReads = new WeakSet<object>();
  const held = async <T>(fn: (c: SqlConn, session: object) => Promise<T>) => {
    let c;
    try {
      c = await pool.getConnection();
    } catch (e) {
      throw unavailable(e, url);
    }
    let broken = false;
    try {
      return await fn(conn(c), (c as unknown as { connection?: object }).connection ?? c);
    } catch (e) {
      broken = e instanceof DatabaseUnavailableError;
      throw e;
    } finally {
      if (broken) c.destroy();
      else c.release();
    }
  };
  return {
    ...conn(pool),
    withConnection: (fn) => held((c) => fn(c)),
    transaction: (fn) =>
      held(async (c, session) => {
        // Writes read what others committed, as on PostgreSQL.
        if (!committedReads.has(session)) {
          await c.run('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
          committedReads.add(session);
        }
        await c.run('START TRANSACTION');
        try {
          const value = await fn(c);
          await c.run('COMMIT');
          return value;
        } catch (e) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    close: () => pool.end(),
  };
}
