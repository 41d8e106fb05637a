/**
 * Electing the city's leader among its servers: each server runs an
 * elector on the "leader" lease (db/lease.ts). The elector tries to take
 * the lease, renews it every `renewMs` while it holds it, and calls
 * `onLead(term)` when it gains it and `onLose(term)` when it loses it (a
 * renewal refused, or none confirmed for a lease time less one renewal
 * interval: the lease may be about to lapse by the database's clock, and
 * the server steps down on its own before another can take over). Writes only the leader
 * may make are fenced by the term (db/lease.ts `fence`), so a server that
 * has not noticed yet cannot make them.
 */
import { errorMessage } from '../core/index.js';
import type { Leases } from '../db/index.js';

export interface ElectorOptions {
  leases: Leases;
  /** This server's name in the lease (unique per process start). */
  holder: string;
  /** How long a lease lasts unless renewed: the takeover bound after a leader dies. */
  ttlMs: number;
  /** How often to renew (and, while not leading, to try to take it). Default ttl/3. */
  renewMs?: number;
  name?: string;
  onLead: (term: number) => Promise<void> | void;
  onLose: (term: number) => Promise<void> | void;
  log?: (line: string) => void;
}

export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  private held: number | undefined;
  /** When the last confirmed renewal was sent (monotonic ms). */
  private confirmedAt = 0;
  private running: Promise<void> = Promise.resolve();
  private inFlight = false;
  private stepDown: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly name: string;
  private readonly renewMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly o: ElectorOptions) {
    this.name = o.name ?? 'leader';
    this.renewMs = Math.min(o.renewMs ?? Math.floor(o.ttlMs / 3), Math.floor(o.ttlMs / 2));
    if (this.renewMs < 1) throw new Error(`lease time ${o.ttlMs} ms is too short`);
    this.log = o.log ?? (() => undefined);
  }

  /** The term this server leads at; undefined when it does not lead. */
  get term(): number | undefined {
    return this.held;
  }

  /**
   * Whether this server may act as the leader right now: it holds the lease
   * and a renewal was confirmed less than a lease time less one renewal
   * interval ago (by this process's monotonic clock, which runs on while
   * the process is paused: a leader stopped past its lease and resumed
   * sees false here before any timer of its own has fired).
   */
  get leadingNow(): boolean {
    return (
      this.held !== undefined && performance.now() - this.confirmedAt < this.o.ttlMs - this.renewMs
    );
  }

  /** The renewal interval in ms. */
  get renewIntervalMs(): number {
    return this.renewMs;
  }

  /** Try at once, then every renewMs. Resolves after the first try. */
  async start(): Promise<void> {
    this.timer = setInterval(() => this.tick(), this.renewMs);
    this.timer.unref();
    this.tick();
    await this.running;
  }

  private tick(): void {
    // No renewal confirmed for nearly a lease time (the database is slow
    // or gone): the lease may lapse before the next tick, so step down
    // now, even while a call still hangs, before another server can take
    // it (its ticks may come just after the lapse).
    const term = this.held;
    if (term !== undefined && performance.now() - this.confirmedAt >= this.o.ttlMs - this.renewMs) {
      this.stepDown = this.lose(term, 'no renewal confirmed for a lease time');
    }
    if (this.inFlight || this.stopped) return;
    this.inFlight = true;
    this.running = this.step().finally(() => {
      this.inFlight = false;
    });
  }

  /** Stop trying; give the lease up when held, so another server takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // A call the database never answers holds the stop up for a lease time at most.
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([
      this.running,
      new Promise<void>((r) => (waited = setTimeout(r, this.o.ttlMs))),
    ]);
    clearTimeout(waited);
    await this.stepDown;
    const term = this.held;
    if (term === undefined) return;
    await this.lose(term, 'stopping');
    await this.o.leases.release(this.name, this.o.holder, term).catch((e: unknown) => {
      this.log(`leader: releasing the lease: ${errorMessage(e)} (it lapses by itself)`);
    });
  }

  private async lose(term: number, why: string): Promise<void> {
    if (this.held !== term) return;
    this.held = undefined;
    this.log(`leader: ${this.o.holder} stops leading (term ${term}): ${why}`);
    try {
      await this.o.onLose(term);
    } catch (e) {
      this.log(`leader: stepping down: ${errorMessage(e)}`);
    }
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    const sent = performance.now();
    try {
      if (this.held !== undefined) {
        const term = this.held;
        const ok = await this.o.leases.renew(this.name, this.o.holder, term, this.o.ttlMs);
        if (this.held !== term) return; // stepped down meanwhile
        if (ok) this.confirmedAt = sent;
        else await this.lose(term, 'the lease was lost');
        return;
      }
      const { held, lease } = await this.o.leases.acquire(this.name, this.o.holder, this.o.ttlMs);
      if (!held || this.stopped) return;
      this.confirmedAt = sent;
      this.held = lease.term;
      this.log(`leader: ${this.o.holder} leads (term ${lease.term})`);
      try {
        await this.o.onLead(lease.term);
      } catch (e) {
        // Could not take up the duties: give the lease to another server.
        this.log(`leader: taking up the work: ${errorMessage(e)}`);
        await this.lose(lease.term, 'its work would not start');
        await this.o.leases.release(this.name, this.o.holder, lease.term).catch(() => undefined);
      }
    } catch (e) {
      // The database did not answer: tick() steps down once the lease may have lapsed.
      this.log(`leader: ${errorMessage(e)}`);
    }
  }
}
