/**
 * Merge requests: one row per request; each attempt's outcome goes to
 * `mr_attempts` and each candidate build to `mq_builds`, for the stats.
 * The rows live in `.gc/mq.db` or the city's database (queue-conn.ts);
 * this SQL runs on both. Every change is one conditional statement or one
 * transaction, so a server and the CLI (or several servers) can share it.
 *
 * States: queued -> testing -> merging -> merged; a conflict makes it
 * needs-rebase, a failing gate needs-fix; rejected and superseded are
 * final. `retry` puts needs-rebase, needs-fix and rejected back in the
 * queue.
 */
import path from 'node:path';
import type { SqlDb } from '../db/index.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  randomBase36,
  systemClock,
  type Clock,
} from '../core/index.js';
import { sqlMqConn, sqliteMqConn, type MqConn, type MqTx } from './queue-conn.js';
import { rigStats, type RigStats } from './queue-stats.js';
import { mergeOrder } from './score.js';

export const MR_STATES = [
  'queued',
  'testing',
  'merging',
  'merged',
  'needs-rebase',
  'needs-fix',
  'rejected',
  'superseded',
] as const;
export type MrState = (typeof MR_STATES)[number];

export interface MergeRequest {
  id: string;
  seq: number;
  rig: string;
  branch: string;
  head: string;
  bead: string;
  author: string;
  priority: number;
  state: MrState;
  submitted_at: number;
  retries: number;
  /** Target commit the last attempt was built on. */
  base: string;
  /** The commit that was (or is being) tested: what lands on the target. */
  tested: string;
  merged_sha: string;
  /** Why it failed: the gate name, or "conflict". */
  reason: string;
  /** Conflicting files, or the tail of the failing gate's output. */
  detail: string;
  conflict_bead: string;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface SubmitInput {
  rig: string;
  branch: string;
  head: string;
  bead?: string;
  author: string;
  priority?: number;
  /** Refuse (ForbiddenError) to replace another author's request (agents' submissions). */
  ownOnly?: boolean;
}

export interface SubmitResult {
  request: MergeRequest;
  /** False when the same branch and head were already queued: nothing new. */
  created: boolean;
  superseded: string[];
}

export type AttemptOutcome = 'merged' | 'conflict' | 'gate_failed' | 'requeued';

export type { RigStats } from './queue-stats.js';

/**
 * One candidate build, for the stats: passed, failed, conflict, cancelled
 * (wasted: its base changed under it), or split (a red or conflicting batch
 * bisected).
 */
export interface BuildRecord {
  size: number;
  outcome: 'passed' | 'failed' | 'conflict' | 'cancelled' | 'split';
  depth: number;
  gateRuns: number;
}

const SHA = /^[0-9a-f]{40}$/;
/** Column widths on MySQL (queue v8 schema): checked here so every backend refuses the same input. */
const MAX = { branch: 255, bead: 128, author: 191 } as const;
const COLS =
  'seq, id, rig, branch, head, bead, author, priority, state, submitted_at, retries, base, tested, merged_sha, reason, detail, conflict_bead, started_at, finished_at, updated_at';
const WAITING = "('queued','testing','needs-rebase','needs-fix')";
const PENDING = "('queued','testing','merging','needs-rebase','needs-fix')";

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** Rows as the queue returns them: numbers as numbers on every backend. */
function normal(r: MergeRequest): MergeRequest {
  return {
    ...r,
    seq: Number(r.seq),
    priority: Number(r.priority),
    retries: Number(r.retries),
    submitted_at: Number(r.submitted_at),
    updated_at: Number(r.updated_at),
    started_at: num(r.started_at),
    finished_at: num(r.finished_at),
  };
}

export interface MergeQueueOptions {
  clock?: Clock;
}

export class MergeQueue {
  private readonly clock: Clock;

  constructor(
    readonly conn: MqConn,
    options: MergeQueueOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /** The queue in a SQLite file (':memory:' for a scratch one). */
  static file(file: string, options: MergeQueueOptions = {}): MergeQueue {
    return new MergeQueue(sqliteMqConn(file), options);
  }

  /** A city's queue: in its database when it has one, else `.gc/mq.db`. */
  static forCity(
    gcDir: string,
    options: MergeQueueOptions & { db?: SqlDb | undefined } = {},
  ): MergeQueue {
    return new MergeQueue(
      options.db ? sqlMqConn(options.db) : sqliteMqConn(path.join(gcDir, 'mq.db')),
      options,
    );
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  async submit(input: SubmitInput): Promise<SubmitResult> {
    if (!SHA.test(input.head)) {
      throw new ValidationError(`must be a full commit sha, got ${JSON.stringify(input.head)}`, {
        where: 'head',
      });
    }
    if (!input.branch.trim()) throw new ValidationError('must not be empty', { where: 'branch' });
    for (const k of ['branch', 'bead', 'author'] as const) {
      const v = input[k] ?? '';
      if (v.length > MAX[k]) {
        throw new ValidationError(`is ${v.length} characters long; at most ${MAX[k]}`, {
          where: k,
        });
      }
    }
    const priority = input.priority ?? 2;
    if (!Number.isInteger(priority) || priority < 0 || priority > 4) {
      throw new ValidationError(`expected 0-4, got ${priority}`, { where: 'priority' });
    }
    const bead = input.bead ?? '';
    return this.conn.transaction(async (tx): Promise<SubmitResult> => {
      await lockRig(tx, input.rig);
      const [same] = await tx.query<MergeRequest>(
        `SELECT ${COLS} FROM mr WHERE rig = ? AND branch = ? AND head = ? AND state != 'superseded'
         ORDER BY seq DESC LIMIT 1`,
        [input.rig, input.branch, input.head],
      );
      if (same) return { request: normal(same), created: false, superseded: [] };
      const now = this.clock.now();
      // A newer submission for the same bead, or the same branch, replaces
      // the older one unless that one is already landing.
      const older = await tx.query<{ id: string; author: string; branch: string }>(
        `SELECT id, author, branch FROM mr WHERE rig = ? AND state IN ${WAITING}
           AND (branch = ? OR (? != '' AND bead = ?)) ORDER BY seq`,
        [input.rig, input.branch, bead, bead],
      );
      const others = input.ownOnly ? older.filter((o) => o.author !== input.author) : [];
      if (others.length) {
        throw new ForbiddenError(
          `${input.author} may not replace ${others.map((o) => `${o.id} (${o.branch}, by ${o.author})`).join(', ')}: a submission replaces only its author's own requests`,
        );
      }
      if (older.length) {
        await tx.run(
          `UPDATE mr SET state = 'superseded', finished_at = ?, updated_at = ?
           WHERE id IN (${older.map(() => '?').join(',')})`,
          [now, now, ...older.map((o) => o.id)],
        );
      }
      const id = `mr-${randomBase36(8)}`;
      await tx.run(
        `INSERT INTO mr (id, rig, branch, head, bead, author, priority, state, submitted_at,
           reason, detail, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, '', '', ?)`,
        [id, input.rig, input.branch, input.head, bead, input.author, priority, now, now],
      );
      return {
        request: await this.read(tx, id),
        created: true,
        superseded: older.map((o) => o.id),
      };
    });
  }

  get(id: string): Promise<MergeRequest> {
    return this.read(this.conn, id);
  }

  private async read(c: MqTx, id: string): Promise<MergeRequest> {
    const [r] = await c.query<MergeRequest>(`SELECT ${COLS} FROM mr WHERE id = ?`, [id]);
    if (!r) throw new NotFoundError('merge request', id);
    return normal(r);
  }

  /** Requests of a rig (or all rigs) in given states, newest first, paged by seq. */
  async list(
    filter: { rig?: string; states?: readonly MrState[]; limit?: number; before?: number } = {},
  ): Promise<MergeRequest[]> {
    const where = ['1 = 1'];
    const args: unknown[] = [];
    if (filter.rig) {
      where.push('rig = ?');
      args.push(filter.rig);
    }
    if (filter.states?.length) {
      where.push(`state IN (${filter.states.map(() => '?').join(',')})`);
      args.push(...filter.states);
    }
    if (filter.before) {
      where.push('seq < ?');
      args.push(filter.before);
    }
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 100) || 100, 1), 1000);
    const rows = await this.conn.query<MergeRequest>(
      `SELECT ${COLS} FROM mr WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ${limit}`,
      args,
    );
    return rows.map(normal);
  }

  /** Queued requests of a rig in merge order. */
  async queued(rig: string): Promise<MergeRequest[]> {
    const rows = await this.conn.query<MergeRequest>(
      `SELECT ${COLS} FROM mr WHERE rig = ? AND state = 'queued'`,
      [rig],
    );
    return mergeOrder(rows.map(normal), this.clock.now());
  }

  /** How many requests of a rig are queued (cheaper than `queued` when only the count matters). */
  async depth(rig: string): Promise<number> {
    const [r] = await this.conn.query<{ n: number }>(
      `SELECT count(*) AS n FROM mr WHERE rig = ? AND state = 'queued'`,
      [rig],
    );
    return Number(r?.n ?? 0);
  }

  /** Set fields of a request; with `from`, only while it is in one of those states (else 0). */
  private async set(
    c: MqTx,
    id: string,
    fields: Partial<MergeRequest>,
    from?: readonly MrState[],
  ): Promise<number> {
    const keys = Object.keys(fields);
    const guard = from ? ` AND state IN (${from.map(() => '?').join(',')})` : '';
    return c.run(
      `UPDATE mr SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?${guard}`,
      [
        ...keys.map((k) => (fields as Record<string, unknown>)[k]),
        this.clock.now(),
        id,
        ...(from ?? []),
      ],
    );
  }

  private async attempt(c: MqTx, mr: MergeRequest, outcome: AttemptOutcome): Promise<void> {
    await c.run('INSERT INTO mr_attempts (mr_id, rig, outcome, at) VALUES (?, ?, ?, ?)', [
      mr.id,
      mr.rig,
      outcome,
      this.clock.now(),
    ]);
  }

  /** The engine took it: testing on `base`. False when it is no longer queued. */
  async startTesting(id: string, base: string): Promise<boolean> {
    const now = this.clock.now();
    const n = await this.conn.run(
      `UPDATE mr SET state = 'testing', base = ?, tested = '', started_at = coalesce(started_at, ?), updated_at = ?
       WHERE id = ? AND state IN ('queued','testing')`,
      [base, now, now, id],
    );
    return n === 1;
  }

  /** About to move the target to `tested` (recorded first, for crash recovery). */
  async markMerging(id: string, base: string, tested: string): Promise<MergeRequest> {
    await this.set(this.conn, id, { state: 'merging', base, tested });
    return this.get(id);
  }

  /** Merged at `sha`; recorded once however often it is called. */
  markMerged(id: string, sha: string): Promise<MergeRequest> {
    return this.conn.transaction(async (tx) => {
      const now = this.clock.now();
      const changed = await tx.run(
        `UPDATE mr SET state = 'merged', merged_sha = ?, finished_at = ?, reason = '', detail = '', updated_at = ?
         WHERE id = ? AND state != 'merged'`,
        [sha, now, now, id],
      );
      const done = await this.read(tx, id);
      if (changed) await this.attempt(tx, done, 'merged');
      return done;
    });
  }

  /** Sent back to its author: it conflicts (with `files`) on the target. */
  markConflict(id: string, files: string[], conflictBead = ''): Promise<MergeRequest> {
    return this.fail(id, 'conflict', {
      state: 'needs-rebase',
      reason: 'conflict',
      detail: files.join('\n'),
      conflict_bead: conflictBead,
    });
  }

  async setConflictBead(id: string, bead: string): Promise<void> {
    await this.set(this.conn, id, { conflict_bead: bead });
  }

  /** Sent back to its author: gate `gate` failed with output `tail`. */
  markGateFailed(id: string, gate: string, tail: string): Promise<MergeRequest> {
    return this.fail(id, 'gate_failed', { state: 'needs-fix', reason: gate, detail: tail });
  }

  private fail(
    id: string,
    outcome: AttemptOutcome,
    fields: Partial<MergeRequest>,
  ): Promise<MergeRequest> {
    return this.conn.transaction(async (tx) => {
      await this.set(tx, id, { ...fields, finished_at: this.clock.now() });
      const mr = await this.read(tx, id);
      await this.attempt(tx, mr, outcome);
      return mr;
    });
  }

  /** Back to the queue without counting a retry (its base moved, or a restart). */
  async requeue(id: string): Promise<void> {
    await this.conn.run(
      `UPDATE mr SET state = 'queued', tested = '', updated_at = ? WHERE id = ? AND state IN ('testing','merging')`,
      [this.clock.now(), id],
    );
  }

  /** Rejected by a person: only while it waits (not while it lands). */
  async reject(id: string, reason: string): Promise<MergeRequest> {
    const fields = {
      state: 'rejected' as const,
      reason: 'rejected',
      detail: reason,
      finished_at: this.clock.now(),
    };
    if (
      !(await this.set(this.conn, id, fields, ['queued', 'testing', 'needs-rebase', 'needs-fix']))
    )
      throw await this.refusal(id, 'only a waiting request can be rejected');
    return this.get(id);
  }

  /** Back in the queue, counting a retry. */
  async retry(id: string): Promise<MergeRequest> {
    const n = await this.conn.run(
      `UPDATE mr SET state = 'queued', retries = retries + 1, reason = '', detail = '',
         finished_at = NULL, updated_at = ?
       WHERE id = ? AND state IN ('needs-rebase','needs-fix','rejected')`,
      [this.clock.now(), id],
    );
    if (!n) throw await this.refusal(id, 'only needs-rebase, needs-fix or rejected can be retried');
    return this.get(id);
  }

  /** The error for a change its request's state does not allow (NotFound when there is none). */
  private async refusal(id: string, rule: string): Promise<Error> {
    const mr = await this.get(id);
    return new ConflictError(`merge request ${id} is ${mr.state}; ${rule}`);
  }

  /** Requests left testing or merging by a server that stopped. */
  async unfinished(rig: string): Promise<MergeRequest[]> {
    const rows = await this.conn.query<MergeRequest>(
      `SELECT ${COLS} FROM mr WHERE rig = ? AND state IN ('testing','merging') ORDER BY seq`,
      [rig],
    );
    return rows.map(normal);
  }

  /** Whether a request for `bead` still wants to merge (waiting, in flight or sent back). */
  async hasPending(bead: string): Promise<boolean> {
    const rows = await this.conn.query(
      `SELECT 1 AS one FROM mr WHERE bead = ? AND state IN ${PENDING} LIMIT 1`,
      [bead],
    );
    return rows.length > 0;
  }

  /** The requests naming `bead`, newest first (at most `limit`). */
  async forBead(bead: string, limit = 20): Promise<MergeRequest[]> {
    if (!bead) return [];
    const rows = await this.conn.query<MergeRequest>(
      `SELECT ${COLS} FROM mr WHERE bead = ? ORDER BY seq DESC LIMIT ?`,
      [bead, Math.max(1, Math.min(1000, Math.floor(limit)))],
    );
    return rows.map(normal);
  }

  /** Beads with a request in the queue now (queued, testing, merging). */
  async queuedBeads(): Promise<string[]> {
    const rows = await this.conn.query<{ bead: string }>(
      `SELECT DISTINCT bead FROM mr WHERE bead != '' AND state IN ('queued','testing','merging')`,
    );
    return rows.map((r) => r.bead);
  }

  async recordBuild(rig: string, b: BuildRecord): Promise<void> {
    await this.conn.run(
      'INSERT INTO mq_builds (rig, size, outcome, depth, gate_runs, at) VALUES (?, ?, ?, ?, ?, ?)',
      [rig, b.size, b.outcome, b.depth, b.gateRuns, this.clock.now()],
    );
  }

  stats(rig: string): Promise<RigStats> {
    return rigStats(this.conn, rig, this.clock.now());
  }
}

/**
 * Hold the rig's row until the transaction ends, so submissions to one rig
 * take turns across servers (SQLite: BEGIN IMMEDIATE already does). Where
 * row locks are no-ops (Dolt), two such updates conflict at commit and the
 * loser runs again.
 */
async function lockRig(tx: MqTx, rig: string): Promise<void> {
  if (tx.dialect === 'postgres') {
    await tx.run(
      `INSERT INTO mq_rigs (rig, submissions) VALUES (?, 1)
       ON CONFLICT (rig) DO UPDATE SET submissions = mq_rigs.submissions + 1`,
      [rig],
    );
  } else if (tx.dialect === 'mysql') {
    await tx.run(
      `INSERT INTO mq_rigs (rig, submissions) VALUES (?, 1)
       ON DUPLICATE KEY UPDATE submissions = submissions + 1`,
      [rig],
    );
  }
}
