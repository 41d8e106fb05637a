/**
 * Moving a stopped city from `.gc/` (SQLite and the JSONL log) into an
 * empty database: `gc db copy --to URL`. Under the city lock, events still
 * in the outbox go to the log first; then, in one transaction on the
 * target, every table is copied with its own keys and seqs (beads keep
 * their seq, so labels and metadata keep pointing at them; events keep
 * their seq, so watchers and `after_seq` cursors stay valid), API keys with
 * the server secret (every key keeps working), idempotency answers and
 * runs, the merge queue (requests keep their ids and seqs, with their
 * attempts and builds) and the controller's session facts. Before the
 * commit it verifies: the same count in every table, the same latest seq,
 * and the log replays to the copied beads. Any mismatch rolls everything
 * back. The `.gc/` files are left as they were (delete them once the city
 * runs on the database).
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GcError } from '../core/index.js';
import { dialectOf, migrate, openSqlDb, redactUrl, type SqlConn } from '../db/index.js';
import type { GcEvent } from '../events/index.js';
import { CityOps } from './ops.js';
import { replayBeads } from './replay.js';
import { openCityState } from './state.js';

export interface CopyResult {
  to: string;
  tables: Record<string, number>;
  latest_seq: number;
  /** Beads whose state the log replays to; null when the log does not start at seq 1 (pruned). */
  replay_checked: number | null;
  /** Files under .gc/ now copied (kept in place: remove them once the city runs on the database). */
  copied_from: string[];
}

type Row = Record<string, unknown>;

/** One table copied from a SQLite file under .gc/: what to read and which columns to write. */
interface Copied {
  table: string;
  file: string;
  select: string;
  cols: string[];
  map?: (r: Row) => Row;
}

const BEAD_COLS = [
  'seq',
  'id',
  'title',
  'status',
  'issue_type',
  'priority',
  'created_at',
  'updated_at',
  'closed_at',
  'close_reason',
  'assignee',
  'from_actor',
  'parent',
  'ref',
  'description',
  'claimed_at',
  'lease_expires_at',
  'attempt',
  'blocked',
  'infra',
];
const KEY_COLS = [
  'seq',
  'key_id',
  'kind',
  'name',
  'owner',
  'max_sessions',
  'webhook_url',
  'hmac',
  'created_at',
  'revoked_at',
];
const RUN_COLS = [
  'seq',
  'id',
  'session',
  'template',
  'owner',
  'owner_key',
  'owner_kind',
  'state',
  'exit_code',
  'error',
  'created_at',
  'ended_at',
];
const MR_COLS = [
  'seq',
  'id',
  'rig',
  'branch',
  'head',
  'bead',
  'author',
  'priority',
  'state',
  'submitted_at',
  'retries',
  'base',
  'tested',
  'merged_sha',
  'reason',
  'detail',
  'conflict_bead',
  'started_at',
  'finished_at',
  'updated_at',
];

/** In insert order. Events, the server secret and session facts are copied on their own. */
const COPIED: readonly Copied[] = [
  { table: 'beads', file: 'beads.db', select: 'SELECT * FROM beads ORDER BY seq', cols: BEAD_COLS },
  {
    table: 'labels',
    file: 'beads.db',
    select: 'SELECT bead_seq, label FROM labels',
    cols: ['bead_seq', 'label'],
  },
  {
    table: 'metadata',
    file: 'beads.db',
    select: 'SELECT bead_seq, key AS k, value AS v FROM metadata',
    cols: ['bead_seq', 'k', 'v'],
  },
  {
    table: 'deps',
    file: 'beads.db',
    select: 'SELECT * FROM deps',
    cols: ['issue_id', 'depends_on_id', 'type', 'created_at'],
  },
  {
    table: 'requests',
    file: 'beads.db',
    select: 'SELECT scope, key AS rkey, n, fp, result, at FROM requests',
    cols: ['scope', 'rkey', 'n', 'fp', 'result', 'at'],
  },
  {
    table: 'api_keys',
    file: 'auth.db',
    select: 'SELECT * FROM keys ORDER BY seq',
    cols: KEY_COLS,
    map: (k) => ({ ...k, hmac: Buffer.from(k.hmac as Buffer).toString('hex') }),
  },
  {
    table: 'idempotency',
    file: 'api.db',
    select: 'SELECT scope, key AS ikey, fp, status, body, at FROM idempotency',
    cols: ['scope', 'ikey', 'fp', 'status', 'body', 'at'],
  },
  { table: 'runs', file: 'api.db', select: 'SELECT * FROM runs ORDER BY seq', cols: RUN_COLS },
  { table: 'mr', file: 'mq.db', select: 'SELECT * FROM mr ORDER BY seq', cols: MR_COLS },
  {
    table: 'mr_attempts',
    file: 'mq.db',
    select: 'SELECT * FROM mr_attempts',
    cols: ['mr_id', 'rig', 'outcome', 'at'],
  },
  {
    table: 'mq_builds',
    file: 'mq.db',
    select: 'SELECT * FROM mq_builds',
    cols: ['rig', 'size', 'outcome', 'depth', 'gate_runs', 'at'],
  },
];

/** Tables whose rows carry their own seq: PostgreSQL's sequences continue after them. */
const SEQUENCED = ['beads', 'api_keys', 'runs', 'mr'];
const MUST_BE_EMPTY = ['beads', 'events', 'api_keys', 'runs', 'idempotency', 'requests', 'mr'];

/** Insert rows in slices (one statement per slice). */
async function insertRows(tx: SqlConn, table: string, cols: string[], rows: Row[]) {
  const SLICE = Math.max(1, Math.floor(2000 / cols.length));
  for (let i = 0; i < rows.length; i += SLICE) {
    const part = rows.slice(i, i + SLICE);
    await tx.run(
      `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${part
        .map(() => `(${cols.map(() => '?').join(', ')})`)
        .join(', ')}`,
      part.flatMap((r) => cols.map((c) => r[c] ?? null)),
    );
  }
  return rows.length;
}

function readTable(file: string, sql: string): Row[] {
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as Row[];
  } catch (e) {
    // A file from before the table existed: nothing of that kind to copy.
    if (/no such table/.test((e as Error).message)) return [];
    throw e;
  } finally {
    db.close();
  }
}

/** The controller's session facts (`.gc/sessions.json`) as session_facts rows. */
function sessionFacts(file: string): Row[] {
  if (!existsSync(file)) return [];
  let parsed: { sessions?: { session: string; deaths: number[]; quarantined: boolean }[] };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (e) {
    throw new GcError('invalid', `cannot read ${file}: ${(e as Error).message}`, {
      fix: 'move it aside (crash-loop records and quarantines are then not copied)',
    });
  }
  return (parsed.sessions ?? []).map((f) => ({
    session: f.session,
    deaths: JSON.stringify(f.deaths),
    quarantined: f.quarantined ? 1 : 0,
    updated_at: Date.now(),
  }));
}

async function countOf(tx: SqlConn, table: string): Promise<number> {
  const [r] = await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(r?.n ?? 0);
}

export async function copyCityToDatabase(
  root: string,
  url: string,
  log: (line: string) => void = () => undefined,
): Promise<CopyResult> {
  dialectOf(url);
  const state = await openCityState({ root, role: 'cli', command: 'gc db copy' });
  try {
    if (state.db) {
      throw new GcError('conflict', 'this city is already on a database ([database] url is set)', {
        fix: 'gc db copy moves a city from .gc/ into a database; unset [database] url first',
      });
    }
    // Committed events still in the outbox go to the log first.
    const ops = new CityOps(state.store, state.events, () => undefined, log);
    await ops.recover();
    await ops.flush();
    ops.close();

    const gc = state.gcDir;
    const rows = new Map(
      COPIED.map((c) => {
        const read = readTable(join(gc, c.file), c.select);
        return [c.table, c.map ? read.map(c.map) : read] as const;
      }),
    );
    const facts = sessionFacts(join(gc, 'sessions.json'));
    const secretFile = join(gc, 'server.secret');
    const secret = existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '';
    const events: GcEvent[] = [];
    for (let after = 0; ;) {
      const page = await state.events.list({ afterSeq: after, limit: 10_000 });
      events.push(...page.items);
      if (page.next_after_seq === null) break;
      after = page.next_after_seq;
    }
    const latest = await state.events.latestSeq();

    const db = await openSqlDb(url, { poolSize: 2 });
    try {
      await migrate(db);
      const tables: Record<string, number> = {};
      let replayChecked: number | null = null;
      await db.transaction(async (tx) => {
        for (const t of MUST_BE_EMPTY) {
          if ((await countOf(tx, t)) > 0) {
            throw new GcError('conflict', `${redactUrl(url)} is not empty: table ${t} has rows`, {
              fix: 'copy into a new, empty database',
            });
          }
        }
        log(
          `copying ${rows.get('beads')!.length} beads and ${events.length} events to ${redactUrl(url)}`,
        );
        for (const c of COPIED) {
          tables[c.table] = await insertRows(tx, c.table, c.cols, rows.get(c.table)!);
        }
        tables.events = await insertRows(
          tx,
          'events',
          ['seq', 'type', 'ts', 'ts_ms', 'actor', 'subject', 'message', 'payload'],
          events.map((e) => ({
            seq: e.seq,
            type: e.type,
            ts: e.ts,
            ts_ms: Number.isNaN(Date.parse(e.ts)) ? 0 : Date.parse(e.ts),
            actor: e.actor,
            subject: e.subject ?? null,
            message: e.message ?? null,
            payload: e.payload === undefined ? null : JSON.stringify(e.payload),
          })),
        );
        await tx.run('UPDATE event_seq SET next = ? WHERE id = 1', [latest]);
        tables.session_facts = await insertRows(
          tx,
          'session_facts',
          ['session', 'deaths', 'quarantined', 'updated_at'],
          facts,
        );
        if (secret) {
          await tx.run("INSERT INTO gc_secrets (name, value) VALUES ('server', ?)", [secret]);
        }
        if (tx.dialect === 'postgres') {
          // Rows came with their seqs: new ones continue after them.
          for (const t of SEQUENCED) {
            await tx.query(
              `SELECT setval(pg_get_serial_sequence('${t}', 'seq'), GREATEST((SELECT max(seq) FROM ${t}), 1), (SELECT max(seq) FROM ${t}) IS NOT NULL)`,
            );
          }
        }

        // Verify before committing: every count, the latest seq, and the replay.
        for (const [t, n] of Object.entries(tables)) {
          const got = await countOf(tx, t);
          if (got !== n) {
            throw new GcError(
              'internal',
              `copy check: ${t} has ${got} rows on the target, ${n} in .gc/`,
            );
          }
        }
        const [s] = await tx.query<{ next: number }>('SELECT next FROM event_seq WHERE id = 1');
        if (Number(s?.next) !== latest) {
          throw new GcError('internal', `copy check: latest seq ${String(s?.next)}, not ${latest}`);
        }
        // A log whose start was pruned (retention) cannot be replayed.
        if (!events.length || events[0]!.seq === 1) replayChecked = await checkReplay(tx);
      });
      const files = [...new Set(COPIED.map((c) => c.file)), 'sessions.json', 'server.secret'];
      return {
        to: redactUrl(url),
        tables,
        latest_seq: latest,
        replay_checked: replayChecked,
        copied_from: files.filter((f) => existsSync(join(gc, f))).map((f) => `.gc/${f}`),
      };
    } finally {
      await db.close();
    }
  } finally {
    await state.close();
  }
}

/**
 * Replay the copied log and compare with the copied beads (status, holder,
 * claim attempt), as the crash tests do; returns how many beads agreed.
 * Messages are mail: their events are mail.*, so they are not compared.
 */
async function checkReplay(tx: SqlConn): Promise<number> {
  const events: GcEvent[] = [];
  for (let after = 0; ;) {
    const rows = await tx.query<{
      seq: number;
      type: string;
      subject: string | null;
      payload: string | null;
      ts: string;
      actor: string;
    }>(
      'SELECT seq, type, ts, actor, subject, payload FROM events WHERE seq > ? ORDER BY seq LIMIT 10000',
      [after],
    );
    if (!rows.length) break;
    for (const r of rows) {
      const e: GcEvent = { seq: Number(r.seq), type: r.type, ts: r.ts, actor: r.actor };
      if (r.subject !== null) e.subject = r.subject;
      if (r.payload !== null) e.payload = JSON.parse(r.payload) as unknown;
      events.push(e);
    }
    after = Number(rows[rows.length - 1]!.seq);
  }
  let replayed;
  try {
    replayed = replayBeads(events);
  } catch (e) {
    throw new GcError('internal', `copy check: the log does not replay: ${(e as Error).message}`);
  }
  const beads = await tx.query<{ id: string; status: string; assignee: string; attempt: number }>(
    "SELECT id, status, assignee, attempt FROM beads WHERE issue_type <> 'message'",
  );
  let agreed = 0;
  for (const b of beads) {
    const r = replayed.get(b.id);
    if (
      !r ||
      r.status !== b.status ||
      r.assignee !== b.assignee ||
      r.attempt !== Number(b.attempt)
    ) {
      throw new GcError(
        'internal',
        `copy check: bead ${b.id} is ${b.status}/${b.assignee || '-'}/${b.attempt} in the store but ${r ? `${r.status}/${r.assignee || '-'}/${r.attempt}` : 'missing'} by the log`,
      );
    }
    agreed++;
  }
  return agreed;
}
