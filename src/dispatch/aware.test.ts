/** Conflict-aware claims over a real CityOps: races, fallbacks, in-flight merge requests. */
import { describe, expect, it } from 'vitest';
import { CityOps } from '../city/index.js';
import { MemoryEventLog } from '../events/index.js';
import { MemoryStore } from '../store/index.js';
import { claimNextAware, holdReasons } from './index.js';

async function city(paths: (string | undefined)[]) {
  const ops = new CityOps(new MemoryStore(), new MemoryEventLog());
  const ids: string[] = [];
  for (const [i, p] of paths.entries()) {
    const b = await ops.createBead('mayor', {
      title: `b${i}`,
      priority: Math.min(i, 4),
      ...(p ? { metadata: { 'gc.paths': p } } : {}),
    });
    ids.push(b.id);
  }
  return { ops, ids };
}

describe('claimNextAware', () => {
  it('claimers racing for the same candidates each get a different bead', async () => {
    const { ops, ids } = await city(['a', 'b', 'c', 'd', 'e', 'f']);
    const got = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        claimNextAware(ops, `c${i}`, {}, () => Promise.resolve([])),
      ),
    );
    expect(got.map((b) => b?.id).sort()).toEqual([...ids].sort());
    expect(await claimNextAware(ops, 'late', {}, () => Promise.resolve([]))).toBeNull();
  });

  it('strict: claimers racing over overlapping beads never hold two at once', async () => {
    const { ops } = await city(['src/x.js', 'src/x.js', 'src/x.js']);
    const got = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        claimNextAware(ops, `c${i}`, {}, () => Promise.resolve([]), 'strict'),
      ),
    );
    expect(got.filter((b) => b !== null)).toHaveLength(1);
  });

  it('a bead whose merge request waits is in flight even when closed', async () => {
    const { ops, ids } = await city(['src/x.js', 'src/x.js', undefined]);
    const [a, b, c] = ids as [string, string, string];
    await ops.closeBead('agent', a, 'done');
    expect(await holdReasons(ops, [await ops.store.get(b)], () => Promise.resolve([a]))).toEqual({
      [b]: `held back: overlaps ${a} (src/x.js)`,
    });
    expect((await claimNextAware(ops, 'c1', {}, () => Promise.resolve([a])))?.id).toBe(c);
    // Merged: nothing in flight any more.
    expect(await holdReasons(ops, [await ops.store.get(b)], () => Promise.resolve([]))).toEqual({});
    expect((await claimNextAware(ops, 'c2', {}, () => Promise.resolve([])))?.id).toBe(b);
  });

  it('keeps the lease asked for and the query filters', async () => {
    const { ops, ids } = await city(['p', undefined]);
    await ops.updateBead('mayor', ids[1]!, { labels: ['x'] });
    const b = await claimNextAware(ops, 'c1', { label: 'x', leaseMs: 60_000 }, () =>
      Promise.resolve([]),
    );
    expect(b?.id).toBe(ids[1]);
    expect(Date.parse(b!.lease_expires_at!) - Date.now()).toBeLessThanOrEqual(60_000);
  });
});
