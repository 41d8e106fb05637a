import Database from 'better-sqlite3';
import { afterAll, describe } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { migrate, openSqlDb, type SqlDb } from '../db/index.js';
import { runRunRecordsConformance } from './run-records-conformance.js';
import { SqlRunRecords, SqliteRunRecords } from './run-records.js';

runRunRecordsConformance('sqlite', () =>
  Promise.resolve(new SqliteRunRecords(new Database(':memory:'))),
);

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} run records${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  const pools: SqlDb[] = [];
  afterAll(async () => {
    for (const p of pools.splice(0)) await p.close();
    await scratch.dropAll();
  });
  runRunRecordsConformance(kind, async () => {
    const db = await openSqlDb(server.url!, { schema: await scratch.create(), poolSize: 2 });
    pools.push(db);
    await migrate(db);
    return new SqlRunRecords(db);
  });
}
