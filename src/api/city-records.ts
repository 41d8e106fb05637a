/**
 * The records a city server keeps besides the work store and the log: API
 * idempotency answers, agent runs, the controller's crash-loop records and
 * usage (tokens, costs).
 * With [database] url they live in the database, where every server of the
 * city shares them; else in `.gc/` (api.db, sessions.json, usage.db).
 */
import path from 'node:path';
import type { CityState } from '../city/index.js';
import { SqlUsage, SqliteUsage, type UsageRecords } from '../costs/index.js';
import { FileSessionFacts, SqlSessionFacts, type SessionFacts } from '../controller/index.js';
import { SqlIdempotency } from './idempotency-sql.js';
import { IdempotencyStore, type IdempotencyRecords } from './idempotency.js';
import { SqlRunRecords, SqliteRunRecords, type RunRecords } from './run-records.js';

export interface CityRecords {
  idempotency: IdempotencyRecords;
  runs: RunRecords;
  facts: SessionFacts;
  usage: UsageRecords;
}

export async function openCityRecords(
  state: CityState,
  server: { serverId: string; staleMs: number; host?: string } = {
    serverId: '',
    staleMs: 30_000,
  },
): Promise<CityRecords> {
  if (state.db) {
    const idempotency = new SqlIdempotency(
      state.db,
      undefined,
      server.serverId,
      server.staleMs,
      server.host ?? '',
    );
    // Pending claims of servers that are gone: their handlers died with them.
    await idempotency.clearPending();
    return {
      idempotency,
      runs: new SqlRunRecords(state.db),
      facts: new SqlSessionFacts(state.db),
      usage: new SqlUsage(state.db),
    };
  }
  const local = IdempotencyStore.open(state.gcDir);
  return {
    idempotency: local,
    runs: new SqliteRunRecords(local.database),
    facts: FileSessionFacts.forCity(state.gcDir),
    usage: new SqliteUsage(path.join(state.gcDir, 'usage.db')),
  };
}
