/**
 * Idempotency records in the city's database (schema v4), shared by every
 * server of the city. A claim is a row inserted in a transaction that first
 * reads the key's row under lock: two servers claiming one key at once
 * collide on the primary key, and the loser's retry sees the winner's
 * pending row (409 in progress).
 *
 * A pending row whose server died would answer its retry "in progress"
 * until it is stale (two minutes). One server serves a city (its lock), so
 * the server clears pending rows when it opens (`clearPending`), as the
 * SQLite records do: a client retrying after a restart is answered at once.
 * Replicas will need each pending row to name its server, cleared when that
 * server's lease lapses.
 */
import { fault, type Clock, systemClock } from '../core/index.js';
import { retryable, type SqlDb } from '../db/index.js';
import {
  IDEMPOTENCY_TTL_MS,
  PENDING_STALE_MS,
  type Begin,
  type IdempotencyRecords,
} from './idempotency.js';

const MAX_TRIES = 8;

export class SqlIdempotency implements IdempotencyRecords {
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: SqlDb,
    private readonly clock: Clock = systemClock,
  ) {
    this.pruneTimer = setInterval(() => {
      this.prune().catch(() => undefined);
    }, 3600_000);
    this.pruneTimer.unref();
  }

  /** Forget every pending claim (their handlers died with the server that ran them). */
  clearPending(): Promise<number> {
    return this.db.run('DELETE FROM idempotency WHERE status = 0');
  }

  async begin(scope: string, key: string, fp: string): Promise<Begin> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(async (tx): Promise<Begin> => {
          const now = this.clock.now();
          const [row] = await tx.query<{
            fp: string;
            status: number;
            body: string | null;
            at: number;
          }>(
            `SELECT fp, status, body, at FROM idempotency WHERE scope = ? AND ikey = ? FOR UPDATE`,
            [scope, key],
          );
          const retake = () =>
            tx.run(
              'UPDATE idempotency SET fp = ?, status = 0, body = NULL, at = ? WHERE scope = ? AND ikey = ?',
              [fp, now, scope, key],
            );
          if (!row || Number(row.at) < now - IDEMPOTENCY_TTL_MS) {
            if (row) await retake();
            else {
              await tx.run(
                'INSERT INTO idempotency (scope, ikey, fp, status, body, at) VALUES (?, ?, ?, 0, NULL, ?)',
                [scope, key, fp, now],
              );
            }
            return { state: 'new' };
          }
          if (row.fp !== fp) return { state: 'mismatch' };
          if (Number(row.status) === 0) {
            if (Number(row.at) < now - PENDING_STALE_MS) {
              await retake();
              return { state: 'new' };
            }
            return { state: 'in_progress' };
          }
          return { state: 'replay', status: Number(row.status), body: row.body ?? '' };
        });
      } catch (e) {
        if (!retryable(e) || attempt >= MAX_TRIES) throw e;
      }
    }
  }

  async finish(scope: string, key: string, status: number, body: string): Promise<void> {
    fault('idempotency.write');
    if (status >= 500) return this.abandon(scope, key);
    await this.db.run(
      'UPDATE idempotency SET status = ?, body = ?, at = ? WHERE scope = ? AND ikey = ?',
      [status, body, this.clock.now(), scope, key],
    );
  }

  async abandon(scope: string, key: string): Promise<void> {
    fault('idempotency.write');
    await this.db.run('DELETE FROM idempotency WHERE scope = ? AND ikey = ? AND status = 0', [
      scope,
      key,
    ]);
  }

  prune(): Promise<number> {
    return this.db.run('DELETE FROM idempotency WHERE at < ?', [
      this.clock.now() - IDEMPOTENCY_TTL_MS,
    ]);
  }

  close(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    return Promise.resolve();
  }
}
