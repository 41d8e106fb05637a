/**
 * Merge requests, kept in SQLite (`.gc/mq.db`, WAL, so the CLI and the
 * city server can both open it). One row per request; each attempt's
 * outcome goes to `mr_attempts` for the stats.
 *
 * States: queued -> testing -> merging -> merged; a conflict makes it
 * needs-rebase, a failing gate needs-fix; rejected and superseded are
 * final. `retry` puts needs-rebase, needs-fix and rejected back in the
 * queue.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  randomBase36,
  systemClock,
  type Clock,
} from '../core/index.js';
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

/** States in which a request still wants to merge. */
const ACTIVE: readonly MrState[] = ['queued', 'testing', 'merging', 'needs-rebase', 'needs-fix'];

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS mr (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  rig TEXT NOT NULL,
  branch TEXT NOT NULL,
  head TEXT NOT NULL,
  bead TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL DEFAULT '',
  priority INTEGER NOT NULL DEFAULT 2,
  state TEXT NOT NULL,
  submitted_at INTEGER NOT NULL,
  retries INTEGER NOT NULL DEFAULT 0,
  base TEXT NOT NULL DEFAULT '',
  tested TEXT NOT NULL DEFAULT '',
  merged_sha TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  conflict_bead TEXT NOT NULL DEFAULT '',
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mr_rig_state ON mr(rig, state, seq);
CREATE INDEX IF NOT EXISTS mr_branch ON mr(rig, branch, head);
CREATE INDEX IF NOT EXISTS mr_bead ON mr(bead) WHERE bead != '';
CREATE TABLE IF NOT EXISTS mr_attempts (
  mr_id TEXT NOT NULL,
  rig TEXT NOT NULL,
  outcome TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mr_attempts_rig ON mr_attempts(rig, at);
CREATE TABLE IF NOT EXISTS mq_builds (
  rig TEXT NOT NULL,
  size INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  depth INTEGER NOT NULL DEFAULT 0,
  gate_runs INTEGER NOT NULL DEFAULT 0,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mq_builds_rig ON mq_builds(rig, at);
`;

const SHA = /^[0-9a-f]{40}$/;

export class MergeQueue {
  readonly db: Database.Database;
  private readonly clock: Clock;

  constructor(file: string, options: { clock?: Clock } = {}) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(SCHEMA);
    this.clock = options.clock ?? systemClock;
  }

  static forCity(gcDir: string, options: { clock?: Clock } = {}): MergeQueue {
    return new MergeQueue(path.join(gcDir, 'mq.db'), options);
  }

  close(): void {
    this.db.close();
  }

  submit(input: SubmitInput): SubmitResult {
    if (!SHA.test(input.head)) {
      throw new ValidationError(`must be a full commit sha, got ${JSON.stringify(input.head)}`, {
        where: 'head',
      });
    }
    if (!input.branch.trim()) throw new ValidationError('must not be empty', { where: 'branch' });
    const priority = input.priority ?? 2;
    if (!Number.isInteger(priority) || priority < 0 || priority > 4) {
      throw new ValidationError(`expected 0-4, got ${priority}`, { where: 'priority' });
    }
    return this.db
      .transaction((): SubmitResult => {
        const same = this.db
          .prepare(
            `SELECT * FROM mr WHERE rig = ? AND branch = ? AND head = ? AND state != 'superseded'
             ORDER BY seq DESC LIMIT 1`,
          )
          .get(input.rig, input.branch, input.head) as MergeRequest | undefined;
        if (same) return { request: same, created: false, superseded: [] };
        const now = this.clock.now();
        // A newer submission for the same bead, or the same branch, replaces
        // the older one unless that one is already landing.
        const older = this.db
          .prepare(
            `SELECT id, author, branch FROM mr WHERE rig = ? AND state IN ('queued','testing','needs-rebase','needs-fix')
               AND (branch = ? OR (? != '' AND bead = ?))`,
          )
          .all(input.rig, input.branch, input.bead ?? '', input.bead ?? '') as {
          id: string;
          author: string;
          branch: string;
        }[];
        const others = input.ownOnly ? older.filter((o) => o.author !== input.author) : [];
        if (others.length) {
          throw new ForbiddenError(
            `${input.author} may not replace ${others.map((o) => `${o.id} (${o.branch}, by ${o.author})`).join(', ')}: a submission replaces only its author's own requests`,
          );
        }
        for (const o of older) {
          this.db
            .prepare(
              `UPDATE mr SET state = 'superseded', finished_at = ?, updated_at = ? WHERE id = ?`,
            )
            .run(now, now, o.id);
        }
        const id = `mr-${randomBase36(8)}`;
        this.db
          .prepare(
            `INSERT INTO mr (id, rig, branch, head, bead, author, priority, state, submitted_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
          )
          .run(
            id,
            input.rig,
            input.branch,
            input.head,
            input.bead ?? '',
            input.author,
            priority,
            now,
            now,
          );
        return { request: this.get(id), created: true, superseded: older.map((o) => o.id) };
      })
      .immediate();
  }

  get(id: string): MergeRequest {
    const r = this.db.prepare('SELECT * FROM mr WHERE id = ?').get(id) as MergeRequest | undefined;
    if (!r) throw new NotFoundError('merge request', id);
    return r;
  }

  /** Requests of a rig (or all rigs) in given states, newest first, paged by seq. */
  list(
    filter: { rig?: string; states?: readonly MrState[]; limit?: number; before?: number } = {},
  ): MergeRequest[] {
    const where = ['1'];
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
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    return this.db
      .prepare(`SELECT * FROM mr WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`)
      .all(...args, limit) as MergeRequest[];
  }

  /** Queued requests of a rig in merge order. */
  queued(rig: string): MergeRequest[] {
    const rows = this.db
      .prepare(`SELECT * FROM mr WHERE rig = ? AND state = 'queued'`)
      .all(rig) as MergeRequest[];
    return mergeOrder(rows, this.clock.now());
  }

  private set(id: string, fields: Partial<MergeRequest>): MergeRequest {
    const keys = Object.keys(fields);
    this.db
      .prepare(
        `UPDATE mr SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?`,
      )
      .run(...keys.map((k) => (fields as Record<string, unknown>)[k]), this.clock.now(), id);
    return this.get(id);
  }

  private attempt(mr: MergeRequest, outcome: AttemptOutcome): void {
    this.db
      .prepare('INSERT INTO mr_attempts (mr_id, rig, outcome, at) VALUES (?, ?, ?, ?)')
      .run(mr.id, mr.rig, outcome, this.clock.now());
  }

  /** The engine took it: testing on `base`. False when it is no longer queued. */
  startTesting(id: string, base: string): boolean {
    const r = this.db
      .prepare(
        `UPDATE mr SET state = 'testing', base = ?, tested = '', started_at = coalesce(started_at, ?), updated_at = ?
         WHERE id = ? AND state IN ('queued','testing')`,
      )
      .run(base, this.clock.now(), this.clock.now(), id);
    return r.changes === 1;
  }

  /** About to move the target to `tested` (recorded first, for crash recovery). */
  markMerging(id: string, base: string, tested: string): MergeRequest {
    return this.set(id, { state: 'merging', base, tested });
  }

  markMerged(id: string, sha: string): MergeRequest {
    return this.db
      .transaction(() => {
        const mr = this.get(id);
        if (mr.state === 'merged') return mr;
        const now = this.clock.now();
        const done = this.set(id, {
          state: 'merged',
          merged_sha: sha,
          finished_at: now,
          reason: '',
          detail: '',
        });
        this.attempt(done, 'merged');
        return done;
      })
      .immediate();
  }

  markConflict(id: string, files: string[], conflictBead = ''): MergeRequest {
    const mr = this.set(id, {
      state: 'needs-rebase',
      reason: 'conflict',
      detail: files.join('\n'),
      conflict_bead: conflictBead,
      finished_at: this.clock.now(),
    });
    this.attempt(mr, 'conflict');
    return mr;
  }

  setConflictBead(id: string, bead: string): void {
    this.set(id, { conflict_bead: bead });
  }

  markGateFailed(id: string, gate: string, tail: string): MergeRequest {
    const mr = this.set(id, {
      state: 'needs-fix',
      reason: gate,
      detail: tail,
      finished_at: this.clock.now(),
    });
    this.attempt(mr, 'gate_failed');
    return mr;
  }

  /** Back to the queue without counting a retry (its base moved, or a restart). */
  requeue(id: string): void {
    this.db
      .prepare(
        `UPDATE mr SET state = 'queued', tested = '', updated_at = ? WHERE id = ? AND state IN ('testing','merging')`,
      )
      .run(this.clock.now(), id);
  }

  reject(id: string, reason: string): MergeRequest {
    const mr = this.get(id);
    if (!ACTIVE.includes(mr.state) || mr.state === 'merging') {
      throw new ConflictError(
        `merge request ${id} is ${mr.state}; only a waiting request can be rejected`,
      );
    }
    return this.set(id, {
      state: 'rejected',
      reason: 'rejected',
      detail: reason,
      finished_at: this.clock.now(),
    });
  }

  retry(id: string): MergeRequest {
    const mr = this.get(id);
    if (!['needs-rebase', 'needs-fix', 'rejected'].includes(mr.state)) {
      throw new ConflictError(
        `merge request ${id} is ${mr.state}; only needs-rebase, needs-fix or rejected can be retried`,
      );
    }
    return this.set(id, {
      state: 'queued',
      retries: mr.retries + 1,
      reason: '',
      detail: '',
      finished_at: null,
    });
  }

  /** Requests left testing or merging by a server that stopped. */
  unfinished(rig: string): MergeRequest[] {
    return this.db
      .prepare(`SELECT * FROM mr WHERE rig = ? AND state IN ('testing','merging') ORDER BY seq`)
      .all(rig) as MergeRequest[];
  }

  /** Whether a request for `bead` still wants to merge (waiting, in flight or sent back). */
  hasPending(bead: string): boolean {
    return (
      this.db
        .prepare(
          `SELECT 1 FROM mr WHERE bead = ? AND state IN ('queued','testing','merging','needs-rebase','needs-fix') LIMIT 1`,
        )
        .get(bead) !== undefined
    );
  }

  /** Beads with a request in the queue now (queued, testing, merging). */
  queuedBeads(): string[] {
    return (
      this.db
        .prepare(
          `SELECT DISTINCT bead FROM mr WHERE bead != '' AND state IN ('queued','testing','merging')`,
        )
        .all() as { bead: string }[]
    ).map((r) => r.bead);
  }

  recordBuild(rig: string, b: BuildRecord): void {
    this.db
      .prepare(
        'INSERT INTO mq_builds (rig, size, outcome, depth, gate_runs, at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(rig, b.size, b.outcome, b.depth, b.gateRuns, this.clock.now());
  }

  stats(rig: string): RigStats {
    return rigStats(this.db, rig, this.clock.now());
  }
}
