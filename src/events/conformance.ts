/**
 * Event log conformance suite, run against every backend. The factory
 * returns a fresh, empty log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../core/index.js';
import type { EventLog } from './event-log.js';
import type { GcEvent } from './types.js';

export type EventLogFactory = () => Promise<EventLog>;

async function collect(
  it: AsyncIterable<GcEvent>,
  n: number,
  ac: AbortController,
): Promise<GcEvent[]> {
  const out: GcEvent[] = [];
  for await (const e of it) {
    out.push(e);
    if (out.length >= n) ac.abort();
  }
  return out;
}

export interface EventLogConformanceOptions {
  /** Records in the concurrent burst (default 500; a backend that runs a program per record uses fewer). */
  burst?: number;
}

export function runEventLogConformance(
  name: string,
  factory: EventLogFactory,
  options: EventLogConformanceOptions = {},
): void {
  const burst = options.burst ?? 500;
  describe(`EventLog conformance: ${name}`, () => {
    const opened: EventLog[] = [];
    async function fresh(): Promise<EventLog> {
      const log = await factory();
      opened.push(log);
      return log;
    }
    afterEach(async () => {
      for (const l of opened.splice(0)) await l.close();
    });

    it('record fills seq and ts; list round-trips', async () => {
      const log = await fresh();
      const a = await log.record({
        type: 'bead.created',
        actor: 'alice',
        subject: 'gc-1',
        payload: { n: 1 },
      });
      const b = await log.record({
        type: 'bead.closed',
        actor: 'bob',
        message: 'done "ok"\n✓',
        ts: '2026-01-02T03:04:05.000Z',
      });
      expect(a.seq).toBe(1);
      expect(b.seq).toBe(2);
      expect(Number.isNaN(Date.parse(a.ts))).toBe(false);
      expect(b.ts).toBe('2026-01-02T03:04:05.000Z');
      const page = await log.list();
      expect(page.items).toEqual([a, b]);
      expect(page.next_after_seq).toBeNull();
    });

    it('latestSeq is 0 when empty, then tracks records', async () => {
      const log = await fresh();
      expect(await log.latestSeq()).toBe(0);
      await log.record({ type: 'x' });
      await log.record({ type: 'x' });
      expect(await log.latestSeq()).toBe(2);
    });

    it('filters alone and combined', async () => {
      const log = await fresh();
      await log.record({ type: 'bead.created', actor: 'a', ts: '2026-01-01T00:00:00.000Z' });
      await log.record({ type: 'bead.closed', actor: 'b', ts: '2026-01-02T00:00:00.000Z' });
      await log.record({ type: 'mail.sent', actor: 'a', ts: '2026-01-03T00:00:00.000Z' });
      await log.record({
        type: 'bead.created',
        actor: 'b',
        subject: 's',
        ts: '2026-01-04T00:00:00.000Z',
      });
      const seqs = async (q: Parameters<EventLog['list']>[0]): Promise<number[]> =>
        (await log.list(q)).items.map((e) => e.seq);
      expect(await seqs({ type: 'bead.created' })).toEqual([1, 4]);
      expect(await seqs({ type: 'bead.*' })).toEqual([1, 2, 4]);
      expect(await seqs({ type: ['mail.sent', 'bead.closed'] })).toEqual([2, 3]);
      expect(await seqs({ actor: 'a' })).toEqual([1, 3]);
      expect(await seqs({ since: '2026-01-02T00:00:00.000Z' })).toEqual([2, 3, 4]);
      expect(await seqs({ afterSeq: 2 })).toEqual([3, 4]);
      expect(await seqs({ subject: 's' })).toEqual([4]);
      expect(await seqs({ type: 'bead.created', actor: 'b', afterSeq: 1 })).toEqual([4]);
      expect(
        await seqs({ type: 'bead.*', since: Date.parse('2026-01-02T00:00:00.000Z'), actor: 'b' }),
      ).toEqual([2, 4]);
    });

    it('pages by after_seq', async () => {
      const log = await fresh();
      for (let i = 0; i < 25; i++) await log.record({ type: i % 2 ? 'odd' : 'even' });
      const seen: number[] = [];
      let after = 0;
      for (;;) {
        const page = await log.list({ afterSeq: after, limit: 4, type: 'odd' });
        seen.push(...page.items.map((e) => e.seq));
        if (page.next_after_seq === null) break;
        after = page.next_after_seq;
      }
      expect(seen).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
    });

    it('rejects bad input and assigns no seq to it', async () => {
      const log = await fresh();
      await expect(log.record({ type: '' })).rejects.toBeInstanceOf(ValidationError);
      await expect(log.record({ type: 'has space' })).rejects.toThrow(/event.type/);
      await expect(log.record({ type: 'x', ts: 'yesterday' })).rejects.toThrow(/event.ts/);
      await expect(
        log.record({ type: 'x', payload: 'p'.repeat(1024 * 1024 + 10) }),
      ).rejects.toThrow(/limit/);
      expect((await log.record({ type: 'ok' })).seq).toBe(1);
      await expect(log.list({ afterSeq: -1 })).rejects.toThrow(/after_seq/);
    });

    it('concurrent records stay gap-free and ordered by call', async () => {
      const log = await fresh();
      const results = await Promise.all(
        Array.from({ length: burst }, (_, i) => log.record({ type: 'burst', payload: { i } })),
      );
      expect(results.map((e) => e.seq)).toEqual(Array.from({ length: burst }, (_, i) => i + 1));
      const all: GcEvent[] = [];
      let after = 0;
      for (;;) {
        const page = await log.list({ afterSeq: after, limit: 128 });
        all.push(...page.items);
        if (page.next_after_seq === null) break;
        after = page.next_after_seq;
      }
      expect(all.map((e) => (e.payload as { i: number }).i)).toEqual(
        Array.from({ length: burst }, (_, i) => i),
      );
    });

    it('watch yields existing events, then new ones, with no gap or duplicate', async () => {
      const log = await fresh();
      await log.record({ type: 'a' });
      await log.record({ type: 'b' });
      const ac = new AbortController();
      const done = collect(log.watch(0, { signal: ac.signal }), 6, ac);
      // Records racing with the replay must still appear exactly once.
      const writes = Promise.all([log.record({ type: 'c' }), log.record({ type: 'd' })]);
      await writes;
      await log.record({ type: 'e' });
      await log.record({ type: 'f' });
      const got = await done;
      expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(got.map((e) => e.type)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    });

    it('watch after a seq, with a filter', async () => {
      const log = await fresh();
      for (const t of ['x', 'y', 'x', 'y']) await log.record({ type: t });
      const ac = new AbortController();
      const done = collect(log.watch(1, { signal: ac.signal, filter: { type: 'x' } }), 2, ac);
      await log.record({ type: 'y' });
      await log.record({ type: 'x' });
      expect((await done).map((e) => e.seq)).toEqual([3, 6]);
    });

    it('watch stops on abort with nothing new', async () => {
      const log = await fresh();
      const ac = new AbortController();
      const it = log.watch(0, { signal: ac.signal });
      const done = (async () => {
        const out: GcEvent[] = [];
        for await (const e of it) out.push(e);
        return out;
      })();
      setTimeout(() => ac.abort(), 50);
      expect(await done).toEqual([]);
    });
  });
}
