/**
 * Usage records (tokens and dollars an agent spent) and where they are
 * kept: `.gc/usage.db` (SQLite) or, with [database] url, the city's
 * database (schema v12), so every server of the city adds them up the
 * same. Each record has a dedup key: a transcript's request id, a rollout
 * line, or the id a `gc cost record` caller gives; a record seen twice is
 * kept once. One seam, one conformance suite (usage-conformance.ts).
 */
import Database from 'better-sqlite3';
import type { SqlDb } from '../db/index.js';

export interface UsageRecord {
  /** Unique per record: `claude:<request id>`, `codex:<file>:<line>`, `record:<id>`. */
  dedup: string;
  session: string;
  /** The agent template. */
  agent: string;
  rig: string;
  bead: string;
  /** The agent CLI: claude, codex, or what a caller says. */
  provider: string;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  /** Tokens written to a prompt cache (priced apart where the model says). */
  cache_write_tokens: number;
  output_tokens: number;
  /** Dollars: given by the source, or from the price table; null when neither knows. */
  cost_usd: number | null;
  source: 'record' | 'claude' | 'codex';
  /** Epoch ms. */
  at: number;
}

export const USAGE_BY = ['agent', 'rig', 'bead', 'model', 'session', 'provider'] as const;
export type UsageBy = (typeof USAGE_BY)[number];

export interface UsageQuery {
  by?: UsageBy;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  agent?: string;
  rig?: string;
}

export interface UsageTotal {
  /** The group's value ("" for all, or a record without it). */
  key: string;
  records: number;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  /** Every token, of every kind. */
  tokens: number;
  cost_usd: number;
  /** Records with no price (their tokens count, their dollars do not). */
  unpriced: number;
}

export interface UsageRecords {
  /** Add records; those whose dedup key is known already are skipped. Resolves with how many were new. */
  add(records: readonly UsageRecord[]): Promise<number>;
  /** Totals over the records that match, grouped by `by` (one row when none), largest cost first. */
  totals(q?: UsageQuery): Promise<UsageTotal[]>;
  close(): Promise<void>;
}

const COLS = [
  'dedup',
  'session',
  'agent',
  'rig',
  'bead',
  'provider',
  'model',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'output_tokens',
  'cost_usd',
  'source',
  'at',
] as const;

const values = (r: UsageRecord): unknown[] => COLS.map((c) => r[c]);

function where(q: UsageQuery): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  if (q.since !== undefined) {
    parts.push('at >= ?');
    args.push(q.since);
  }
  if (q.until !== undefined) {
    parts.push('at < ?');
    args.push(q.until);
  }
  if (q.agent !== undefined) {
    parts.push('agent = ?');
    args.push(q.agent);
  }
  if (q.rig !== undefined) {
    parts.push('rig = ?');
    args.push(q.rig);
  }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

function totalsSql(q: UsageQuery): { sql: string; args: unknown[] } {
  if (q.by !== undefined && !USAGE_BY.includes(q.by)) throw new Error(`cannot group by ${q.by}`);
  const key = q.by ?? "''";
  const w = where(q);
  return {
    sql: `SELECT ${key} AS k, count(*) AS records,
        sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens,
        sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens,
        sum(coalesce(cost_usd, 0)) AS cost_usd,
        sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) AS unpriced
      FROM gc_usage ${w.sql} ${q.by ? `GROUP BY ${key}` : ''}`,
    args: w.args,
  };
}

type Row = Record<string, string | number | null>;

function total(r: Row): UsageTotal {
  const n = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
  const t = {
    key: String(r.k ?? ''),
    records: n(r.records),
    input_tokens: n(r.input_tokens),
    cached_input_tokens: n(r.cached_input_tokens),
    cache_write_tokens: n(r.cache_write_tokens),
    output_tokens: n(r.output_tokens),
    cost_usd: Math.round(n(r.cost_usd) * 1e6) / 1e6,
    unpriced: n(r.unpriced),
  };
  return {
    ...t,
    tokens: t.input_tokens + t.cached_input_tokens + t.cache_write_tokens + t.output_tokens,
  };
}

const ordered = (rows: UsageTotal[]) =>
  rows
    .filter((r) => r.records > 0)
    .sort((a, b) => b.cost_usd - a.cost_usd || b.tokens - a.tokens || a.key.localeCompare(b.key));

export class SqliteUsage implements UsageRecords {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS gc_usage (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, dedup TEXT NOT NULL UNIQUE,
      session TEXT NOT NULL, agent TEXT NOT NULL, rig TEXT NOT NULL, bead TEXT NOT NULL,
      provider TEXT NOT NULL, model TEXT NOT NULL,
      input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
      cache_write_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
      cost_usd REAL, source TEXT NOT NULL, at INTEGER NOT NULL)`);
    this.db.exec('CREATE INDEX IF NOT EXISTS usage_at ON gc_usage(at)');
    this.db.exec('CREATE INDEX IF NOT EXISTS usage_agent ON gc_usage(agent, at)');
    this.db.exec('CREATE INDEX IF NOT EXISTS usage_rig ON gc_usage(rig, at)');
  }

  add(records: readonly UsageRecord[]): Promise<number> {
    try {
      const ins = this.db.prepare(
        `INSERT OR IGNORE INTO gc_usage (${COLS.join(', ')}) VALUES (${COLS.map(() => '?').join(', ')})`,
      );
      const all = this.db.transaction((rs: readonly UsageRecord[]) =>
        rs.reduce((n, r) => n + ins.run(...values(r)).changes, 0),
      );
      return Promise.resolve(all(records));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  totals(q: UsageQuery = {}): Promise<UsageTotal[]> {
    try {
      const s = totalsSql(q);
      return Promise.resolve(ordered((this.db.prepare(s.sql).all(...s.args) as Row[]).map(total)));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}

export class SqlUsage implements UsageRecords {
  constructor(private readonly db: SqlDb) {}

  async add(records: readonly UsageRecord[]): Promise<number> {
    if (!records.length) return 0;
    const cols = COLS.join(', ');
    const marks = `(${COLS.map(() => '?').join(', ')})`;
    let added = 0;
    // Batches keep a statement's parameters well under the servers' limits.
    for (let i = 0; i < records.length; i += 200) {
      const batch = records.slice(i, i + 200);
      const sql =
        this.db.dialect === 'postgres'
          ? `INSERT INTO gc_usage (${cols}) VALUES ${batch.map(() => marks).join(', ')} ON CONFLICT (dedup) DO NOTHING`
          : `INSERT IGNORE INTO gc_usage (${cols}) VALUES ${batch.map(() => marks).join(', ')}`;
      added += await this.db.run(sql, batch.flatMap(values));
    }
    return added;
  }

  async totals(q: UsageQuery = {}): Promise<UsageTotal[]> {
    const s = totalsSql(q);
    return ordered((await this.db.query<Row>(s.sql, s.args)).map(total));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
