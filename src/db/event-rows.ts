/**
 * Appending to the event log table (schema v3), shared by the event log and
 * by store writes, which record their events in their own transaction.
 */
import { eventChannel, takeSeqs, type SqlConn } from './db.js';

/** An event as stored, before its seq: the log's GcEvent without seq. */
export interface EventRowInput {
  type: string;
  ts: string;
  actor: string;
  subject?: string | undefined;
  message?: string | undefined;
  payload?: unknown;
}

/**
 * Insert `events` in `tx` with the next seqs; returns the first seq. Takes
 * the counter row, so call it last in the transaction: the row stays locked
 * until the commit that follows. On PostgreSQL, listeners are told the new
 * highest seq when the transaction commits.
 */
export async function appendEventRows(tx: SqlConn, events: readonly EventRowInput[]) {
  if (events.length === 0) return 0;
  const first = await takeSeqs(tx, 'event_seq', events.length);
  const args: unknown[] = [];
  for (const [i, e] of events.entries()) {
    const tsMs = Date.parse(e.ts);
    args.push(
      first + i,
      e.type,
      e.ts,
      Number.isNaN(tsMs) ? 0 : tsMs,
      e.actor,
      e.subject ?? null,
      e.message ?? null,
      e.payload === undefined ? null : JSON.stringify(e.payload),
    );
  }
  await tx.run(
    `INSERT INTO events (seq, type, ts, ts_ms, actor, subject, message, payload) VALUES ${events
      .map(() => '(?, ?, ?, ?, ?, ?, ?, ?)')
      .join(', ')}`,
    args,
  );
  if (tx.dialect === 'postgres') {
    await tx.run('SELECT pg_notify(?, ?)', [eventChannel(tx), String(first + events.length - 1)]);
  }
  return first;
}
