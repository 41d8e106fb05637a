import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqlServers } from '../db/index.js';
import { onEachServer } from '../../test/helpers/db.js';
import { runIdempotencyConformance } from './idempotency-conformance.js';
import { SqlIdempotency } from './idempotency-sql.js';
import { IdempotencyStore } from './idempotency.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-idem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runIdempotencyConformance('sqlite', (clock) =>
  Promise.resolve(new IdempotencyStore(join(dir, `api${n++}.db`), () => clock.now())),
);

await onEachServer('idempotency', (kind, fresh) => {
  runIdempotencyConformance(
    kind,
    async (clock) => new SqlIdempotency(await fresh({ poolSize: 8 }), clock),
  );

  describe(`${kind}: pending requests of several servers`, () => {
    it("a retry takes over a pending request whose server is gone, not one whose server lives; a starting server clears only the gone servers' rows", async () => {
      const db = await fresh({ poolSize: 4 });
      const servers = new SqlServers(db);
      const row = (id: string) => ({
        id,
        host: 'h',
        pid: 1,
        role: 'replica' as const,
        provider: 'fake',
        socket: '',
        url: '',
        term: 0,
        started_at: 0,
      });
      await servers.beat(row('a'));
      await servers.beat(row('b'));
      const a = new SqlIdempotency(db, undefined, 'a', 60_000);
      const b = new SqlIdempotency(db, undefined, 'b', 60_000);
      const gone = new SqlIdempotency(db, undefined, 'gone', 60_000);
      expect(await a.begin('k', 'live', 'fp')).toEqual({ state: 'new' });
      expect(await gone.begin('k', 'dead', 'fp')).toEqual({ state: 'new' });
      // a runs: its request is in progress for everyone else.
      expect(await b.begin('k', 'live', 'fp')).toEqual({ state: 'in_progress' });
      // "gone" never registered (or stopped being seen): b takes its request over.
      expect(await b.begin('k', 'dead', 'fp')).toEqual({ state: 'new' });
      // Now the retry holds it, as b: a third try waits for b.
      expect(await a.begin('k', 'dead', 'fp')).toEqual({ state: 'in_progress' });
      expect(await gone.begin('k', 'other', 'fp')).toEqual({ state: 'new' });
      expect(await b.clearPending()).toBe(1);
      expect(await b.begin('k', 'live', 'fp')).toEqual({ state: 'in_progress' });
      // A server of this host whose process is gone is gone at once, however recently seen.
      await servers.beat({ ...row('crashed'), host: 'here', pid: 2 ** 22 + 7 });
      await servers.beat({ ...row('running'), host: 'here', pid: process.pid });
      const crashed = new SqlIdempotency(db, undefined, 'crashed', 60_000);
      const running = new SqlIdempotency(db, undefined, 'running', 60_000);
      const here = new SqlIdempotency(db, undefined, 'b', 60_000, 'here');
      expect(await crashed.begin('k', 'c1', 'fp')).toEqual({ state: 'new' });
      expect(await running.begin('k', 'r1', 'fp')).toEqual({ state: 'new' });
      expect(await b.begin('k', 'c1', 'fp')).toEqual({ state: 'in_progress' });
      expect(await here.begin('k', 'c1', 'fp')).toEqual({ state: 'new' });
      expect(await here.begin('k', 'r1', 'fp')).toEqual({ state: 'in_progress' });
      for (const x of [a, b, gone, crashed, running, here]) await x.close();
    });
  });
});
