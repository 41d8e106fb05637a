/**
 * Usage records conformance suite, run against every backend (SQLite
 * `.gc/usage.db`, PostgreSQL, MariaDB). The factory returns fresh, empty records.
 */
import { describe, expect, it } from 'vitest';
import type { UsageRecord, UsageRecords } from './usage.js';

const T0 = Date.UTC(2026, 2, 4, 10);

export function usage(i: number, o: Partial<UsageRecord> = {}): UsageRecord {
  return {
    dedup: `claude:req_${i}`,
    session: `coder-${(i % 2) + 1}`,
    agent: 'coder',
    rig: 'app',
    bead: i % 2 ? 'gc-1' : 'gc-2',
    provider: 'claude',
    model: 'claude-sonnet-4-5',
    input_tokens: 1000,
    cached_input_tokens: 2000,
    cache_write_tokens: 100,
    output_tokens: 500,
    cost_usd: 0.5,
    source: 'claude',
    at: T0 + i * 1000,
    ...o,
  };
}

export function runUsageConformance(name: string, factory: () => Promise<UsageRecords>): void {
  describe(`Usage records conformance: ${name}`, () => {
    it('adds once per dedup key, in one batch or across batches', async () => {
      const r = await factory();
      expect(await r.add([usage(1), usage(2), usage(1)])).toBe(2);
      expect(await r.add([usage(2), usage(3)])).toBe(1);
      expect(await r.add([])).toBe(0);
      const [all] = await r.totals();
      expect(all).toEqual({
        key: '',
        records: 3,
        input_tokens: 3000,
        cached_input_tokens: 6000,
        cache_write_tokens: 300,
        output_tokens: 1500,
        tokens: 10800,
        cost_usd: 1.5,
        unpriced: 0,
      });
      await r.close();
    });

    it('groups by agent, rig, bead, model, session and provider; largest cost first', async () => {
      const r = await factory();
      await r.add([
        usage(1),
        usage(2),
        usage(3, { agent: 'reviewer', rig: 'web', model: 'gpt-5', provider: 'codex', cost_usd: 2 }),
        usage(4, { model: 'mystery', cost_usd: null }),
      ]);
      const by = async (b: Parameters<UsageRecords['totals']>[0]) =>
        (await r.totals(b)).map((t) => [t.key, t.records, t.cost_usd, t.unpriced]);
      expect(await by({ by: 'agent' })).toEqual([
        ['reviewer', 1, 2, 0],
        ['coder', 3, 1, 1],
      ]);
      expect(await by({ by: 'model' })).toEqual([
        ['gpt-5', 1, 2, 0],
        ['claude-sonnet-4-5', 2, 1, 0],
        ['mystery', 1, 0, 1],
      ]);
      expect(await by({ by: 'rig' })).toEqual([
        ['web', 1, 2, 0],
        ['app', 3, 1, 1],
      ]);
      expect((await by({ by: 'bead' })).map((x) => x[0])).toEqual(['gc-1', 'gc-2']);
      expect((await by({ by: 'session' })).map((x) => x[0]).sort()).toEqual(['coder-1', 'coder-2']);
      expect((await by({ by: 'provider' })).map((x) => x[0])).toEqual(['codex', 'claude']);
      await r.close();
    });

    it('filters by time (since inclusive, until exclusive), agent and rig', async () => {
      const r = await factory();
      await r.add([1, 2, 3, 4].map((i) => usage(i)));
      const n = async (q: Parameters<UsageRecords['totals']>[0]) =>
        (await r.totals(q))[0]?.records ?? 0;
      expect(await n({ since: T0 + 2000 })).toBe(3);
      expect(await n({ since: T0 + 2000, until: T0 + 4000 })).toBe(2);
      expect(await n({ agent: 'coder', rig: 'app' })).toBe(4);
      expect(await n({ agent: 'nobody' })).toBe(0);
      expect(await r.totals({ since: T0 + 10_000 })).toEqual([]);
      await r.close();
    });

    it('large batches and large counts keep every token', async () => {
      const r = await factory();
      const many = Array.from({ length: 450 }, (_, i) =>
        usage(i, { input_tokens: 3_000_000_000, cost_usd: 0.001 }),
      );
      expect(await r.add(many)).toBe(450);
      const [t] = await r.totals();
      expect(t!.input_tokens).toBe(450 * 3_000_000_000);
      expect(t!.cost_usd).toBeCloseTo(0.45, 6);
      await r.close();
    });

    it('an unknown grouping is refused', async () => {
      const r = await factory();
      await expect(r.totals({ by: 'owner; DROP TABLE gc_usage' as 'agent' })).rejects.toThrow(
        /cannot group by/,
      );
      await r.close();
    });
  });
}
