/**
 * Named leases with fencing terms, for the work only one server of a city
 * may do (the "leader" lease). A holder takes a free or lapsed lease and
 * the term goes up by one; it renews before the lease lapses; a write that
 * only the leader may make checks its term in its own transaction
 * (`fence`), holding the lease row in share mode until it commits, so a
 * new holder cannot take over between the check and the commit, and a
 * paused or cut-off old leader's write is refused once a newer term exists
 * or its lease has lapsed.
 *
 * Expiry is judged by the database's clock, never a server's, so servers
 * whose clocks disagree still agree on who leads. One interface, one
 * conformance suite (lease-conformance.ts): in memory (one process, the
 * city without a database) and on the city's database (schema v9).
 */
import { GcError, systemClock, type Clock } from '../core/index.js';
import type { SqlConn, SqlDb } from './db.js';

export interface Lease {
  name: string;
  /** Who holds it; '' when nobody does. */
  holder: string;
  /** Bumped by every new holder: the fencing token. 0 before anyone held it. */
  term: number;
  /** Epoch ms (the database's clock) when it lapses unless renewed. */
  expires_at: number;
  /** Epoch ms when the current holder took it. */
  acquired_at: number;
}

export interface Leases {
  /**
   * Take `name` for `holder` when it is free or lapsed (a new term), or
   * renew it when `holder` has it. The lease as it is now; `held` tells
   * whether `holder` has it.
   */
  acquire(name: string, holder: string, ttlMs: number): Promise<{ held: boolean; lease: Lease }>;
  /** Extend `holder`'s lease of `term`; false when it lapsed or was taken. */
  renew(name: string, holder: string, term: number, ttlMs: number): Promise<boolean>;
  /** Give it up at once (only the holder of that term can). */
  release(name: string, holder: string, term: number): Promise<void>;
  get(name: string): Promise<Lease>;
}

/** A leader-only write by a holder that is no longer the leader. */
export class FencedError extends GcError {
  constructor(name: string, holder: string, term: number) {
    super(
      'conflict',
      `${holder} no longer holds the ${name} lease at term ${term}: another server leads now`,
    );
  }
}

function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) {
    throw new GcError('invalid', `lease time must be a positive whole number of ms, got ${ttlMs}`);
  }
}

/** `fn`'s value, or its error, as a promise. */
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

/** The leases of one process (a city without a database has one server). */
export class MemoryLeases implements Leases {
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly clock: Clock = systemClock) {}

  private row(name: string): Lease {
    let l = this.leases.get(name);
    if (!l) {
      l = { name, holder: '', term: 0, expires_at: 0, acquired_at: 0 };
      this.leases.set(name, l);
    }
    return l;
  }

  acquire(name: string, holder: string, ttlMs: number) {
    return settled(() => {
      checkTtl(ttlMs);
      const l = this.row(name);
      const now = this.clock.now();
      if (l.holder === holder && l.expires_at >= now) {
        l.expires_at = now + ttlMs;
      } else if (l.holder === '' || l.expires_at < now) {
        Object.assign(l, { holder, term: l.term + 1, expires_at: now + ttlMs, acquired_at: now });
      }
      return { held: l.holder === holder, lease: { ...l } };
    });
  }

  renew(name: string, holder: string, term: number, ttlMs: number) {
    return settled(() => {
      checkTtl(ttlMs);
      const l = this.row(name);
      const now = this.clock.now();
      if (l.holder !== holder || l.term !== term || l.expires_at < now) return false;
      l.expires_at = now + ttlMs;
      return true;
    });
  }

  release(name: string, holder: string, term: number) {
    const l = this.row(name);
    if (l.holder === holder && l.term === term) Object.assign(l, { holder: '', expires_at: 0 });
    return Promise.resolve();
  }

  get(name: string) {
    return Promise.resolve({ ...this.row(name) });
  }

  /** The in-memory fence: throws FencedError unless `holder` leads at `term`. */
  fence(name: string, holder: string, term: number): void {
    const l = this.row(name);
    if (l.holder !== holder || l.term !== term || l.expires_at < this.clock.now()) {
      throw new FencedError(name, holder, term);
    }
  }
}

/** The database's clock in epoch ms, as SQL. */
export function dbNow(c: SqlConn): string {
  return c.dialect === 'postgres'
    ? 'CAST(extract(epoch from clock_timestamp()) * 1000 AS BIGINT)'
    : 'CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)';
}

const num = (l: Lease): Lease => ({
  ...l,
  term: Number(l.term),
  expires_at: Number(l.expires_at),
  acquired_at: Number(l.acquired_at),
});

/** Leases in the city's database (gc_leases). */
export class SqlLeases implements Leases {
  private readonly made = new Set<string>();

  constructor(private readonly db: SqlDb) {}

  private async ensure(name: string): Promise<void> {
    if (this.made.has(name)) return;
    await this.db.run(
      this.db.dialect === 'postgres'
        ? 'INSERT INTO gc_leases (name) VALUES (?) ON CONFLICT (name) DO NOTHING'
        : 'INSERT IGNORE INTO gc_leases (name) VALUES (?)',
      [name],
    );
    this.made.add(name);
  }

  async acquire(name: string, holder: string, ttlMs: number) {
    checkTtl(ttlMs);
    await this.ensure(name);
    const now = dbNow(this.db);
    // Renew when it is ours and alive; else take it when it is free or lapsed.
    const renewed = await this.db.run(
      `UPDATE gc_leases SET expires_at = ${now} + ? WHERE name = ? AND holder = ? AND expires_at >= ${now}`,
      [ttlMs, name, holder],
    );
    if (!renewed) {
      await this.db.run(
        `UPDATE gc_leases SET holder = ?, term = term + 1, expires_at = ${now} + ?, acquired_at = ${now}
         WHERE name = ? AND (holder = '' OR expires_at < ${now})`,
        [holder, ttlMs, name],
      );
    }
    const lease = await this.get(name);
    return { held: lease.holder === holder, lease };
  }

  async renew(name: string, holder: string, term: number, ttlMs: number) {
    checkTtl(ttlMs);
    const now = dbNow(this.db);
    const n = await this.db.run(
      `UPDATE gc_leases SET expires_at = ${now} + ?
       WHERE name = ? AND holder = ? AND term = ? AND expires_at >= ${now}`,
      [ttlMs, name, holder, term],
    );
    return n === 1;
  }

  async release(name: string, holder: string, term: number) {
    await this.db.run(
      `UPDATE gc_leases SET holder = '', expires_at = 0 WHERE name = ? AND holder = ? AND term = ?`,
      [name, holder, term],
    );
  }

  async get(name: string): Promise<Lease> {
    const [l] = await this.db.query<Lease>(
      'SELECT name, holder, term, expires_at, acquired_at FROM gc_leases WHERE name = ?',
      [name],
    );
    return l ? num(l) : { name, holder: '', term: 0, expires_at: 0, acquired_at: 0 };
  }
}

/**
 * In a leader-only write's transaction: go on only while `holder` leads at
 * `term` (else FencedError, and the transaction rolls back). The lease row
 * stays share-locked until the commit, so no new holder takes over between
 * this check and the write.
 */
export async function fence(tx: SqlConn, name: string, holder: string, term: number) {
  const lock = tx.dialect === 'postgres' ? 'FOR SHARE' : 'LOCK IN SHARE MODE';
  const rows = await tx.query(
    `SELECT term FROM gc_leases WHERE name = ? AND holder = ? AND term = ? AND expires_at >= ${dbNow(tx)} ${lock}`,
    [name, holder, term],
  );
  if (!rows.length) throw new FencedError(name, holder, term);
}
