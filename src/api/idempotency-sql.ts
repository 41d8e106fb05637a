/**
 * Idempotency records in the city's database (schema v4), shared by every
 * server of the city. A claim is a row inserted in a transaction that first
 * reads the key's row under lock: two servers claiming one key at once
 * collide on the primary key, and the loser's retry sees the winner's
 * pending row (409 in progress).
 *
 * Each pending row names the server running its request. A pending row
 * whose server is gone (not seen in gc_servers within `staleMs`, or a row
 * from before servers were named) is taken over at once by the retry that
 * finds it: the handler died with its server, and the writes it made kept
 * their results with them (core/request.ts), so the retry gets the same
 * outcome. So is a row of this server whose handler ended without its
 * answer being written (the database went away meanwhile). Otherwise the
 * retry is answered "in progress" (409), and after two minutes a pending
 * row is stale whoever holds it.
 */
import { fault, processAlive, type Clock, systemClock } from '../core/index.js';
import { dbNow, retryable, type SqlConn, type SqlDb } from '../db/index.js';
import {
  Answering,
  IDEMPOTENCY_TTL_MS,
  PENDING_STALE_MS,
  type Begin,
  type IdempotencyRecords,
} from './idempotency.js';

const MAX_TRIES = 8;

export class SqlIdempotency implements IdempotencyRecords {
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly answering = new Answering();

  constructor(
    private readonly db: SqlDb,
    private readonly clock: Clock = systemClock,
    /** This server's id in gc_servers ('' for a tool that serves no requests). */
    private readonly server = '',
    /** A server not seen for this long is gone. */
    private readonly staleMs = 30_000,
    /** This server's host: a server of this host whose pid is gone is gone at once. */
    private readonly host = '',
  ) {
    this.pruneTimer = setInterval(() => {
      this.prune().catch(() => undefined);
    }, 3600_000);
    this.pruneTimer.unref();
  }

  /** Forget the pending claims of servers that are gone (their handlers died with them). */
  async clearPending(): Promise<number> {
    const holders = await this.db.query<{ server: string }>(
      'SELECT DISTINCT server FROM idempotency WHERE status = 0',
    );
    let n = 0;
    for (const { server } of holders) {
      if (await this.alive(this.db, server)) continue;
      n += await this.db.run('DELETE FROM idempotency WHERE status = 0 AND server = ?', [server]);
    }
    return n;
  }

  async begin(scope: string, key: string, fp: string): Promise<Begin> {
    // Counted from before the claim commits: a racing claim of the same
    // key here must see this one as alive.
    this.answering.enter(scope, key);
    let b: Begin | undefined;
    try {
      b = await this.claim(scope, key, fp);
      return b;
    } finally {
      if (b?.state !== 'new') this.answering.leave(scope, key);
    }
  }

  private async claim(scope: string, key: string, fp: string): Promise<Begin> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(async (tx): Promise<Begin> => {
          const now = this.clock.now();
          const [row] = await tx.query<{
            fp: string;
            status: number;
            body: string | null;
            at: number;
            server: string;
          }>(
            `SELECT fp, status, body, at, server FROM idempotency WHERE scope = ? AND ikey = ? FOR UPDATE`,
            [scope, key],
          );
          const retake = () =>
            tx.run(
              'UPDATE idempotency SET fp = ?, status = 0, body = NULL, at = ?, server = ? WHERE scope = ? AND ikey = ?',
              [fp, now, this.server, scope, key],
            );
          if (!row || Number(row.at) < now - IDEMPOTENCY_TTL_MS) {
            if (row) await retake();
            else {
              await tx.run(
                'INSERT INTO idempotency (scope, ikey, fp, status, body, at, server) VALUES (?, ?, ?, 0, NULL, ?, ?)',
                [scope, key, fp, now, this.server],
              );
            }
            return { state: 'new' };
          }
          if (row.fp !== fp) return { state: 'mismatch' };
          if (Number(row.status) === 0) {
            if (
              Number(row.at) < now - PENDING_STALE_MS ||
              !(await this.alive(tx, row.server, scope, key))
            ) {
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

  /**
   * Whether the server that holds a pending row still runs: seen in
   * gc_servers within staleMs and, when it is on this host, its process
   * still there (a server killed here is known gone at once).
   */
  private async alive(c: SqlConn, server: string, scope?: string, key?: string): Promise<boolean> {
    // This server's own claim lives while its handler runs (one besides
    // the claim asking).
    if (server === this.server) {
      return scope === undefined || key === undefined || this.answering.count(scope, key) > 1;
    }
    if (!server) return false;
    const [row] = await c.query<{ host: string; pid: number }>(
      `SELECT host, pid FROM gc_servers WHERE id = ? AND seen_at >= ${dbNow(c)} - ?`,
      [server, this.staleMs],
    );
    if (!row) return false;
    return !(this.host && row.host === this.host && !processAlive(Number(row.pid)));
  }

  async finish(scope: string, key: string, status: number, body: string): Promise<void> {
    this.answering.leave(scope, key);
    fault('idempotency.write');
    if (status >= 500) return this.abandon(scope, key);
    await this.db.run(
      'UPDATE idempotency SET status = ?, body = ?, at = ? WHERE scope = ? AND ikey = ?',
      [status, body, this.clock.now(), scope, key],
    );
  }

  async abandon(scope: string, key: string): Promise<void> {
    this.answering.leave(scope, key);
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
