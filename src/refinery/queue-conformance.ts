/**
 * Merge queue table conformance suite, run against every backend (SQLite
 * in memory and in a file, PostgreSQL, MariaDB). The factory returns a
 * fresh, empty queue whose clock the suite moves.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../core/index.js';
import type { MergeQueue } from './queue.js';

export interface QueueFactory {
  (clock: { now(): number }): Promise<MergeQueue>;
}

const sha = (n: number) => n.toString(16).padStart(40, '0');

export function runQueueConformance(name: string, factory: QueueFactory): void {
  let t = 1_000_000;
  const clock = { now: () => t };
  const fresh = () => factory(clock);

  describe(`Merge queue conformance: ${name}`, () => {
    it('submit: a row per request, the same branch and head once, numbers as numbers', async () => {
      const q = await fresh();
      const a = await q.submit({
        rig: 'app',
        branch: 'a',
        head: sha(1),
        author: 'w1',
        bead: 'b-1',
      });
      expect(a.created).toBe(true);
      expect(a.request).toMatchObject({
        rig: 'app',
        branch: 'a',
        head: sha(1),
        bead: 'b-1',
        author: 'w1',
        priority: 2,
        state: 'queued',
        submitted_at: t,
        retries: 0,
        started_at: null,
        finished_at: null,
        reason: '',
        detail: '',
      });
      expect(typeof a.request.seq).toBe('number');
      const again = await q.submit({ rig: 'app', branch: 'a', head: sha(1), author: 'w1' });
      expect(again).toEqual({ request: a.request, created: false, superseded: [] });
      expect(await q.get(a.request.id)).toEqual(a.request);
      await expect(q.get('mr-none')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('bad input is refused and changes nothing', async () => {
      const q = await fresh();
      const base = { rig: 'app', branch: 'a', head: sha(1), author: 'w1' };
      await expect(q.submit({ ...base, head: 'HEAD' })).rejects.toBeInstanceOf(ValidationError);
      await expect(q.submit({ ...base, branch: ' ' })).rejects.toBeInstanceOf(ValidationError);
      await expect(q.submit({ ...base, priority: 7 })).rejects.toBeInstanceOf(ValidationError);
      await expect(q.submit({ ...base, branch: 'b'.repeat(256) })).rejects.toThrow(/at most 255/);
      expect(await q.list()).toEqual([]);
    });

    it('a newer submission supersedes the same branch or bead; agents replace only their own', async () => {
      const q = await fresh();
      const a = await q.submit({
        rig: 'app',
        branch: 'a',
        head: sha(1),
        author: 'w1',
        bead: 'b-1',
      });
      t += 10;
      const b = await q.submit({ rig: 'app', branch: 'a', head: sha(2), author: 'w1' });
      expect(b.superseded).toEqual([a.request.id]);
      expect(await q.get(a.request.id)).toMatchObject({ state: 'superseded', finished_at: t });
      const c = await q.submit({
        rig: 'app',
        branch: 'c',
        head: sha(3),
        author: 'w2',
        bead: 'b-3',
      });
      await expect(
        q.submit({
          rig: 'app',
          branch: 'd',
          head: sha(4),
          author: 'w1',
          bead: 'b-3',
          ownOnly: true,
        }),
      ).rejects.toBeInstanceOf(ForbiddenError);
      expect((await q.get(c.request.id)).state).toBe('queued');
      // Another rig's branch of the same name is its own.
      const other = await q.submit({ rig: 'web', branch: 'a', head: sha(2), author: 'w1' });
      expect(other.created).toBe(true);
      expect((await q.get(b.request.id)).state).toBe('queued');
    });

    it('the life of a request: testing, merging, merged once; attempts and builds feed the stats', async () => {
      const q = await fresh();
      const { request: mr } = await q.submit({
        rig: 'app',
        branch: 'a',
        head: sha(1),
        author: 'w',
      });
      t += 100;
      expect(await q.startTesting(mr.id, sha(9))).toBe(true);
      expect(await q.unfinished('app')).toMatchObject([{ id: mr.id, state: 'testing' }]);
      expect(await q.markMerging(mr.id, sha(9), sha(10))).toMatchObject({
        state: 'merging',
        base: sha(9),
        tested: sha(10),
        started_at: t,
      });
      t += 100;
      const done = await q.markMerged(mr.id, sha(11));
      expect(done).toMatchObject({ state: 'merged', merged_sha: sha(11), finished_at: t });
      expect(await q.markMerged(mr.id, sha(11))).toEqual(done);
      expect(await q.startTesting(mr.id, sha(9))).toBe(false);
      await q.recordBuild('app', { size: 1, outcome: 'passed', depth: 0, gateRuns: 2 });
      await q.recordBuild('app', { size: 3, outcome: 'cancelled', depth: 0, gateRuns: 0 });
      await q.recordBuild('app', { size: 2, outcome: 'split', depth: 1, gateRuns: 0 });
      const s = await q.stats('app');
      expect(s).toMatchObject({
        rig: 'app',
        depth: 0,
        in_flight: 0,
        merged_total: 1,
        merged_last_hour: 1,
        conflict_rate: 0,
        wait_ms_p50: 100,
        merge_ms_p50: 200,
        builds: 1,
        gate_runs: 2,
        wasted_builds: 1,
        batch_size_mean: 1,
        batch_size_max: 1,
        bisect_depth_max: 1,
        batch_splits: 1,
      });
      expect(s.merges_per_hour).toBeGreaterThan(0);
    });

    it('conflict and gate failure send it back; retry and reject follow the states', async () => {
      const q = await fresh();
      const a = (await q.submit({ rig: 'app', branch: 'a', head: sha(1), author: 'w' })).request;
      const b = (await q.submit({ rig: 'app', branch: 'b', head: sha(2), author: 'w' })).request;
      await q.startTesting(a.id, sha(9));
      expect(await q.markConflict(a.id, ['x.ts', 'y.ts'], 'b-c')).toMatchObject({
        state: 'needs-rebase',
        reason: 'conflict',
        detail: 'x.ts\ny.ts',
        conflict_bead: 'b-c',
      });
      await q.setConflictBead(a.id, 'b-d');
      expect((await q.get(a.id)).conflict_bead).toBe('b-d');
      const long = 'output line\n'.repeat(20_000);
      expect(await q.markGateFailed(b.id, 'test', long)).toMatchObject({
        state: 'needs-fix',
        reason: 'test',
        detail: long,
      });
      expect((await q.stats('app')).conflict_rate).toBe(0.5);
      expect(await q.retry(a.id)).toMatchObject({ state: 'queued', retries: 1, finished_at: null });
      await expect(q.retry(a.id)).rejects.toBeInstanceOf(ConflictError);
      await expect(q.retry('mr-none')).rejects.toBeInstanceOf(NotFoundError);
      expect(await q.reject(a.id, 'not now')).toMatchObject({
        state: 'rejected',
        detail: 'not now',
      });
      await expect(q.reject(a.id, 'again')).rejects.toBeInstanceOf(ConflictError);
      expect((await q.retry(a.id)).retries).toBe(2);
      await q.startTesting(a.id, sha(9));
      await q.markMerging(a.id, sha(9), sha(10));
      await expect(q.reject(a.id, 'too late')).rejects.toThrow(/merging/);
      await q.requeue(a.id);
      expect(await q.get(a.id)).toMatchObject({ state: 'queued', tested: '' });
    });

    it('lists page newest first; queued comes in merge order; pending beads are found', async () => {
      const q = await fresh();
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const r = await q.submit({
          rig: i % 2 ? 'app' : 'web',
          branch: `b${i}`,
          head: sha(i),
          author: 'w',
          bead: `b-${i}`,
          priority: i === 5 ? 0 : 2,
        });
        ids.push(r.request.id);
      }
      const all = await q.list({ limit: 3 });
      expect(all.map((m) => m.id)).toEqual([ids[4], ids[3], ids[2]]);
      const next = await q.list({ limit: 3, before: all[2]!.seq });
      expect(next.map((m) => m.id)).toEqual([ids[1], ids[0]]);
      expect((await q.list({ rig: 'web' })).map((m) => m.id)).toEqual([ids[3], ids[1]]);
      expect((await q.queued('app')).map((m) => m.id)).toEqual([ids[4], ids[0], ids[2]]);
      expect(await q.depth('app')).toBe(3);
      await q.startTesting(ids[0]!, sha(9));
      await q.markGateFailed(ids[0]!, 'test', '');
      expect((await q.list({ states: ['needs-fix'] })).map((m) => m.id)).toEqual([ids[0]]);
      expect(await q.hasPending('b-1')).toBe(true);
      expect(await q.hasPending('b-9')).toBe(false);
      expect((await q.forBead('b-1')).map((m) => [m.id, m.state])).toEqual([[ids[0], 'needs-fix']]);
      expect(await q.forBead('b-9')).toEqual([]);
      expect(await q.forBead('')).toEqual([]);
      expect((await q.queuedBeads()).sort()).toEqual(['b-2', 'b-3', 'b-4', 'b-5']);
    });

    it('concurrent submissions: one request per branch and head, one queued per branch', async () => {
      const q = await fresh();
      const same = await Promise.all(
        Array.from({ length: 12 }, () =>
          q.submit({ rig: 'app', branch: 'hot', head: sha(100), author: 'w' }),
        ),
      );
      expect(same.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(same.map((r) => r.request.id)).size).toBe(1);
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          q.submit({ rig: 'app', branch: `f${i % 4}`, head: sha(200 + i), author: 'w' }),
        ),
      );
      const queued = (await q.list({ rig: 'app', limit: 1000 })).filter(
        (m) => m.state === 'queued',
      );
      expect(queued.map((m) => m.branch).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'hot']);
    });
  });
}
