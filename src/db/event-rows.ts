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
  if (tx.dialect === 'postgres') return appendPg(tx, events);
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
  return first;
}

/**
 * PostgreSQL: the counter, the rows and the notice in one statement (one
 * round trip while the counter row is held), the same text for any number
 * of events (one prepared statement).
 */
async function appendPg(tx: SqlConn, events: readonly EventRowInput[]): Promise<number> {
  const n = events.length;
  const [r] = await tx.query<{ first: string | number }>(
    `WITH s AS (UPDATE event_seq SET next = next + ?::bigint WHERE id = 1 RETURNING next),
     i AS (INSERT INTO events (seq, type, ts, ts_ms, actor, subject, message, payload)
       SELECT s.next - ?::bigint + t.ord, t.type, t.ts, t.ts_ms, t.actor, t.subject, t.message,
         t.payload
       FROM s, unnest(?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[],
         ?::text[]) WITH ORDINALITY AS t(type, ts, ts_ms, actor, subject, message, payload, ord))
     SELECT s.next - ?::bigint + 1 AS first, pg_notify(?, s.next::text) FROM s`,
    [n, n, ...eventColumns(events), n, eventChannel(tx)],
  );
  if (!r) throw new Error('the event_seq counter row is missing');
  return Number(r.first);
}

/**
 * Events as the seven arrays `unnest` takes on PostgreSQL: type, ts, ts_ms,
 * actor, subject, message, payload (JSON).
 */
export function eventColumns(events: readonly EventRowInput[]): unknown[][] {
  const col = <T>(f: (e: EventRowInput) => T): T[] => events.map(f);
  return [
    col((e) => e.type),
    col((e) => e.ts),
    col((e) => {
      const ms = Date.parse(e.ts);
      return Number.isNaN(ms) ? 0 : ms;
    }),
    col((e) => e.actor),
    col((e) => e.subject ?? null),
    col((e) => e.message ?? null),
    col((e) => (e.payload === undefined ? null : JSON.stringify(e.payload))),
  ];
}
