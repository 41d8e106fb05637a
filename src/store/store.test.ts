import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import type { Clock } from '../core/index.js';
import { runStoreConformance } from './conformance.js';
import { runRecordConformance } from './conformance-records.js';
import { MemoryStore } from './memory.js';
import { openSqlDb } from '../db/index.js';
import { SqlStore } from './sql-store.js';
import type { Store } from './store.js';
import { SqliteStore } from './sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runStoreConformance('memory', ({ clock, prefix }) =>
  Promise.resolve(new MemoryStore({ clock, prefix })),
);
runStoreConformance('sqlite', ({ clock, prefix }) =>
  Promise.resolve(new SqliteStore({ path: join(dir, `s${n++}.db`), clock, prefix })),
);

// The same suites on the database servers, each store in its own fresh schema.
for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} store${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  afterAll(() => scratch.dropAll());
  const schemas = new WeakMap<Store, string>();
  const open = async ({ clock, prefix }: { clock: Clock; prefix: string }) => {
    const schema = await scratch.create();
    const s = await SqlStore.open({ url: server.url!, schema, clock, prefix, poolSize: 4 });
    schemas.set(s, schema);
    return s;
  };
  runStoreConformance(kind, open);
  // Events go to the log table in the write's transaction: read them there.
  runRecordConformance(kind, open, {
    committed: async (s) => {
      const db = await openSqlDb(server.url!, { schema: schemas.get(s)!, poolSize: 1 });
      try {
        const rows = await db.query<Record<string, string | number | null>>(
          'SELECT seq, type, ts, actor, subject, message, payload FROM events ORDER BY seq',
        );
        return rows.map((r) => ({
          id: Number(r.seq),
          event: {
            type: String(r.type),
            ts: String(r.ts),
            actor: String(r.actor),
            ...(r.subject !== null ? { subject: String(r.subject) } : {}),
            ...(r.message !== null ? { message: String(r.message) } : {}),
            ...(r.payload !== null ? { payload: JSON.parse(String(r.payload)) as unknown } : {}),
          },
        }));
      } finally {
        await db.close();
      }
    },
  });
}

runRecordConformance('memory', ({ clock, prefix }) =>
  Promise.resolve(new MemoryStore({ clock, prefix })),
);
runRecordConformance('sqlite', ({ clock, prefix }) =>
  Promise.resolve(new SqliteStore({ path: join(dir, `r${n++}.db`), clock, prefix })),
);

describe('sqlite specifics', () => {
  it('persists across reopen and records the schema version', async () => {
    const path = join(dir, 'reopen.db');
    const a = new SqliteStore({ path, prefix: 'ro' });
    const b = await a.create({ title: 'kept', labels: ['l'], metadata: { k: 'v' } });
    await a.dispose();
    const again = new SqliteStore({ path, prefix: 'ro' });
    expect(again.schemaVersion()).toBe(2);
    expect(await again.get(b.id)).toEqual(b);
    await again.dispose();
  });

  it('a failing write in a batch rolls back only itself', async () => {
    const s = new SqliteStore({ path: join(dir, 'batch.db') });
    const results = await Promise.allSettled([
      s.create({ title: 'ok1' }),
      s.create({ title: '' }),
      s.create({ title: 'ok2', needs: ['gc-missing'] }),
      s.create({ title: 'ok3' }),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    expect(await s.count()).toBe(2);
    await s.dispose();
  });

  it('keeps savepoint journals in memory, not in temporary files', async () => {
    // Each write of a batch runs in a savepoint; spilled to a temporary
    // file, its journal doubled what a mail send costs (bench/api.ts).
    const s = new SqliteStore({ path: join(dir, 'temp.db') });
    const { db } = s as unknown as { db: { pragma(q: string, o: { simple: true }): unknown } };
    expect(db.pragma('temp_store', { simple: true })).toBe(2); // 2 = MEMORY
    await s.dispose();
  });

  it('ready queries are forced onto the partial index (INDEXED BY errors if unusable)', async () => {
    const s = new SqliteStore({ path: join(dir, 'plan.db') });
    await s.create({ title: 'x', labels: ['a'], metadata: { k: 'v' } });
    // Every filter combination must still be answerable from beads_ready.
    expect(
      await s.countReady({ label: 'a', metadata: { k: 'v' }, unassigned: true, type: 'task' }),
    ).toBe(1);
    expect((await s.ready({ assignee: '', limit: 1 })).items).toHaveLength(1);
    await s.dispose();
  });
});
