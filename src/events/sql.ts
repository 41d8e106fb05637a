/**
 * The event log in the city's database (PostgreSQL or a MySQL-protocol
 * server), shared by every process of the city. Seqs come from a counter
 * row held until commit (db/event-rows.ts), so they are gap-free and in
 * commit order; store writes append their events in their own transaction
 * through the same counter.
 *
 * `record` group-commits: calls made while a batch is being written go into
 * the next one, in call order, one transaction each. `watch` is pushed
 * across processes: PostgreSQL `LISTEN/NOTIFY` carries only the new highest
 * seq, MySQL polls the primary key; either way one reader per process
 * fetches what is new and fans it out to every watcher (sql-tail.ts).
 * Retention drops the oldest events by count or age, and says so with an
 * `events.pruned` event.
 */
import { ConflictError, systemClock, type Clock } from '../core/index.js';
import {
  DatabaseUnavailableError,
  appendEventRows,
  migrate,
  openSqlDb,
  retryable,
  type EventRowInput,
  type SqlConn,
  type SqlDb,
  type SqlDbOptions,
} from '../db/index.js';
import type { EventLog } from './event-log.js';
import { checkAfterSeq, checkEventInput, eventPageSize, materialize, sinceMs } from './filter.js';
import { pruneEvents, type Retention } from './sql-prune.js';
import { Tailer } from './sql-tail.js';
import { Hub } from './subscription.js';
import type { EventInput, EventListQuery, EventPage, GcEvent, WatchOptions } from './types.js';
import { watchLog } from './watch.js';

export interface SqlEventLogOptions {
  /** The city's pool, already migrated. Or give `url` and the log opens (and owns) one. */
  db?: SqlDb;
  url?: string;
  dbOptions?: SqlDbOptions;
  clock?: Clock;
  /** MySQL: how often watchers' reader looks for new events (ms). */
  pollMs?: number;
  retention?: Retention;
  /** How often retention runs (ms); 0: never. Default 10 minutes. */
  pruneEveryMs?: number;
}

interface Pending {
  event: Omit<GcEvent, 'seq'>;
  bytes: number;
  resolve: (e: GcEvent) => void;
  reject: (e: Error) => void;
}

/** Events per transaction, and their bytes (under MySQL's 16 MiB packet default). */
const MAX_BATCH = 1000;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const MAX_TRIES = 8;
/** Longest wait between a watcher's reads while the database is away. */
const MAX_WATCH_WAIT_MS = 5000;

interface EventRow {
  seq: number;
  type: string;
  ts: string;
  actor: string;
  subject: string | null;
  message: string | null;
  payload: string | null;
}

function fromRow(r: EventRow): GcEvent {
  const e: GcEvent = { seq: Number(r.seq), type: r.type, ts: r.ts, actor: r.actor };
  if (r.subject !== null) e.subject = r.subject;
  if (r.message !== null) e.message = r.message;
  if (r.payload !== null) e.payload = JSON.parse(r.payload) as unknown;
  return e;
}

/** The upper bound of a prefix range: the prefix with its last character bumped. */
function prefixEnd(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}

/** WHERE clause for a filter on `events` (free-text columns checked whole, indexed by prefix). */
function filterSql(c: SqlConn, q: EventListQuery, after: number): { sql: string; args: unknown[] } {
  const where = ['seq > ?'];
  const args: unknown[] = [after];
  if (q.type !== undefined) {
    const types = Array.isArray(q.type) ? q.type : [q.type];
    const ors: string[] = [];
    const exact = types.filter((t) => !t.endsWith('*'));
    if (exact.length) {
      ors.push(`type IN (${exact.map(() => '?').join(', ')})`);
      args.push(...exact);
    }
    for (const t of types.filter((x) => x.endsWith('*'))) {
      const p = t.slice(0, -1);
      if (!p) {
        ors.push('1 = 1');
        continue;
      }
      ors.push('(type >= ? AND type < ?)');
      args.push(p, prefixEnd(p));
    }
    where.push(ors.length ? `(${ors.join(' OR ')})` : '1 = 0');
  }
  for (const col of ['actor', 'subject'] as const) {
    const v = q[col];
    if (v === undefined) continue;
    if (c.dialect === 'postgres') {
      where.push(`left(${col}, 128) = left(?, 128) AND ${col} = ?`);
      args.push(v, v);
    } else {
      where.push(`${col} = ?`);
      args.push(v);
    }
  }
  const since = q.since;
  if (since !== undefined) {
    where.push('ts_ms >= ?');
    args.push(typeof since === 'number' ? since : Date.parse(since));
  }
  return { sql: where.join(' AND '), args };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SqlEventLog implements EventLog {
  readonly backend: string;
  private readonly hub = new Hub();
  private readonly tailer: Tailer;
  private readonly clock: Clock;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<unknown> | undefined;

  private constructor(
    private readonly db: SqlDb,
    private readonly owned: boolean,
    private readonly options: SqlEventLogOptions,
  ) {
    this.backend = db.dialect;
    this.clock = options.clock ?? systemClock;
    this.tailer = new Tailer(db, this.hub, (after, limit) => this.after(after, limit), {
      pollMs: options.pollMs ?? 100,
    });
  }

  static async open(options: SqlEventLogOptions): Promise<SqlEventLog> {
    let db = options.db;
    const owned = !db;
    if (!db) {
      if (!options.url) throw new Error('SqlEventLog needs db or url');
      db = await openSqlDb(options.url, options.dbOptions);
      try {
        await migrate(db);
      } catch (e) {
        await db.close().catch(() => undefined);
        throw e;
      }
    }
    const log = new SqlEventLog(db, owned, options);
    const every = options.pruneEveryMs ?? 600_000;
    const r = options.retention;
    if (every > 0 && r && (r.maxEvents || r.maxAgeMs)) {
      log.pruneTimer = setInterval(() => {
        log.pruneNow().catch(() => undefined);
      }, every);
      log.pruneTimer.unref();
      log.pruneNow().catch(() => undefined);
    }
    return log;
  }

  record(input: EventInput): Promise<GcEvent> {
    try {
      if (this.closed) throw new ConflictError('event log is closed');
      checkEventInput(input);
      const { event, line } = materialize(input, 0, this.clock.now());
      const { seq: _seq, ...body } = event;
      return new Promise<GcEvent>((resolve, reject) => {
        this.pending.push({ event: body, bytes: line.length, resolve, reject });
        this.flushing ??= this.flush();
      });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async flush(): Promise<void> {
    // Let the calls of this turn join the first batch.
    await new Promise((r) => setImmediate(r));
    try {
      while (this.pending.length) {
        let n = 0;
        let bytes = 0;
        while (n < this.pending.length && n < MAX_BATCH) {
          bytes += (this.pending[n] as Pending).bytes;
          if (n > 0 && bytes > MAX_BATCH_BYTES) break;
          n++;
        }
        const batch = this.pending.splice(0, n);
        try {
          const first = await this.append(batch.map((p) => p.event as EventRowInput));
          batch.forEach((p, i) => p.resolve({ seq: first + i, ...p.event }));
          this.tailer.kick();
        } catch (e) {
          for (const p of batch) p.reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async append(rows: EventRowInput[]): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction((tx) => appendEventRows(tx, rows));
      } catch (e) {
        if (!retryable(e) || attempt >= MAX_TRIES) throw e;
        await sleep(Math.min(200, 2 ** attempt) * (0.5 + Math.random()));
      }
    }
  }

  async list(query: EventListQuery = {}): Promise<EventPage> {
    const limit = eventPageSize(query.limit);
    const after = checkAfterSeq(query.afterSeq);
    if (query.since !== undefined) query = { ...query, since: sinceMs(query.since) as number };
    const { sql, args } = filterSql(this.db, query, after);
    const rows = await this.db.query<EventRow>(
      `SELECT seq, type, ts, actor, subject, message, payload FROM events WHERE ${sql}
        ORDER BY seq LIMIT ${limit + 1}`,
      args,
    );
    const items = rows.slice(0, limit).map(fromRow);
    const more = rows.length > limit;
    return { items, next_after_seq: more ? (items[items.length - 1] as GcEvent).seq : null };
  }

  /** Every event after `after`, in seq order (the watchers' reader). */
  private async after(after: number, limit: number): Promise<GcEvent[]> {
    const rows = await this.db.query<EventRow>(
      `SELECT seq, type, ts, actor, subject, message, payload FROM events WHERE seq > ?
        ORDER BY seq LIMIT ${limit}`,
      [after],
    );
    return rows.map(fromRow);
  }

  async latestSeq(): Promise<number> {
    const [r] = await this.db.query<{ next: number }>('SELECT next FROM event_seq WHERE id = 1');
    return Number(r?.next ?? 0);
  }

  async *watch(afterSeq: number, options: WatchOptions = {}): AsyncGenerator<GcEvent> {
    checkAfterSeq(afterSeq);
    if (this.closed) return;
    // The reader starts (and knows the latest seq) before this watcher
    // subscribes and reads the stored events, so what it fans out later
    // continues where that read ends.
    await this.tailer.ensure();
    yield* watchLog(this.hub, (q) => this.listWaiting(q, options.signal), afterSeq, options);
  }

  /**
   * A watcher's read of stored events: the database being away is waited
   * out (backing off), not the end of the watch, so a follower (metrics,
   * orders, the leader's pokes) outlives an outage and resumes where it
   * stopped. Aborted or closed meanwhile: an empty page, and the watch ends.
   */
  private async listWaiting(q: EventListQuery, signal?: AbortSignal): Promise<EventPage> {
    for (let wait = 250; ; wait = Math.min(MAX_WATCH_WAIT_MS, wait * 2)) {
      try {
        return await this.list(q);
      } catch (e) {
        if (!(e instanceof DatabaseUnavailableError)) throw e;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait);
        function done() {
          clearTimeout(t);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
      });
      if (this.closed || signal?.aborted) return { items: [], next_after_seq: null };
    }
  }

  /** Apply retention now; resolves with how many events were dropped. */
  pruneNow(): Promise<number> {
    const r = this.options.retention;
    if (!r || this.closed) return Promise.resolve(0);
    const run = async (): Promise<number> => {
      const dropped = await pruneEvents(this.db, r, this.clock.now());
      if (!dropped) return 0;
      await this.record({
        type: 'events.pruned',
        actor: 'gc',
        message: `retention removed events ${dropped.first}..${dropped.last}`,
        payload: { first_seq: dropped.first, last_seq: dropped.last },
      });
      return dropped.last - dropped.first + 1;
    };
    const p = (this.pruning ?? Promise.resolve()).then(run, run);
    this.pruning = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.pruning;
    while (this.flushing) await this.flushing;
    await this.tailer.close();
    this.hub.closeAll();
    if (this.owned) await this.db.close();
  }
}
