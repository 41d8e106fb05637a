import Database from 'better-sqlite3';
import { onEachServer } from '../../test/helpers/db.js';
import { runRunRecordsConformance } from './run-records-conformance.js';
import { SqlRunRecords, SqliteRunRecords } from './run-records.js';

runRunRecordsConformance('sqlite', () =>
  Promise.resolve(new SqliteRunRecords(new Database(':memory:'))),
);

await onEachServer('run records', (kind, fresh) => {
  runRunRecordsConformance(kind, async () => new SqlRunRecords(await fresh({ poolSize: 2 })));
});
