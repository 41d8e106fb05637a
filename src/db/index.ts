/**
 * The city's database server: connections and pools per dialect
 * (PostgreSQL, MySQL protocol), errors, and the one versioned schema that
 * every SQL backend (store, event log, merge queue, keys, ...) shares.
 */
export {
  DatabaseUnavailableError,
  LostRaceError,
  defaultPoolSize,
  dialectOf,
  eventChannel,
  numbered,
  openSqlDb,
  redactUrl,
  retryable,
  takeSeqs,
  unavailable,
  type Dialect,
  type Listener,
  type SqlConn,
  type SqlDb,
  type SqlDbOptions,
  type TransactionOptions,
} from './db.js';
export { SQL_MIGRATIONS, type SqlMigration } from './migrations.js';
export { migrate, schemaVersion } from './schema.js';
export { appendEventRows, eventColumns, type EventRowInput } from './event-rows.js';
export {
  FencedError,
  MemoryLeases,
  SqlLeases,
  dbNow,
  fence,
  type Lease,
  type Leases,
} from './lease.js';
export { SqlFlags, SqlServers, type ServerRole, type ServerRow } from './servers.js';
