/** Events module: the append-only event log seam and its backends. */
export type { EventLog } from './event-log.js';
export * from './types.js';
export { MemoryEventLog } from './memory.js';
export { JsonlEventLog, type JsonlEventLogOptions } from './jsonl.js';
export { eventMatcher, sinceMs, checkEmittedType, RESERVED_EVENT_PREFIXES } from './filter.js';
export { ExecEventLog, type ExecEventsOptions } from './exec.js';
export { SqlEventLog, type SqlEventLogOptions } from './sql.js';
export type { Retention } from './sql-prune.js';
