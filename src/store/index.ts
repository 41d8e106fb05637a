/** Store module: the work store seam, its types and backends. */
export type { Store } from './store.js';
export * from './types.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { MAX_CREATE_BATCH, batchRef, parseNeed, encodeCursor, decodeCursor } from './validate.js';
export { SqlStore, type SqlStoreOptions } from './sql-store.js';
export { ExecStore, type ExecStoreOptions } from './exec.js';
