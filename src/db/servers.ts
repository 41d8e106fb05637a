/**
 * The live servers of a city (gc_servers): each server writes its row at
 * start and again at every lease renewal (`seen_at`, by the database's
 * clock), and removes it when it stops. A row not seen for `staleMs` is a
 * server that died; the leader deletes such rows. `gc status` lists them,
 * replicas find the leader's address here, and rate budgets are split by
 * the number of live servers.
 */
import type { SqlDb } from './db.js';
import { dbNow } from './lease.js';

export type ServerRole = 'leader' | 'replica' | 'api-only';

export interface ServerRow {
  id: string;
  host: string;
  pid: number;
  role: ServerRole;
  /** The session provider it runs (`tmux`, `k8s`, ...). */
  provider: string;
  /** Its own Unix socket (reachable from its host only). */
  socket: string;
  /** Its TCP address (`http://host:port`), '' without one. */
  url: string;
  /** The leader's term while it leads, else 0. */
  term: number;
  started_at: number;
  seen_at: number;
}

export class SqlServers {
  constructor(private readonly db: SqlDb) {}

  /** Write this server's row (insert or update) with seen_at = now. */
  async beat(
    row: Omit<ServerRow, 'seen_at' | 'started_at'> & { started_at: number },
  ): Promise<void> {
    const now = dbNow(this.db);
    const cols = 'id, host, pid, role, provider, socket, url, term, started_at, seen_at';
    const vals = [
      row.id,
      row.host,
      row.pid,
      row.role,
      row.provider,
      row.socket,
      row.url,
      row.term,
      row.started_at,
    ];
    const set = 'role = ?, socket = ?, url = ?, term = ?';
    const sql =
      this.db.dialect === 'postgres'
        ? `INSERT INTO gc_servers (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ${now})
           ON CONFLICT (id) DO UPDATE SET ${set}, seen_at = ${now}`
        : `INSERT INTO gc_servers (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ${now})
           ON DUPLICATE KEY UPDATE ${set}, seen_at = ${now}`;
    await this.db.run(sql, [...vals, row.role, row.socket, row.url, row.term]);
  }

  /** Servers seen within `staleMs` (by the database's clock), oldest first. */
  async live(staleMs: number): Promise<ServerRow[]> {
    const rows = await this.db.query<ServerRow>(
      `SELECT id, host, pid, role, provider, socket, url, term, started_at, seen_at
       FROM gc_servers WHERE seen_at >= ${dbNow(this.db)} - ? ORDER BY started_at, id`,
      [staleMs],
    );
    return rows.map((r) => ({
      ...r,
      pid: Number(r.pid),
      term: Number(r.term),
      started_at: Number(r.started_at),
      seen_at: Number(r.seen_at),
    }));
  }

  /** Delete the rows of servers not seen within `staleMs`; how many went. */
  sweep(staleMs: number): Promise<number> {
    return this.db.run(`DELETE FROM gc_servers WHERE seen_at < ${dbNow(this.db)} - ?`, [staleMs]);
  }

  async remove(id: string): Promise<void> {
    await this.db.run('DELETE FROM gc_servers WHERE id = ?', [id]);
  }
}

/**
 * City-wide flags (gc_flags): state the leader acts on that must follow
 * leadership from server to server and host to host (today: suspended).
 */
export class SqlFlags {
  constructor(private readonly db: SqlDb) {}

  async get(name: string): Promise<boolean> {
    const rows = await this.db.query('SELECT name FROM gc_flags WHERE name = ?', [name]);
    return rows.length > 0;
  }

  async set(name: string, on: boolean): Promise<void> {
    if (!on) {
      await this.db.run('DELETE FROM gc_flags WHERE name = ?', [name]);
      return;
    }
    const now = Date.now();
    await this.db.run(
      this.db.dialect === 'postgres'
        ? 'INSERT INTO gc_flags (name, value, at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING'
        : 'INSERT IGNORE INTO gc_flags (name, value, at) VALUES (?, ?, ?)',
      [name, new Date(now).toISOString(), now],
    );
  }
}
