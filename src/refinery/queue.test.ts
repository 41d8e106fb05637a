import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { migrate, openSqlDb, type SqlDb } from '../db/index.js';
import { runQueueConformance } from './queue-conformance.js';
import { MergeQueue } from './queue.js';

runQueueConformance('sqlite memory', (clock) =>
  Promise.resolve(MergeQueue.file(':memory:', { clock })),
);

const dir = mkdtempSync(path.join(tmpdir(), 'gc-mq-conf-'));
let n = 0;
const files: MergeQueue[] = [];
afterAll(async () => {
  for (const q of files.splice(0)) await q.close();
  rmSync(dir, { recursive: true, force: true });
});
runQueueConformance('sqlite file', (clock) => {
  const q = MergeQueue.file(path.join(dir, `mq-${++n}.db`), { clock });
  files.push(q);
  return Promise.resolve(q);
});

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} merge queue${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  const pools: SqlDb[] = [];
  afterAll(async () => {
    for (const p of pools.splice(0)) await p.close();
    await scratch.dropAll();
  });
  runQueueConformance(kind, async (clock) => {
    const db = await openSqlDb(server.url!, { schema: await scratch.create(), poolSize: 4 });
    pools.push(db);
    await migrate(db);
    return MergeQueue.forCity('', { db, clock });
  });
}
