/**
 * The watchers' reader of the SQL event log: one per process, started by
 * the first watch. It learns that events were committed (PostgreSQL
 * notifications carrying the new highest seq; MySQL: a poll of the primary
 * key; and a kick after this process's own commits), reads everything past
 * the last seq it fanned out, in seq order, and publishes it to the hub.
 * Seqs commit in order, so reading `seq > last` never skips one committed
 * later. A lost listening connection is re-opened with backoff, then read
 * from where it stopped.
 */
import type { Listener, SqlDb } from '../db/index.js';
import { eventChannel } from '../db/index.js';
import type { Hub } from './subscription.js';
import type { GcEvent } from './types.js';

const PAGE = 1000;
const MAX_BACKOFF_MS = 5000;

export class Tailer {
  private last = 0;
  private started: Promise<void> | undefined;
  /** The latest seq is known: reads may start. */
  private ready = false;
  private listener: Listener | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private reading = false;
  private again = false;
  private closed = false;
  private backoff = 250;

  constructor(
    private readonly db: SqlDb,
    private readonly hub: Hub,
    private readonly read: (after: number, limit: number) => Promise<GcEvent[]>,
    private readonly options: { pollMs: number },
  ) {}

  /** Start once: listening (or polling) first, then the latest seq. */
  ensure(): Promise<void> {
    this.started ??= this.start().catch((e: unknown) => {
      this.started = undefined;
      throw e;
    });
    return this.started;
  }

  private async start(): Promise<void> {
    if (this.db.listen) await this.listen();
    const [r] = await this.db.query<{ next: number }>('SELECT next FROM event_seq WHERE id = 1');
    this.last = Number(r?.next ?? 0);
    this.ready = true;
    if (!this.db.listen) this.poll();
    // Anything committed between reading the seq and now was not announced to a ready reader.
    this.kick();
  }

  private async listen(): Promise<void> {
    const listen = this.db.listen?.bind(this.db);
    if (!listen) return;
    this.listener = await listen(
      eventChannel(this.db),
      () => this.kick(),
      () => {
        this.listener = undefined;
        this.relisten();
      },
    );
    this.backoff = 250;
  }

  private relisten(): void {
    if (this.closed) return;
    const wait = this.backoff;
    this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    const t = setTimeout(() => {
      this.listen().then(
        () => this.kick(),
        () => this.relisten(),
      );
    }, wait);
    t.unref();
  }

  private poll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => {
      if (this.hub.size > 0) this.kick();
      this.poll();
    }, this.options.pollMs);
    this.pollTimer.unref();
  }

  /** Read what is new now (coalesced: one read at a time, then one more if asked meanwhile). */
  kick(): void {
    if (this.closed || !this.ready) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    this.drain()
      .catch(() => {
        // The database is away: try again shortly (a notification may not come).
        if (this.retryTimer || this.closed) return;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, 1000);
        this.retryTimer.unref();
      })
      .finally(() => {
        this.reading = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      this.again = false;
      const events = await this.read(this.last, PAGE);
      if (events.length === 0) return;
      this.last = (events[events.length - 1] as GcEvent).seq;
      this.hub.publish(events);
      if (events.length < PAGE && !this.again) return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.listener?.close();
    this.listener = undefined;
  }
}
