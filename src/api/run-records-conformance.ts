/**
 * Run records conformance suite, run against every backend (SQLite
 * `.gc/api.db`, PostgreSQL, MariaDB). The factory returns fresh, empty records.
 */
import { describe, expect, it } from 'vitest';
import type { NewRun, RunRecords } from './run-records.js';

export function runRunRecordsConformance(name: string, factory: () => Promise<RunRecords>): void {
  const run = (i: number, owner = 'k1'): NewRun => ({
    id: `run-${i}`,
    session: `run-${i}`,
    template: 'worker',
    owner: `op-${owner}`,
    owner_key: owner,
    owner_kind: 'operator',
    created_at: `2026-01-01T00:00:0${i}.000Z`,
  });

  describe(`Run records conformance: ${name}`, () => {
    it('insert, get, end: the row round-trips with its seq in start order', async () => {
      const r = await factory();
      const a = await r.insert(run(1));
      const b = await r.insert(run(2));
      expect(b.seq).toBeGreaterThan(a.seq);
      expect(a).toEqual({
        ...run(1),
        seq: a.seq,
        state: 'running',
        exit_code: null,
        error: '',
        ended_at: null,
      });
      expect(await r.get('run-1')).toEqual(a);
      expect(await r.get('run-none')).toBeUndefined();
      await r.end(a.seq, 'exited', 3, '', '2026-01-01T00:01:00.000Z');
      await r.end(b.seq, 'failed', null, 'no such "agent"\n', '2026-01-01T00:02:00.000Z');
      expect(await r.get('run-1')).toMatchObject({
        state: 'exited',
        exit_code: 3,
        ended_at: '2026-01-01T00:01:00.000Z',
      });
      expect(await r.get('run-2')).toMatchObject({ state: 'failed', error: 'no such "agent"\n' });
      expect(await r.running()).toEqual([]);
    });

    it('lists in start order by page, all or one owner', async () => {
      const r = await factory();
      for (let i = 1; i <= 5; i++) await r.insert(run(i, i % 2 ? 'odd' : 'even'));
      const all = await r.list(0, 3);
      expect(all.map((x) => x.id)).toEqual(['run-1', 'run-2', 'run-3']);
      const rest = await r.list(all[2]!.seq, 10);
      expect(rest.map((x) => x.id)).toEqual(['run-4', 'run-5']);
      expect((await r.list(0, 10, 'even')).map((x) => x.id)).toEqual(['run-2', 'run-4']);
      expect((await r.running()).map((x) => x.id)).toEqual([
        'run-1',
        'run-2',
        'run-3',
        'run-4',
        'run-5',
      ]);
    });

    it('a second run with the same id is refused', async () => {
      const r = await factory();
      await r.insert(run(1));
      await expect(r.insert(run(1))).rejects.toThrow();
      expect(await r.list(0, 10)).toHaveLength(1);
    });
  });
}
