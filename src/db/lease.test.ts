import { afterAll, describe, expect, it } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { openSqlDb, type SqlDb } from './db.js';
import { runLeaseConformance } from './lease-conformance.js';
import { FencedError, MemoryLeases, SqlLeases, fence } from './lease.js';
import { migrate } from './schema.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

runLeaseConformance('memory', () => {
  let t = 1_000_000;
  const leases = new MemoryLeases({ now: () => t });
  return Promise.resolve({
    leases,
    fence: (name, holder, term) => Promise.resolve().then(() => leases.fence(name, holder, term)),
    pass: (ms) => {
      t += ms;
      return Promise.resolve();
    },
  });
});

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} leases${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  const pools: SqlDb[] = [];
  afterAll(async () => {
    for (const p of pools.splice(0)) await p.close();
    await scratch.dropAll();
  });
  const open = async (schema?: string) => {
    const db = await openSqlDb(server.url!, {
      schema: schema ?? (await scratch.create()),
      poolSize: 4,
    });
    pools.push(db);
    await migrate(db);
    return db;
  };
  runLeaseConformance(kind, async () => {
    const db = await open();
    return {
      leases: new SqlLeases(db),
      fence: (name, holder, term) => db.transaction((tx) => fence(tx, name, holder, term)),
      pass: sleep,
    };
  });

  describe(`${kind}: leases between servers`, () => {
    it('a fenced write holds off a takeover until it commits, and a stale leader write rolls back', async () => {
      const schema = await scratch.create();
      const [a, b] = [await open(schema), await open(schema)];
      const [la, lb] = [new SqlLeases(a), new SqlLeases(b)];
      const { lease } = await la.acquire('leader', 'srv-a', 300);
      await a.run('CREATE TABLE fenced_writes (n INT)');
      // srv-a's write: fenced, then slow; its lease lapses meanwhile.
      let takeoverDone = 0;
      let writeDone = 0;
      const write = a.transaction(async (tx) => {
        await fence(tx, 'leader', 'srv-a', lease.term);
        await sleep(700);
        await tx.run('INSERT INTO fenced_writes (n) VALUES (1)');
        writeDone = Date.now();
      });
      await sleep(400);
      // srv-b sees the lease lapsed, but its takeover waits for the write's commit.
      const takeover = lb.acquire('leader', 'srv-b', 5_000).then((r) => {
        takeoverDone = Date.now();
        return r;
      });
      await write;
      expect((await takeover).held).toBe(true);
      expect(takeoverDone).toBeGreaterThanOrEqual(writeDone);
      // After the takeover, the old leader's write is refused and leaves nothing.
      await expect(
        a.transaction(async (tx) => {
          await tx.run('INSERT INTO fenced_writes (n) VALUES (2)');
          await fence(tx, 'leader', 'srv-a', lease.term);
        }),
      ).rejects.toBeInstanceOf(FencedError);
      expect(await b.query<{ n: number }>('SELECT n FROM fenced_writes')).toEqual([{ n: 1 }]);
    });
  });
}
