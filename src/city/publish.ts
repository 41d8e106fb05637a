/**
 * The outbox publisher: moves events that committed with their writes (the
 * store's outbox) to the event log, in commit order, then forgets them.
 *
 * A crash between appending to the log and forgetting the rows leaves rows
 * that are already in the log. `recover` (run at open, and after a failed
 * append) recognises them: an outbox event is stamped with its commit time
 * and carries the ids it concerns, so an event in the log's tail with the
 * same type, actor, subject, message, payload and time is that row. Those
 * are skipped; the rest are appended. Nothing is lost and nothing doubled.
 */
import type { EventLog, GcEvent } from '../events/index.js';
import type { OutboxRow, Store } from '../store/index.js';

const BATCH = 1000;
/** Retry a failed append after this long (then doubling, up to a minute). */
const RETRY_MS = 1000;

type Stamped = OutboxRow['event'];

function identity(e: Stamped | GcEvent): string {
  return JSON.stringify([
    e.type,
    e.actor,
    e.subject ?? null,
    e.message ?? null,
    e.payload ?? null,
    e.ts,
  ]);
}

export class Publisher {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** An append failed: the log may hold part of the outbox; check before appending. */
  private suspect = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MS;
  private lastError = '';
  /** Highest outbox id appended to the log by this process. */
  private appended = 0;
  private acking: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Resolve once every event committed before the call is in the log.
   * Concurrent callers share passes: at most one runs and one waits.
   */
  publish(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    this.queued = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<void> {
    const p = (this.suspect ? this.recover().then(() => undefined) : this.pass()).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private async pass(): Promise<void> {
    // Events already in the log with their writes: nothing reaches the outbox.
    if (this.store.eventsInline) return;
    for (;;) {
      const rows = await this.store.outbox(BATCH, this.appended);
      if (rows.length === 0) return;
      try {
        // record() keeps call order: the rows land in commit order.
        await Promise.all(rows.map((r) => this.events.record(r.event)));
      } catch (e) {
        this.suspect = true;
        throw e;
      }
      this.appended = rows[rows.length - 1]!.id;
      this.ack(this.appended);
      this.healthy();
      if (rows.length < BATCH) return;
    }
  }

  /**
   * Forget appended rows, off the caller's path: a write waits for its
   * events to be in the log, not for the outbox to be trimmed. A crash
   * before the trim leaves rows that `recover` finds in the log.
   */
  private ack(throughId: number): void {
    this.acking = this.acking
      .then(() => this.store.ackOutbox(throughId))
      .catch((e: unknown) => {
        this.log(
          `events: trimming the outbox failed (${e instanceof Error ? e.message : String(e)}); it is retried with the next write`,
        );
      });
  }

  /** Every trim asked for so far is done (tests, shutdown). */
  settled(): Promise<void> {
    return this.acking;
  }

  /** Append what is in the outbox and not yet in the log; returns how many were appended. */
  async recover(): Promise<number> {
    let appended = 0;
    for (;;) {
      const rows = await this.store.outbox(BATCH);
      if (rows.length === 0) break;
      const seen = await this.tail(rows[0]!.event.ts);
      const missing = rows.filter((r) => !seen.has(identity(r.event)));
      try {
        await Promise.all(missing.map((r) => this.events.record(r.event)));
      } catch (e) {
        this.suspect = true;
        throw e;
      }
      this.appended = Math.max(this.appended, rows[rows.length - 1]!.id);
      await this.store.ackOutbox(rows[rows.length - 1]!.id);
      appended += missing.length;
      if (rows.length < BATCH) break;
    }
    this.suspect = false;
    this.healthy();
    return appended;
  }

  /** Identities of the log's events stamped at or after `since`. */
  private async tail(since: string): Promise<Set<string>> {
    const seen = new Set<string>();
    let after: number | undefined;
    for (;;) {
      const page = await this.events.list({
        since,
        limit: 10_000,
        ...(after !== undefined ? { afterSeq: after } : {}),
      });
      for (const e of page.items) seen.add(identity(e));
      if (page.next_after_seq === null || page.items.length === 0) return seen;
      after = page.next_after_seq;
    }
  }

  /** A pass failed after its write committed: say so once, and retry until it works. */
  failed(why: string): void {
    if (why !== this.lastError) {
      this.log(
        `events: appending committed events to the log failed (${why}); they wait in the outbox and are retried`,
      );
      this.lastError = why;
    }
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.publish().catch((e: unknown) => {
        this.retryMs = Math.min(60_000, this.retryMs * 2);
        this.failed(e instanceof Error ? e.message : String(e));
      });
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private healthy(): void {
    if (this.lastError) this.log('events: the outbox is draining to the log again');
    this.lastError = '';
    this.retryMs = RETRY_MS;
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
