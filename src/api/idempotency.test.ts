import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { migrate, openSqlDb, type SqlDb } from '../db/index.js';
import { runIdempotencyConformance } from './idempotency-conformance.js';
import { SqlIdempotency } from './idempotency-sql.js';
import { IdempotencyStore } from './idempotency.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-idem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runIdempotencyConformance('sqlite', (clock) =>
  Promise.resolve(new IdempotencyStore(join(dir, `api${n++}.db`), () => clock.now())),
);

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} idempotency${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  const pools: SqlDb[] = [];
  afterAll(async () => {
    for (const p of pools.splice(0)) await p.close();
    await scratch.dropAll();
  });
  runIdempotencyConformance(kind, async (clock) => {
    const db = await openSqlDb(server.url!, { schema: await scratch.create(), poolSize: 8 });
    pools.push(db);
    await migrate(db);
    return new SqlIdempotency(db, clock);
  });
}
