/**
 * The store on database servers, beyond the shared conformance suite: what
 * only a store shared by several processes can get wrong. Each "process"
 * here is its own SqlStore with its own connection pool on one schema.
 */
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { GcError } from '../core/index.js';
import {
  DatabaseUnavailableError,
  SQL_MIGRATIONS,
  dialectOf,
  migrate,
  numbered,
  openSqlDb,
  redactUrl,
  type SqlDb,
} from '../db/index.js';
import { insertPlainBeads } from './sql-insert.js';
import { SqlStore } from './sql-store.js';
import { normalizeCreate } from './validate.js';

describe('the driver layer', () => {
  it('numbers placeholders for PostgreSQL and knows the URL schemes', () => {
    expect(numbered('SELECT ? , ?, (?)')).toBe('SELECT $1 , $2, ($3)');
    expect(dialectOf('postgres://h/db')).toBe('postgres');
    expect(dialectOf('postgresql://h/db')).toBe('postgres');
    expect(dialectOf('mysql://h/db')).toBe('mysql');
    expect(dialectOf('mariadb://h/db')).toBe('mysql');
    expect(() => dialectOf('sqlite:///x')).toThrow(/unknown database URL scheme "sqlite"/);
  });

  it('never shows a password', () => {
    expect(redactUrl('postgres://gc:s3cret@db:5432/city')).toBe('postgres://gc:***@db:5432/city');
    expect(redactUrl('mysql://root@db/city')).toBe('mysql://root@db/city');
  });

  it('an unreachable server is DatabaseUnavailableError, without the password', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    for (const scheme of ['postgres', 'mysql']) {
      const err = await SqlStore.open({ url: `${scheme}://u:hunter2@127.0.0.1:${port}/x` }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect((err as GcError).code).toBe('unavailable');
      expect(String((err as Error).message)).not.toContain('hunter2');
      expect(String((err as Error).message)).toContain(`127.0.0.1:${port}`);
    }
  });
});

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  describe.skipIf(!server.url)(`${kind}: several processes on one database${server.note}`, () => {
    const scratch = new Scratch(server.url ?? '');
    afterAll(() => scratch.dropAll());
    const open = (schema: string) =>
      SqlStore.open({ url: server.url!, schema, prefix: 'sh', poolSize: 8 });

    it('processes starting together migrate once and all open', async () => {
      const schema = await scratch.create();
      const stores = await Promise.all(Array.from({ length: 4 }, () => open(schema)));
      try {
        for (const s of stores) expect(await s.schemaVersion()).toBe(SQL_MIGRATIONS.length);
        const b = await stores[0]!.create({ title: 'seen by all' });
        for (const s of stores) expect((await s.get(b.id)).title).toBe('seen by all');
      } finally {
        await Promise.all(stores.map((s) => s.dispose()));
      }
    });

    it('writes with events run in batches: claims from two processes stay single, a failing write rolls back alone, every event once', async () => {
      const schema = await scratch.create();
      const [a, b] = await Promise.all([open(schema), open(schema)]);
      const reader = await openSqlDb(server.url!, { schema, poolSize: 1 });
      try {
        const ev = (type: string) => ({
          events: (x: { id: string } | null) => (x ? [{ type, actor: 't', subject: x.id }] : []),
        });
        const made = await Promise.all(
          Array.from({ length: 120 }, (_, i) =>
            (i % 2 ? a : b).create({ title: `w${i}` }, ev('c')),
          ),
        );
        // In the same batches as good writes: a create that fails validation.
        const mixed = await Promise.allSettled(
          Array.from({ length: 40 }, (_, i) => a.create({ title: i % 4 ? `m${i}` : '' }, ev('m'))),
        );
        expect(mixed.filter((r) => r.status === 'rejected')).toHaveLength(10);
        const claims = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            (i % 2 ? a : b).claimNextReady(`w-${i}`, {}, ev('claimed')),
          ),
        );
        const got = claims.filter((x) => x !== null).map((x) => x.id);
        expect(new Set(got).size).toBe(got.length);
        expect(got).toHaveLength(150);
        const rows = await reader.query<{ seq: number; type: string; subject: string }>(
          'SELECT seq, type, subject FROM events ORDER BY seq',
        );
        expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
        expect(rows.filter((r) => r.type === 'c')).toHaveLength(made.length);
        expect(rows.filter((r) => r.type === 'm')).toHaveLength(30);
        expect(
          rows
            .filter((r) => r.type === 'claimed')
            .map((r) => r.subject)
            .sort(),
        ).toEqual([...got].sort());
      } finally {
        await reader.close();
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });

    it('claim-nexts of one batch run as one, as if one after another: own work, leases, events', async () => {
      const schema = await scratch.create();
      const s = await open(schema);
      const reader = await openSqlDb(server.url!, { schema, poolSize: 1 });
      try {
        const free: string[] = [];
        for (let i = 0; i < 8; i++) {
          free.push((await s.create({ title: `f${i}`, priority: 1 + (i % 4) })).id);
        }
        const mine = await s.create({ title: 'own', priority: 0, assignee: 'w-own' });
        const theirs = await s.create({ title: 'theirs', priority: 0, assignee: 'w-away' });
        const ev = (actor: string) => ({
          events: (b: { id: string } | null) =>
            b ? [{ type: 'claimed', actor, subject: b.id }] : [],
        });
        const actors = ['w-0', 'w-own', 'w-1', 'w-2', 'w-3', 'w-4'];
        const before = s.mergedWrites;
        const got = await Promise.all(
          actors.map((a, i) => s.claimNextReady(a, { leaseMs: 60_000 * (i + 1) }, ev(a))),
        );
        expect(s.mergedWrites - before).toBeGreaterThanOrEqual(actors.length);
        const byActor = new Map(actors.map((a, i) => [a, got[i]!]));
        // Its own work first for w-own; nobody takes another's assigned work.
        expect(byActor.get('w-own')!.id).toBe(mine.id);
        expect(got.map((b) => b?.id)).not.toContain(theirs.id);
        // The others took the first five unassigned in (priority, seq) order, one each.
        const order = [...free].sort((x, y) => {
          const [px, py] = [free.indexOf(x) % 4, free.indexOf(y) % 4];
          return px - py || free.indexOf(x) - free.indexOf(y);
        });
        const others = got.filter((b) => b!.id !== mine.id).map((b) => b!.id);
        expect(new Set(others)).toEqual(new Set(order.slice(0, 5)));
        for (const [i, a] of actors.entries()) {
          const b = await s.get(byActor.get(a)!.id);
          expect(b).toMatchObject({ status: 'in_progress', assignee: a, attempt: 1 });
          expect(b).toEqual(byActor.get(a));
          expect(Date.parse(b.lease_expires_at!) - Date.parse(b.claimed_at!)).toBe(
            60_000 * (i + 1),
          );
        }
        const rows = await reader.query<{ actor: string; subject: string }>(
          "SELECT actor, subject FROM events WHERE type = 'claimed' ORDER BY seq",
        );
        expect(rows.map((r) => [r.actor, r.subject]).sort()).toEqual(
          actors.map((a) => [a, byActor.get(a)!.id]).sort(),
        );
        // More claimants than ready work: the rest get null, in the same batch.
        const late = await Promise.all(
          Array.from({ length: 6 }, (_, i) => s.claimNextReady(`late-${i}`, {}, ev(`late-${i}`))),
        );
        expect(late.filter((b) => b !== null)).toHaveLength(3);
      } finally {
        await reader.close();
        await s.dispose();
      }
    });

    it("merged claim-nexts keep retried requests' answers: a retry gets its first bead, never a second", async () => {
      const schema = await scratch.create();
      const s = await open(schema);
      try {
        for (let i = 0; i < 10; i++) await s.create({ title: `b${i}` });
        const rec = (actor: string, key: string) => ({
          events: (b: { id: string } | null) =>
            b ? [{ type: 'claimed', actor, subject: b.id }] : [],
          request: { scope: `agent:${actor}`, key, fp: `claim-next ${actor}`, n: 0 },
          keep: (b: unknown) => b !== null,
        });
        const before = s.mergedWrites;
        const first = await Promise.all(
          ['a', 'b', 'c', 'd'].map((w) => s.claimNextReady(w, {}, rec(w, `k-${w}`))),
        );
        expect(s.mergedWrites - before).toBeGreaterThanOrEqual(4);
        // a and b retry (the same keys) alongside new claimants e and f.
        const again = await Promise.all(
          ['a', 'e', 'b', 'f'].map((w) => s.claimNextReady(w, {}, rec(w, `k-${w}`))),
        );
        expect(again[0]).toEqual(first[0]);
        expect(again[2]).toEqual(first[1]);
        const ids = [...first, again[1], again[3]].map((b) => b!.id);
        expect(new Set(ids).size).toBe(6);
        // Nobody holds more than the one bead it was answered with.
        for (const w of ['a', 'b', 'c', 'd', 'e', 'f']) {
          expect(await s.count({ status: 'in_progress', assignee: w })).toBe(1);
        }
      } finally {
        await s.dispose();
      }
    });

    it('plain creates of one batch are inserted as one: each bead as read back, seqs in call order, events, retried requests', async () => {
      const schema = await scratch.create();
      const s = await open(schema);
      const reader = await openSqlDb(server.url!, { schema, poolSize: 1 });
      try {
        const rec = (i: number) => ({
          events: (b: { id: string }) => [{ type: 'made', actor: `w-${i}`, subject: b.id }],
          ...(i % 5 === 0
            ? { request: { scope: `agent:w-${i}`, key: `k-${i}`, fp: `create ${i}`, n: 0 } }
            : {}),
        });
        const input = (i: number) => ({
          title: `t${i}`,
          type: i % 3 ? 'task' : 'message',
          priority: i % 4,
          description: `d${i} ✓`,
          assignee: i % 2 ? `w-${i}` : '',
          from: `s-${i}`,
          labels: i % 2 ? ['zeta', 'alpha', `l${i}`, 'alpha'] : [],
          metadata: i % 3 ? { 'gc.read': 'false', k: `v${i}` } : {},
          ...(i === 7 ? { status: 'closed' as const } : {}),
        });
        const before = s.mergedWrites;
        const made = await Promise.all(
          Array.from({ length: 40 }, (_, i) => s.create(input(i), rec(i))),
        );
        expect(s.mergedWrites - before).toBeGreaterThanOrEqual(2);
        expect(new Set(made.map((b) => b.id)).size).toBe(40);
        // Each bead as the create answered is the bead a read returns.
        for (const [i, b] of made.entries()) {
          expect(await s.get(b.id)).toEqual(b);
          expect(b).toMatchObject({ title: `t${i}`, from: `s-${i}`, description: `d${i} ✓` });
          if (i % 2) expect(b.labels).toEqual(['alpha', `l${i}`, 'zeta']);
        }
        expect(made[7]!.status).toBe('closed');
        // Seqs ascend in call order (ready work is served in that order).
        const seqs = await reader.query<{ id: string; seq: number }>('SELECT id, seq FROM beads');
        const seqOf = new Map(seqs.map((r) => [r.id, Number(r.seq)]));
        const inOrder = made.map((b) => seqOf.get(b.id)!);
        expect(inOrder).toEqual([...inOrder].sort((x, y) => x - y));
        const rows = await reader.query<{ actor: string; subject: string }>(
          "SELECT actor, subject FROM events WHERE type = 'made' ORDER BY seq",
        );
        expect(rows.map((r) => [r.actor, r.subject]).sort()).toEqual(
          made.map((b, i) => [`w-${i}`, b.id]).sort(),
        );
        // Retried requests among new creates: each gets its first bead and makes nothing new.
        const again = await Promise.all([0, 41, 5, 42].map((i) => s.create(input(i), rec(i))));
        expect(again[0]).toEqual(made[0]);
        expect(again[2]).toEqual(made[5]);
        expect(await s.count({})).toBe(42);
      } finally {
        await reader.close();
        await s.dispose();
      }
    });

    it('a batch insert whose id is taken, or repeated within it, tries a longer one', async () => {
      const schema = await scratch.create();
      const s = await open(schema);
      const db = await openSqlDb(server.url!, { schema, poolSize: 1 });
      try {
        const taken = await s.create({ title: 'already here', labels: ['keep'] });
        const first = ['sh-one', taken.id, 'sh-one', 'sh-four'];
        let call = 0;
        const idFor = (extra: number) => (extra ? `sh-x${extra}-${call}` : first[call++]!);
        const inputs = ['a', 'b', 'c', 'd'].map((t) =>
          normalizeCreate({ title: t, labels: [t], metadata: { m: t } }),
        );
        const got = await db.transaction((tx) => insertPlainBeads(tx, inputs, 1_000, idFor));
        expect(got.map((b) => b.title)).toEqual(['a', 'b', 'c', 'd']);
        expect(got[0]!.id).toBe('sh-one');
        expect(got[3]!.id).toBe('sh-four');
        expect(new Set(got.map((b) => b.id)).size).toBe(4);
        expect(got.map((b) => b.id)).not.toContain(taken.id);
        for (const b of got) expect(await s.get(b.id)).toEqual(b);
        expect(await s.get(taken.id)).toEqual(taken);
      } finally {
        await db.close();
        await s.dispose();
      }
    });

    it('claimants in two processes never get the same bead, and every bead goes once', async () => {
      const schema = await scratch.create();
      const [a, b] = await Promise.all([open(schema), open(schema)]);
      try {
        const ids = new Set<string>();
        for (let i = 0; i < 60; i++) ids.add((await a.create({ title: `w${i}` })).id);
        const got: string[] = [];
        await Promise.all(
          Array.from({ length: 24 }, async (_, w) => {
            const s = w % 2 ? a : b;
            for (;;) {
              const bead = await s.claimNextReady(`worker-${w}`);
              if (!bead) return;
              got.push(bead.id);
            }
          }),
        );
        expect(got.length).toBe(60);
        expect(new Set(got)).toEqual(ids);
        expect(await a.count({ status: 'in_progress' })).toBe(60);
      } finally {
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });

    it('two blockers closed at once from two processes leave their dependent ready', async () => {
      const schema = await scratch.create();
      const [a, b] = await Promise.all([open(schema), open(schema)]);
      try {
        for (let round = 0; round < 10; round++) {
          const x = await a.create({ title: `x${round}` });
          const y = await a.create({ title: `y${round}` });
          const d = await a.create({ title: `d${round}`, needs: [x.id, y.id] });
          expect((await a.ready({ limit: 1000 })).items.map((r) => r.id)).not.toContain(d.id);
          await Promise.all([a.close(x.id), b.close(y.id)]);
          expect((await b.ready({ limit: 1000 })).items.map((r) => r.id)).toContain(d.id);
        }
      } finally {
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });

    it('a dependency added while its target closes elsewhere leaves the right readiness', async () => {
      const schema = await scratch.create();
      const [a, b] = await Promise.all([open(schema), open(schema)]);
      try {
        for (let round = 0; round < 10; round++) {
          const target = await a.create({ title: `t${round}` });
          const dep = await a.create({ title: `d${round}` });
          await Promise.all([b.close(target.id), a.addDependency(dep.id, target.id)]);
          // Whatever the order, the target is closed: the dependent is ready.
          expect((await a.ready({ limit: 1000 })).items.map((r) => r.id)).toContain(dep.id);
        }
      } finally {
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });

    it('event seqs follow commit order: a reader racing two writers misses nothing', async () => {
      const schema = await scratch.create();
      const [a, b] = await Promise.all([open(schema), open(schema)]);
      try {
        const seen: { id: number; subject: string; type: string }[] = [];
        let done = false;
        // A reader of the event log table: past the last seq seen, as a watcher reads.
        const reader = await openSqlDb(server.url!, { schema, poolSize: 1 });
        const drain = (async () => {
          let last = 0;
          for (;;) {
            // Whether the writers were done before this read: only then is an empty read the end.
            const finished = done;
            const rows = await reader.query<{ seq: number; subject: string; type: string }>(
              'SELECT seq, subject, type FROM events WHERE seq > ? ORDER BY seq LIMIT 50',
              [last],
            );
            for (const r of rows) {
              seen.push({ id: Number(r.seq), subject: r.subject, type: r.type });
              last = Number(r.seq);
            }
            if (!rows.length && finished) return;
            if (!rows.length) await new Promise((r) => setTimeout(r, 2));
          }
        })();
        const rec = (type: string) => ({
          events: (x: { id: string } | { bead: { id: string } }) => [
            { type, actor: 't', subject: 'bead' in x ? x.bead.id : x.id },
          ],
        });
        const made: string[] = [];
        await Promise.all(
          Array.from({ length: 16 }, async (_, w) => {
            const s = w % 2 ? a : b;
            for (let i = 0; i < 15; i++) {
              const bead = await s.create({ title: `w${w}-${i}` }, rec('bead.created'));
              made.push(bead.id);
              await (w % 3 ? a : b).close(bead.id, {}, rec('bead.closed'));
            }
          }),
        );
        done = true;
        await drain;
        await reader.close();
        expect(await a.outbox(10)).toEqual([]);
        expect(seen).toHaveLength(made.length * 2);
        // Gap-free seqs from 1, and each bead created before it closed.
        expect(seen.map((e) => e.id)).toEqual(seen.map((_, i) => i + 1));
        const at = new Map(seen.map((e, i) => [`${e.type} ${e.subject}`, i]));
        for (const id of made) {
          expect(at.get(`bead.created ${id}`)!).toBeLessThan(at.get(`bead.closed ${id}`)!);
        }
      } finally {
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });

    it('a schema newer than this gc is refused with the fix', async () => {
      const schema = await scratch.create();
      const s = await open(schema);
      try {
        await (s as unknown as { db: { run(sql: string): Promise<number> } }).db.run(
          "INSERT INTO gc_schema (version, description, applied_at) VALUES (99, 'future', 0)",
        );
      } finally {
        await s.dispose();
      }
      const err = await open(schema).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GcError);
      expect((err as GcError).message).toMatch(/schema version 99, newer than this gc knows/);
    });

    it.skipIf(kind !== 'postgres')(
      'a batch statement whose answer was lost fails and is not run again: it may have committed',
      async () => {
        const schema = await scratch.create();
        const real = await openSqlDb(server.url!, { schema, poolSize: 4 });
        await migrate(real);
        // The creates' one statement commits, then its connection is lost.
        let lose = true;
        const db: SqlDb = {
          ...real,
          async query<T>(sql: string, params?: readonly unknown[]) {
            const rows = await real.query<T>(sql, params);
            if (lose && sql.includes('pg_notify')) {
              lose = false;
              throw new DatabaseUnavailableError('test', 'the answer was lost');
            }
            return rows;
          },
        };
        const store = await SqlStore.open({ db, prefix: 'lz' });
        try {
          const rec = {
            events: (b: { id: string }) => [{ type: 'bead.created', actor: 't', subject: b.id }],
          };
          const titles = Array.from({ length: 5 }, (_, i) => `lost ${i}`);
          const got = await Promise.allSettled(titles.map((title) => store.create({ title }, rec)));
          expect(got.map((g) => g.status)).toEqual(titles.map(() => 'rejected'));
          expect(lose).toBe(false);
          // What committed is there once, with one event each.
          const rows = await real.query<{ title: string }>(
            'SELECT title FROM beads ORDER BY title',
          );
          expect(rows.map((r) => r.title)).toEqual(titles);
          const [e] = await real.query<{ n: number }>('SELECT count(*) AS n FROM events');
          expect(Number(e!.n)).toBe(titles.length);
        } finally {
          await store.dispose();
          await real.close();
        }
      },
    );
  });
}
