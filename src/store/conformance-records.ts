/**
 * Store conformance, write records: the events and request results that
 * commit with a write (see `WriteRecord`). Every backend runs it beside the
 * main suite (`runStoreConformance`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, ValidationError } from '../core/index.js';
import type { StoreFactory } from './conformance.js';
import type { Store } from './store.js';
import type { Bead, OutboxRow, RequestRef } from './types.js';

export interface RecordConformanceOptions {
  /**
   * For a store that appends its events to the event log in the write's
   * own transaction (the SQL stores): the events it committed, read from
   * there. Its outbox must then stay empty. Absent: the events are read
   * from the outbox, which the city drains to the log.
   */
  committed?: (s: Store) => Promise<OutboxRow[]>;
}

export function runRecordConformance(
  name: string,
  factory: StoreFactory,
  options: RecordConformanceOptions = {},
): void {
  const committed = options.committed ?? ((s: Store) => s.outbox());
  describe(`Store conformance, write records: ${name}`, () => {
    const opened: Store[] = [];
    let clock: FakeClock;
    async function fresh(): Promise<Store> {
      clock = new FakeClock();
      const s = await factory({ clock, prefix: 'wr' });
      opened.push(s);
      return s;
    }
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.dispose();
    });
    const req = (n: number, fp = 'fp'): RequestRef => ({ scope: 'k1', key: 'key-1', fp, n });

    it('events commit with the write, in order, stamped with the commit time', async () => {
      const s = await fresh();
      const a = await s.create(
        { title: 'a' },
        { events: (b) => [{ type: 'bead.created', actor: 'x', subject: b.id, payload: { n: 1 } }] },
      );
      await s.claim(
        a.id,
        'w',
        {},
        {
          events: (b) => [
            { type: 'bead.updated', actor: 'w', subject: b.id, message: 'one' },
            { type: 'bead.updated', actor: 'w', subject: b.id, message: 'two' },
          ],
        },
      );
      const rows = await committed(s);
      expect(rows.map((r) => [r.event.type, r.event.subject, r.event.message])).toEqual([
        ['bead.created', a.id, undefined],
        ['bead.updated', a.id, 'one'],
        ['bead.updated', a.id, 'two'],
      ]);
      expect(rows[0]!.event.ts).toBe(new Date(clock.now()).toISOString());
      expect(rows[0]!.event.payload).toEqual({ n: 1 });
      expect(rows[1]!.id).toBeGreaterThan(rows[0]!.id);
      if (options.committed) {
        expect(await s.outbox()).toEqual([]);
        return;
      }
      await s.ackOutbox(rows[1]!.id);
      expect((await s.outbox()).map((r) => r.event.message)).toEqual(['two']);
      await s.ackOutbox(rows[2]!.id);
      expect(await s.outbox()).toEqual([]);
    });

    it('a write that fails leaves no events and keeps no result', async () => {
      const s = await fresh();
      await expect(
        s.create(
          { title: '' },
          { events: () => [{ type: 'bead.created', actor: 'x' }], request: req(0) },
        ),
      ).rejects.toThrow(ValidationError);
      expect(await committed(s)).toEqual([]);
      const b = await s.create({ title: 'now' }, { request: req(0) });
      expect(b.title).toBe('now');
    });

    it('the same write of the same request returns its first result and changes nothing', async () => {
      const s = await fresh();
      const ev = { events: (b: Bead) => [{ type: 'bead.created', actor: 'x', subject: b.id }] };
      const first = await s.create({ title: 'once' }, { ...ev, request: req(0) });
      const again = await s.create({ title: 'once' }, { ...ev, request: req(0) });
      expect(again).toEqual(first);
      expect(await s.count()).toBe(1);
      expect((await committed(s)).length).toBe(1);
      // The request's second write is a different write.
      const second = await s.create({ title: 'twice' }, { ...ev, request: req(1) });
      expect(second.id).not.toBe(first.id);
      // The same key for a different request is refused.
      await expect(s.create({ title: 'other' }, { request: req(0, 'other') })).rejects.toThrow(
        ValidationError,
      );
    });

    it('a batch commits its events with it; a retry of its request makes nothing new', async () => {
      const s = await fresh();
      const rec = {
        events: (made: Bead[]) =>
          made.map((b) => ({ type: 'bead.created', actor: 'x', subject: b.id })),
        request: req(0),
      };
      const inputs = [{ title: 'root' }, { title: 'step', parent: '#0' }];
      const made = await s.createMany(inputs, rec);
      expect((await committed(s)).map((r) => r.event.subject)).toEqual(made.map((b) => b.id));
      expect(await s.createMany(inputs, rec)).toEqual(made);
      expect(await s.count()).toBe(2);
      await expect(
        s.createMany([{ title: 'x' }, { title: '' }], { ...rec, request: req(1) }),
      ).rejects.toThrow(ValidationError);
      expect((await committed(s)).length).toBe(2);
    });

    it('a claim kept for a request is the claim a retry gets', async () => {
      const s = await fresh();
      await s.create({ title: 'w1' });
      await s.create({ title: 'w2' });
      const got = await s.claimNextReady('alice', {}, { request: req(0) });
      const retry = await s.claimNextReady('alice', {}, { request: req(0) });
      expect(retry).toEqual(got);
      expect(await s.count({ status: 'in_progress' })).toBe(1);
    });

    it('a result the write says not to keep is not kept', async () => {
      const s = await fresh();
      const none = await s.claimNextReady('bob', {}, { request: req(0), keep: (b) => b !== null });
      expect(none).toBeNull();
      const w = await s.create({ title: 'arrives' });
      const got = await s.claimNextReady('bob', {}, { request: req(0), keep: (b) => b !== null });
      expect(got?.id).toBe(w.id);
    });
  });
}
