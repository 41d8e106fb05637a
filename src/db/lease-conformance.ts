/**
 * Lease conformance suite, run against every backend (in memory,
 * PostgreSQL, MariaDB). The factory returns fresh leases and a way to run
 * `fence` in a transaction of that backend.
 */
import { describe, expect, it } from 'vitest';
import { FencedError, type Leases } from './lease.js';

export interface LeaseHarness {
  leases: Leases;
  /** Run `fence(name, holder, term)` the backend's way (in a transaction on a database). */
  fence(name: string, holder: string, term: number): Promise<void>;
  /** Let `ms` pass for the backend's clock. */
  pass(ms: number): Promise<void>;
}

export function runLeaseConformance(name: string, factory: () => Promise<LeaseHarness>): void {
  describe(`Lease conformance: ${name}`, () => {
    it('the first holder takes it at term 1; others see it held; the holder renews', async () => {
      const { leases } = await factory();
      expect(await leases.get('leader')).toMatchObject({ holder: '', term: 0 });
      const a = await leases.acquire('leader', 'srv-a', 5_000);
      expect(a.held).toBe(true);
      expect(a.lease).toMatchObject({ name: 'leader', holder: 'srv-a', term: 1 });
      expect(a.lease.expires_at).toBeGreaterThan(a.lease.acquired_at);
      const b = await leases.acquire('leader', 'srv-b', 5_000);
      expect(b.held).toBe(false);
      expect(b.lease).toMatchObject({ holder: 'srv-a', term: 1 });
      // Acquire by the holder renews it: the same term.
      const again = await leases.acquire('leader', 'srv-a', 5_000);
      expect(again).toMatchObject({ held: true, lease: { holder: 'srv-a', term: 1 } });
      expect(await leases.renew('leader', 'srv-a', 1, 5_000)).toBe(true);
      expect(await leases.renew('leader', 'srv-b', 1, 5_000)).toBe(false);
      expect(await leases.renew('leader', 'srv-a', 2, 5_000)).toBe(false);
      // Names are independent.
      expect((await leases.acquire('other', 'srv-b', 5_000)).held).toBe(true);
    });

    it('a lapsed lease goes to the next holder at a new term; the old one is fenced out', async () => {
      const h = await factory();
      const { leases } = h;
      await leases.acquire('leader', 'srv-a', 300);
      await h.fence('leader', 'srv-a', 1);
      await h.pass(700);
      await expect(h.fence('leader', 'srv-a', 1)).rejects.toBeInstanceOf(FencedError);
      const b = await leases.acquire('leader', 'srv-b', 5_000);
      expect(b).toMatchObject({ held: true, lease: { holder: 'srv-b', term: 2 } });
      expect(await leases.renew('leader', 'srv-a', 1, 5_000)).toBe(false);
      await expect(h.fence('leader', 'srv-a', 1)).rejects.toBeInstanceOf(FencedError);
      await h.fence('leader', 'srv-b', 2);
      // The old holder coming back takes nothing while the new one holds it.
      expect((await leases.acquire('leader', 'srv-a', 5_000)).held).toBe(false);
    });

    it('release hands it over at once; only the holder of that term can release', async () => {
      const { leases } = await factory();
      await leases.acquire('leader', 'srv-a', 60_000);
      await leases.release('leader', 'srv-b', 1);
      await leases.release('leader', 'srv-a', 7);
      expect((await leases.get('leader')).holder).toBe('srv-a');
      await leases.release('leader', 'srv-a', 1);
      expect((await leases.get('leader')).holder).toBe('');
      const b = await leases.acquire('leader', 'srv-b', 60_000);
      expect(b).toMatchObject({ held: true, lease: { holder: 'srv-b', term: 2 } });
    });

    it('many contenders at once: exactly one holds it', async () => {
      const { leases } = await factory();
      const got = await Promise.all(
        Array.from({ length: 12 }, (_, i) => leases.acquire('leader', `srv-${i}`, 60_000)),
      );
      const holders = got.filter((g) => g.held).map((g) => g.lease.holder);
      expect(holders).toHaveLength(1);
      expect((await leases.get('leader')).holder).toBe(holders[0]);
      expect((await leases.get('leader')).term).toBe(1);
    });

    it('a bad lease time is refused', async () => {
      const { leases } = await factory();
      await expect(leases.acquire('leader', 'srv-a', 0)).rejects.toThrow(/positive whole number/);
      expect((await leases.get('leader')).holder).toBe('');
    });
  });
}
