/**
 * Group commit for the store on a database server. Every write that records
 * events takes the event counter row at its end and holds it to its commit
 * (seqs in commit order), so one transaction per write would commit them
 * one after another: a commit's round trip and flush each, about a thousand
 * a second at best. Instead, concurrent writes queue up and a few lanes
 * (connections) each run a batch of them in one transaction, then the
 * batch's events in one insert with one counter update, then one commit. A
 * write resolves only after its batch committed.
 *
 * A batch first runs its writes back to back. When one fails (any error
 * ends a PostgreSQL transaction), the batch is rolled back and run again
 * with every write in its own savepoint, so one that fails rolls back only
 * itself; the next few batches keep the savepoints, as failures come in
 * runs. Savepoints cost two round trips a write, most of a claim's cost.
 *
 * A write that lost a race (deadlock, serialization failure, a duplicate key
 * from a racing insert, a lost compare-and-set) goes back to the queue and
 * runs again in a later batch, up to MAX_TRIES times. MySQL rolls back the
 * whole transaction on a deadlock, so there the whole batch goes back.
 */
import {
  DatabaseUnavailableError,
  LostRaceError,
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
  /** Its statements filter by values whose selectivity varies (see `plans`). */
  customPlans: boolean;
  merge: Merge | undefined;
}

/**
 * Writes that may run as one: in a batch, every write with the same key
 * runs through the first one's `runAll` with all their items, in batch
 * order, resolving each with its value (as if they ran one after another
 * where the first one stood). Used by claim-next: one pick and one update
 * for a batch's claimants instead of two statements each.
 */
export interface Merge {
  key: string;
  item: unknown;
  runAll: (tx: SqlConn, events: EventRowInput[], items: unknown[]) => Promise<unknown[]>;
  /**
   * When every write of a batch has this key and this: all of them in one
   * statement that commits on its own (no transaction round trips), with
   * their events. Each one's value, or LOST for a write to run again.
   */
  alone?: (db: SqlConn, items: unknown[]) => Promise<unknown[]>;
}

/** A write `Merge.alone` did not make (it lost a race): it runs again. */
export const LOST = Symbol('lost');

/** Writes in one transaction: bounds the wait of the first write of a batch. */
const MAX_BATCH = 128;
/** Times a write runs before its lost race is reported. */
const MAX_TRIES = 12;

/** Batches run with savepoints after one failed without them. */
const CAREFUL_AFTER_FAILURE = 8;

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** Thrown to roll back a batch run without savepoints when one of its writes failed. */
class BatchFailed extends Error {}

/** Positions of the writes of each merge key that more than one write of the batch has. */
function mergeable(batch: readonly Pending[]): Map<string, number[]> {
  const by = new Map<string, number[]>();
  for (const [i, p] of batch.entries()) {
    if (p.merge) by.set(p.merge.key, [...(by.get(p.merge.key) ?? []), i]);
  }
  for (const [k, v] of by) if (v.length < 2) by.delete(k);
  return by;
}

/**
 * PostgreSQL plans every statement for its values (plan_cache_mode =
 * force_custom_plan, set per connection: a generic plan of a filtered read
 * walked whole kinds of beads). A write's statements look rows up by key,
 * and planning them again is most of a claim's server time, so a batch
 * lets the server reuse its plans (auto) unless one of its writes filters
 * by values whose selectivity varies (a claim-next narrowed by label,
 * metadata, type or assignee).
 */
function plans(batch: readonly Pending[]): { reusePlans: boolean } {
  return { reusePlans: !batch.some((p) => p.customPlans) };
}

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
  /** Batches still to run with savepoints (after a failure). */
  private careful = 0;
  /** Writes that ran merged with others (see Merge), for tests and benchmarks. */
  mergedWrites = 0;

  constructor(
    private readonly db: SqlDb,
    /** Batches in flight at once (each holds a connection while it runs). */
    private readonly lanes: number,
  ) {}

  /**
   * Run `run` in a batch's transaction; it appends its events to the given
   * list instead of writing them (the batch appends them all at its end).
   */
  write<T>(
    run: (tx: SqlConn, events: EventRowInput[]) => Promise<T>,
    customPlans = false,
    merge?: Merge,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is disposed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        run,
        resolve: resolve as (v: unknown) => void,
        reject,
        tries: 0,
        customPlans,
        merge,
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
    const first = batch[0]?.merge;
    if (
      this.careful === 0 &&
      first?.alone &&
      batch.every((p) => p.merge?.key === first.key && p.merge.alone)
    ) {
      return this.runAlone(first.alone, batch);
    }
    if (this.careful > 0 || batch.length === 1) {
      if (this.careful > 0) this.careful--;
      return this.runCareful(batch);
    }
    const values: unknown[] = [];
    try {
      await this.db.transaction(async (tx) => {
        const events: EventRowInput[] = [];
        const merged = mergeable(batch);
        for (const [i, p] of batch.entries()) {
          if (i in values) continue;
          try {
            const group = p.merge && merged.get(p.merge.key);
            if (!group) {
              values[i] = await p.run(tx, events);
              continue;
            }
            const all = await p.merge!.runAll(
              tx,
              events,
              group.map((k) => batch[k]!.merge!.item),
            );
            for (const [j, k] of group.entries()) values[k] = all[j];
            this.mergedWrites += group.length;
          } catch {
            throw new BatchFailed();
          }
        }
        if (events.length) await appendEventRows(tx, events);
      }, plans(batch));
    } catch (e) {
      if (!(e instanceof BatchFailed) && !retryable(e)) {
        for (const p of batch) p.reject(asError(e));
        return;
      }
      // A write failed (or the batch lost a race): nothing committed; each
      // write now in its own savepoint, to tell which one and keep the rest.
      this.careful = CAREFUL_AFTER_FAILURE;
      return this.runCareful(batch);
    }
    for (const [i, p] of batch.entries()) p.resolve(values[i]);
  }

  private async runAlone(alone: NonNullable<Merge['alone']>, batch: Pending[]): Promise<void> {
    let values: unknown[];
    try {
      values = await alone(
        this.db,
        batch.map((p) => p.merge!.item),
      );
    } catch (e) {
      // The connection was lost: the statement may have committed before
      // its answer was lost, so running the writes again could make them
      // twice. They fail (503); whoever retries them decides.
      if (e instanceof DatabaseUnavailableError) {
        for (const p of batch) p.reject(e);
        return;
      }
      // Nothing committed: each write on its own, to tell which one failed.
      this.careful = CAREFUL_AFTER_FAILURE;
      return this.runCareful(batch);
    }
    this.mergedWrites += batch.length;
    for (const [i, p] of batch.entries()) {
      if (values[i] === LOST) this.requeue(p, new LostRaceError('its new id was taken meanwhile'));
      else p.resolve(values[i]);
    }
  }

  private async runCareful(batch: Pending[]): Promise<void> {
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
      }, plans(batch));
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
