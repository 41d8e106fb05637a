/**
 * Retention of the SQL event log: the oldest events go, by count and by
 * age, always as a prefix (what is kept stays gap-free). Walks from the
 * oldest seq in primary-key order, so the work is proportional to what is
 * dropped, not to the size of the log.
 */
import type { SqlDb } from '../db/index.js';

export interface Retention {
  /** Keep at most this many of the newest events (0 or absent: no limit). */
  maxEvents?: number | undefined;
  /** Drop events older than this (ms; 0 or absent: no limit). */
  maxAgeMs?: number | undefined;
}

const STEP = 5000;

/** Delete the dropped prefix; returns its seq range, or undefined when nothing went. */
export async function pruneEvents(
  db: SqlDb,
  r: Retention,
  now: number,
): Promise<{ first: number; last: number } | undefined> {
  const [lo] = await db.query<{ seq: number | null }>('SELECT min(seq) AS seq FROM events');
  const oldest = lo?.seq === null || lo?.seq === undefined ? 0 : Number(lo.seq);
  if (!oldest) return undefined;
  const [hi] = await db.query<{ next: number }>('SELECT next FROM event_seq WHERE id = 1');
  const latest = Number(hi?.next ?? 0);
  let cut = oldest - 1;
  if (r.maxEvents && latest - r.maxEvents > cut) cut = latest - r.maxEvents;
  if (r.maxAgeMs) {
    const before = now - r.maxAgeMs;
    for (;;) {
      const rows = await db.query<{ seq: number; ts_ms: number }>(
        `SELECT seq, ts_ms FROM events WHERE seq > ? ORDER BY seq LIMIT ${STEP}`,
        [cut],
      );
      let young = false;
      for (const row of rows) {
        if (Number(row.ts_ms) >= before) {
          young = true;
          break;
        }
        cut = Number(row.seq);
      }
      if (young || rows.length < STEP) break;
    }
  }
  if (cut < oldest) return undefined;
  // In slices, so no single statement holds locks on millions of rows.
  for (let from = oldest; from <= cut; from += STEP) {
    await db.run('DELETE FROM events WHERE seq >= ? AND seq <= ?', [
      from,
      Math.min(cut, from + STEP - 1),
    ]);
  }
  return { first: oldest, last: cut };
}
