/**
 * Idempotency records conformance suite, run against every backend (SQLite
 * `.gc/api.db`, PostgreSQL, MariaDB). The factory returns fresh, empty
 * records reading time from the given clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, armFaults } from '../core/index.js';
import { IDEMPOTENCY_TTL_MS, type IdempotencyRecords } from './idempotency.js';

export type IdempotencyFactory = (clock: FakeClock) => Promise<IdempotencyRecords>;

export function runIdempotencyConformance(name: string, factory: IdempotencyFactory): void {
  describe(`Idempotency conformance: ${name}`, () => {
    const opened: IdempotencyRecords[] = [];
    let clock: FakeClock;
    async function fresh(): Promise<IdempotencyRecords> {
      clock = new FakeClock();
      const r = await factory(clock);
      opened.push(r);
      return r;
    }
    afterEach(async () => {
      for (const r of opened.splice(0)) await r.close();
    });

    it('a kept answer is replayed for the same request and refused for another', async () => {
      const r = await fresh();
      expect(await r.begin('k1', 'key', 'fp-a')).toEqual({ state: 'new' });
      await r.finish('k1', 'key', 201, '{"id":"gc-1"}');
      expect(await r.begin('k1', 'key', 'fp-a')).toEqual({
        state: 'replay',
        status: 201,
        body: '{"id":"gc-1"}',
      });
      expect(await r.begin('k1', 'key', 'fp-b')).toEqual({ state: 'mismatch' });
      // Another API key's records are its own.
      expect(await r.begin('k2', 'key', 'fp-b')).toEqual({ state: 'new' });
    });

    it('a pending claim answers in progress until it is stale, then may be taken', async () => {
      const r = await fresh();
      expect((await r.begin('k', 'x', 'fp')).state).toBe('new');
      expect((await r.begin('k', 'x', 'fp')).state).toBe('in_progress');
      clock.advance(60_000);
      expect((await r.begin('k', 'x', 'fp')).state).toBe('in_progress');
      clock.advance(61_000);
      expect((await r.begin('k', 'x', 'fp')).state).toBe('new');
    });

    it('server errors and abandoned claims are forgotten, so the retry runs', async () => {
      const r = await fresh();
      await r.begin('k', 'five', 'fp');
      await r.finish('k', 'five', 503, '{"error":{}}');
      expect((await r.begin('k', 'five', 'fp')).state).toBe('new');
      await r.abandon('k', 'five');
      expect((await r.begin('k', 'five', 'fp')).state).toBe('new');
      // Abandoning a finished answer leaves it.
      await r.finish('k', 'five', 200, '{}');
      await r.abandon('k', 'five');
      expect((await r.begin('k', 'five', 'fp')).state).toBe('replay');
    });

    it('a claim whose answer could not be written is taken by the retry at once', async () => {
      const r = await fresh();
      expect((await r.begin('k', 'lost', 'fp')).state).toBe('new');
      expect((await r.begin('k', 'kept', 'fp')).state).toBe('new');
      // The handler ended, but its answer never reached the records.
      armFaults('idempotency.write:EIO:2');
      try {
        await expect(r.finish('k', 'lost', 200, '{}')).rejects.toThrow(/EIO/);
        await expect(r.abandon('k', 'kept')).rejects.toThrow(/EIO/);
      } finally {
        armFaults('');
      }
      expect((await r.begin('k', 'lost', 'fp')).state).toBe('new');
      expect((await r.begin('k', 'kept', 'fp')).state).toBe('new');
      // Its own new claim is in progress again while it runs.
      expect((await r.begin('k', 'lost', 'fp')).state).toBe('in_progress');
    });

    it('answers expire after the TTL: a new claim, and prune drops the old', async () => {
      const r = await fresh();
      await r.begin('k', 'old', 'fp');
      await r.finish('k', 'old', 200, '{}');
      await r.begin('k', 'gone', 'fp');
      await r.finish('k', 'gone', 200, '{}');
      clock.advance(IDEMPOTENCY_TTL_MS + 1000);
      expect(await r.begin('k', 'old', 'other')).toEqual({ state: 'new' });
      expect(await r.prune()).toBe(1);
      expect((await r.begin('k', 'old', 'other')).state).toBe('in_progress');
    });

    it('concurrent claims of one key: exactly one runs', async () => {
      const r = await fresh();
      const got = await Promise.all(Array.from({ length: 20 }, () => r.begin('k', 'race', 'fp')));
      expect(got.filter((b) => b.state === 'new')).toHaveLength(1);
      expect(got.filter((b) => b.state === 'in_progress')).toHaveLength(19);
    });
  });
}
