import { afterAll, describe, expect, it } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { waitFor } from '../../test/helpers/wait.js';
import { FakeClock } from '../core/index.js';
import { appendEventRows, openSqlDb } from '../db/index.js';
import { runEventLogConformance } from './conformance.js';
import { SqlEventLog } from './sql.js';
import type { GcEvent } from './types.js';

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} event log${server.note}`, () => undefined);
    continue;
  }
  const url = server.url;
  const scratch = new Scratch(url);
  afterAll(() => scratch.dropAll());
  const open = async (
    schema?: string,
    extra: Partial<Parameters<typeof SqlEventLog.open>[0]> = {},
  ) =>
    SqlEventLog.open({
      url,
      dbOptions: { schema: schema ?? (await scratch.create()), poolSize: 4 },
      pollMs: 20,
      ...extra,
    });

  runEventLogConformance(kind, () => open());

  describe(`${kind} event log specifics`, () => {
    it('two processes share one gap-free log; each watcher sees every event once, in order', async () => {
      const schema = await scratch.create();
      const a = await open(schema);
      const b = await open(schema);
      const other = await openSqlDb(url, { schema, poolSize: 4 });
      try {
        const ac = new AbortController();
        const seen: GcEvent[] = [];
        const total = 3 * 60;
        const watching = (async () => {
          for await (const e of b.watch(0, { signal: ac.signal })) {
            seen.push(e);
            if (seen.length === total) ac.abort();
          }
        })();
        // Log records from two pools and other writers' transactions (a
        // store write appends its events so) race for the same counter.
        await Promise.all([
          ...Array.from({ length: 60 }, (_, i) => a.record({ type: 'from.a', payload: { i } })),
          ...Array.from({ length: 60 }, (_, i) => b.record({ type: 'from.b', payload: { i } })),
          ...Array.from({ length: 60 }, (_, i) =>
            other.transaction(async (tx) => {
              await tx.query('SELECT 1');
              return appendEventRows(tx, [
                {
                  type: 'bead.created',
                  actor: 'test',
                  subject: `b${i}`,
                  ts: '2026-01-01T00:00:00Z',
                },
              ]);
            }),
          ),
        ]);
        await watching;
        expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
        expect(seen.filter((e) => e.type === 'bead.created')).toHaveLength(60);
        // Each log's own records keep their call order.
        const fromA = seen.filter((e) => e.type === 'from.a').map((e) => e.payload);
        expect(fromA).toEqual(Array.from({ length: 60 }, (_, i) => ({ i })));
        expect(await a.latestSeq()).toBe(total);
      } finally {
        await other.close();
        await a.close();
        await b.close();
      }
    });

    it('filters check long actors and subjects whole, past their indexed prefix', async () => {
      const log = await open();
      try {
        const long = 'x'.repeat(300);
        await log.record({ type: 'a', actor: `${long}1`, subject: `${long}s1` });
        await log.record({ type: 'a', actor: `${long}2`, subject: `${long}s2` });
        await log.record({ type: 'a_b', actor: 'c' });
        await log.record({ type: 'a.b', actor: 'c' });
        const seqs = async (q: Parameters<SqlEventLog['list']>[0]) =>
          (await log.list(q)).items.map((e) => e.seq);
        expect(await seqs({ actor: `${long}2` })).toEqual([2]);
        expect(await seqs({ subject: `${long}s1` })).toEqual([1]);
        // A prefix is a prefix: '_' and '%' mean themselves.
        expect(await seqs({ type: 'a_*' })).toEqual([3]);
        expect(await seqs({ type: 'a.*' })).toEqual([4]);
        expect(await seqs({ type: '*' })).toEqual([1, 2, 3, 4]);
      } finally {
        await log.close();
      }
    });

    it('retention drops the oldest events by count and by age, and records that it did', async () => {
      const clock = new FakeClock(Date.parse('2026-06-01T00:00:00Z'));
      const schema = await scratch.create();
      const log = await open(schema, { clock, retention: { maxEvents: 5 }, pruneEveryMs: 0 });
      try {
        for (let i = 0; i < 12; i++) await log.record({ type: 'n', payload: { i } });
        expect(await log.pruneNow()).toBe(7);
        const page = await log.list();
        expect(page.items.map((e) => e.seq)).toEqual([8, 9, 10, 11, 12, 13]);
        expect(page.items[5]).toMatchObject({
          type: 'events.pruned',
          payload: { first_seq: 1, last_seq: 7 },
        });
        expect(await log.pruneNow()).toBe(1);
      } finally {
        await log.close();
      }
      const aged = await open(schema, {
        clock,
        retention: { maxAgeMs: 3600_000 },
        pruneEveryMs: 0,
      });
      try {
        clock.advance(2 * 3600_000);
        await aged.record({ type: 'fresh' });
        expect(await aged.pruneNow()).toBe(6);
        const kept = (await aged.list()).items;
        expect(kept.map((e) => e.type)).toEqual(['fresh', 'events.pruned']);
        expect(kept.map((e) => e.seq)).toEqual([15, 16]);
        expect(await aged.latestSeq()).toBe(16);
      } finally {
        await aged.close();
      }
    });

    it('a watcher follows a recording process it did not open', async () => {
      const schema = await scratch.create();
      const writer = await open(schema);
      const reader = await open(schema);
      try {
        await writer.record({ type: 'before' });
        const ac = new AbortController();
        const got: string[] = [];
        const watching = (async () => {
          for await (const e of reader.watch(1, { signal: ac.signal })) {
            got.push(e.type);
            if (got.length === 2) ac.abort();
          }
        })();
        await writer.record({ type: 'one' });
        await new Promise((r) => setTimeout(r, 50));
        await writer.record({ type: 'two' });
        await watching;
        expect(got).toEqual(['one', 'two']);
      } finally {
        await writer.close();
        await reader.close();
      }
    });

    if (kind === 'postgres') {
      it('a watcher whose listening connection is killed listens again and misses nothing', async () => {
        const schema = await scratch.create();
        const writer = await open(schema);
        const reader = await open(schema);
        const admin = await openSqlDb(url, { poolSize: 1 });
        try {
          const ac = new AbortController();
          const got: number[] = [];
          const watching = (async () => {
            for await (const e of reader.watch(0, { signal: ac.signal })) {
              got.push(e.seq);
              if (got.length === 20) ac.abort();
            }
          })();
          for (let i = 0; i < 10; i++) await writer.record({ type: 'x' });
          await waitFor(() => got.length === 10, 'the first ten events');
          const killed = await admin.query<{ ok: boolean }>(
            `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
              WHERE query LIKE 'LISTEN gc_events%' AND pid <> pg_backend_pid()
                AND query LIKE ?`,
            [`%${schema}%`],
          );
          expect(killed.length).toBe(1);
          for (let i = 0; i < 10; i++) await writer.record({ type: 'y' });
          await watching;
          expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        } finally {
          await admin.close();
          await writer.close();
          await reader.close();
        }
      });
    }
  });
}
