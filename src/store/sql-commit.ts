/**
 * Group commit for the store on a database server. Every write that records
 * events takes the event counter row at its end and holds it to its commit
 * (seqs in commit order), so one transaction per write would commit them
 * one after another: a commit's round trip and flush each, about a thousand
 * a second at best. Instead, concurrent writes queue up and a few lanes
 * (connections) each run a batch of them in one transaction: every write in
 * its own savepoint (one that fails rolls back only itself), then the
 * batch's events in one insert with one counter update, then one commit. A
 * write resolves only after its batch committed.
 *
 * A write that lost a race (deadlock, serialization failure, a duplicate key
 * from a racing insert, a lost compare-and-set) goes back to the queue and
 * runs again in a later batch, up to MAX_TRIES times. MySQL rolls back the
 * whole transaction on a deadlock, so there the whole batch goes back.
 */
import {
  appendEventRows,
  retryable,
  type EventRowInput,
  type SqlConn,
  type SqlDb,
} from '../db/index.js';

interface Pending {
  run: (tx: SqlConn, events: EventRowInput[]) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  tries: number;
}

/** Writes in one transaction: bounds the wait of the first write of a batch. */
const MAX_BATCH = 64;
/** Times a write runs before its lost race is reported. */
const MAX_TRIES = 12;

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** A MySQL error after which the server has rolled the whole transaction back. */
function wholeTransactionLost(c: SqlConn, e: unknown): boolean {
  return c.dialect === 'mysql' && (e as { errno?: number }).errno === 1213;
}

export class SqlGroupCommit {
  private readonly queue: Pending[] = [];
  private running = 0;
  /** Writes waiting out their backoff before they queue again. */
  private backingOff = 0;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly db: SqlDb,
    /** Batches in flight at once (each holds a connection while it runs). */
    private readonly lanes: number,
  ) {}

  /**
   * Run `run` in a batch's transaction; it appends its events to the given
   * list instead of writing them (the batch appends them all at its end).
   */
  write<T>(run: (tx: SqlConn, events: EventRowInput[]) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is disposed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        run,
        resolve: resolve as (v: unknown) => void,
        reject,
        tries: 0,
      });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.lanes && this.queue.length) {
      this.running++;
      // A lane never rejects: runBatch settles every write of its batch.
      this.lane()
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          if (this.queue.length) this.pump();
          else if (this.running === 0) for (const w of this.idle.splice(0)) w();
        });
    }
  }

  private async lane(): Promise<void> {
    // Let the writes of this turn join the first batch.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.queue.splice(0, MAX_BATCH);
      await this.runBatch(batch);
    }
  }

  private requeue(p: Pending, e: unknown): void {
    p.tries++;
    if (p.tries >= MAX_TRIES) {
      p.reject(asError(e));
      return;
    }
    // Back off a little (jittered), so racing writers spread out.
    const wait = Math.min(200, 2 ** p.tries) * (0.5 + Math.random());
    this.backingOff++;
    setTimeout(() => {
      this.backingOff--;
      this.queue.push(p);
      this.pump();
    }, wait);
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const done: { p: Pending; value: unknown }[] = [];
    const failed: { p: Pending; e: Error }[] = [];
    const again: { p: Pending; e: unknown }[] = [];
    try {
      await this.db.transaction(async (tx) => {
        const events: EventRowInput[] = [];
        for (const [i, p] of batch.entries()) {
          const mark = events.length;
          await tx.run(`SAVEPOINT w${i}`);
          try {
            const value = await p.run(tx, events);
            await tx.run(`RELEASE SAVEPOINT w${i}`);
            done.push({ p, value });
          } catch (e) {
            events.length = mark;
            if (wholeTransactionLost(tx, e)) throw e;
            await tx.run(`ROLLBACK TO SAVEPOINT w${i}`);
            if (retryable(e)) again.push({ p, e });
            else failed.push({ p, e: asError(e) });
          }
        }
        if (events.length) await appendEventRows(tx, events);
      });
    } catch (e) {
      // The batch did not commit: nothing in it happened.
      for (const p of batch) {
        if (retryable(e)) this.requeue(p, e);
        else p.reject(asError(e));
      }
      return;
    }
    for (const { p, value } of done) p.resolve(value);
    for (const { p, e } of failed) p.reject(e);
    for (const { p, e } of again) this.requeue(p, e);
  }

  /** Let queued writes finish, then refuse new ones. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.running > 0 || this.queue.length || this.backingOff > 0) {
      await new Promise<void>((r) => {
        this.idle.push(r);
        setTimeout(r, 50);
      });
    }
  }
}
