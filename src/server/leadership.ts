/**
 * A server among several on one city database: its row in gc_servers
 * (written at every renewal), its candidacy for the leader lease, and the
 * leader's work, taken up when it gains the lease and put down when it
 * loses it:
 *
 *   leader   the controller tick (sessions), the merge queue engines, runs,
 *            convoy patrols, the sweep of dead servers' rows, and a watch
 *            on the event log that pokes them when another server takes a
 *            write (a bead, a merge request, mail)
 *   replica  the API; leader routes are forwarded (see listen.ts)
 *   api-only a replica that never stands for leader (`gc start --api-only`)
 *
 * Everything the leader does to sessions or the target branch first asks
 * `leadingNow` (the lease confirmed within its time, by this process's
 * monotonic clock), so a leader paused past its lease acts on nothing
 * when it resumes; it steps down at its next renewal.
 */
import { LeaderElector } from '../city/index.js';
import { errorMessage, GcError, processAlive } from '../core/index.js';
import { serverHost } from './host.js';
import { SqlLeases, SqlServers, type ServerRole, type ServerRow, type SqlDb } from '../db/index.js';

/** The providers whose sessions live on one host (the leader must be on it). */
export const HOST_BOUND_PROVIDERS = new Set(['tmux', 'subprocess', 'fake']);

export interface LeadershipOptions {
  db: SqlDb;
  id: string;
  /** Never stand for leader. */
  apiOnly: boolean;
  ttlMs: number;
  provider: string;
  /** This server's own socket and TCP address, for the registry. */
  socket: string;
  url: () => string;
  /** Take up the leader's work at `term` (rejects: the lease goes to another server). */
  onLead: (term: number) => Promise<void>;
  /** Put it down (sessions are left running for the next leader). */
  onLose: (term: number) => Promise<void>;
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export class Leadership {
  readonly host: string;
  private readonly servers: SqlServers;
  private readonly leases: SqlLeases;
  private readonly elector: LeaderElector | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private known: ServerRow[] = [];
  private beating: Promise<void> = Promise.resolve();

  constructor(private readonly o: LeadershipOptions) {
    this.host = serverHost(o.env);
    this.servers = new SqlServers(o.db);
    this.leases = new SqlLeases(o.db);
    if (!o.apiOnly) {
      this.elector = new LeaderElector({
        leases: this.leases,
        holder: o.id,
        ttlMs: o.ttlMs,
        onLead: async (term) => {
          await o.onLead(term);
          await this.beat();
        },
        onLose: async (term) => {
          await o.onLose(term);
          await this.beat().catch(() => undefined);
        },
        log: o.log,
      });
    }
  }

  /** How long a server row may go unseen before the server counts as gone. */
  get staleMs(): number {
    return staleMsFor(this.o.ttlMs);
  }

  /** Servers seen within two lease times count as live (listed, sharing the rate budget). */
  private get recentMs(): number {
    return 2 * this.o.ttlMs;
  }

  get role(): ServerRole {
    if (this.o.apiOnly) return 'api-only';
    return this.elector?.term !== undefined ? 'leader' : 'replica';
  }

  get term(): number | undefined {
    return this.elector?.term;
  }

  /** Whether this server may act as the leader this instant. */
  leadingNow = (): boolean => this.elector?.leadingNow ?? false;

  /**
   * Refuse a server that cannot reach the city's sessions: with a
   * host-bound provider (tmux, subprocess) every server must be on the
   * host of the live ones.
   */
  async checkHost(): Promise<void> {
    if (!HOST_BOUND_PROVIDERS.has(this.o.provider)) return;
    const others = (await this.servers.live(this.staleMs)).filter((s) => s.host !== this.host);
    if (!others.length) return;
    const there = others[0]!;
    throw new GcError(
      'conflict',
      `this city's sessions run on ${there.host} ([session] provider = "${this.o.provider}" keeps them on one host), and this server is on ${this.host}: it could not reach them`,
      {
        fix: `start servers of this city on ${there.host} only, or run sessions where every host reaches them ([session] provider = "exec" or Kubernetes)`,
        details: { sessions_host: there.host, this_host: this.host, provider: this.o.provider },
      },
    );
  }

  /**
   * A leader that died on this host (its pid is gone) need not be waited
   * for: its lease is released now, so a server restarted after a crash
   * leads at once rather than after a lease time. (A pid taken by another
   * process since looks alive: then the lease is waited out.)
   */
  private async releaseDeadLeader(): Promise<void> {
    const lease = await this.leases.get('leader');
    if (!lease.holder || lease.holder === this.o.id) return;
    const [row] = (await this.servers.live(this.staleMs * 4)).filter((s) => s.id === lease.holder);
    if (!row || row.host !== this.host || processAlive(row.pid)) return;
    await this.leases.release('leader', lease.holder, lease.term);
    this.o.log(
      `leader: ${lease.holder} (pid ${row.pid} on this host) is gone; its lease is released`,
    );
  }

  /** Register, then stand for leader (unless api-only); resolves after the first try. */
  async start(): Promise<void> {
    await this.beat();
    if (this.elector) await this.releaseDeadLeader();
    const every = this.elector?.renewIntervalMs ?? Math.floor(this.o.ttlMs / 3);
    this.timer = setInterval(() => {
      this.beating = this.beat().catch((e: unknown) =>
        this.o.log(`servers: heartbeat: ${errorMessage(e)}`),
      );
    }, every);
    this.timer.unref();
    await this.elector?.start();
  }

  /** Write this server's row; the leader also clears the rows of servers that died. */
  private async beat(): Promise<void> {
    const term = this.elector?.term;
    await this.servers.beat({
      id: this.o.id,
      host: this.host,
      pid: process.pid,
      role: this.role,
      provider: this.o.provider,
      socket: this.o.socket,
      url: this.o.url(),
      term: term ?? 0,
      started_at: this.startedAt,
    });
    if (term !== undefined) await this.servers.sweep(this.staleMs * 4);
    this.known = await this.servers.live(this.recentMs);
  }

  /** The live servers as last seen (refreshed at every heartbeat). */
  get live(): readonly ServerRow[] {
    return this.known;
  }

  /** Every live server now, and the leader's row among them. */
  async list(): Promise<{ servers: ServerRow[]; leader: ServerRow | undefined }> {
    const servers = await this.servers.live(this.recentMs);
    this.known = servers;
    return { servers, leader: leaderOf(servers) };
  }

  /**
   * The leader's row as last seen (refreshed at every heartbeat). None
   * known, or the one known no longer holding the lease as far as this
   * server can tell: look again now (at most every quarter second), for
   * the next caller.
   */
  get leader(): ServerRow | undefined {
    const leader = leaderOf(this.known);
    if (!leader && performance.now() - this.lookedAt > 250) {
      this.lookedAt = performance.now();
      this.list().catch(() => undefined);
    }
    return leader;
  }

  private lookedAt = 0;

  /** The leader's row was wrong (it did not answer): look again. */
  forget(id: string): void {
    this.known = this.known.filter((s) => s.id !== id || s.role !== 'leader');
  }

  /** Stop standing for leader (giving the lease up), stop beating, remove the row. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.elector?.stop();
    await this.beating;
    await this.servers.remove(this.o.id).catch((e: unknown) => {
      this.o.log(`servers: removing this server's row: ${errorMessage(e)}`);
    });
  }
}

function leaderOf(servers: readonly ServerRow[]): ServerRow | undefined {
  let best: ServerRow | undefined;
  for (const s of servers) if (s.role === 'leader' && (!best || s.term > best.term)) best = s;
  return best;
}

/**
 * Servers unseen for two lease times (at least 10 s; six missed
 * heartbeats) are gone: their pending requests are taken over by retries.
 * (A server of this host whose process is gone is gone at once.)
 */
export function staleMsFor(ttlMs: number): number {
  return Math.max(10_000, 2 * ttlMs);
}
