/** Merge-queue statistics of one rig, read from the request and build tables. */
import type Database from 'better-sqlite3';

export interface RigStats {
  rig: string;
  depth: number;
  in_flight: number;
  merged_last_hour: number;
  merged_total: number;
  /** Merges per hour over the last hour with merges (0 when none). */
  merges_per_hour: number;
  /** Conflicts per finished attempt (merged, conflict, gate failed). */
  conflict_rate: number;
  gate_failure_rate: number;
  /** Submission to start of the first test. */
  wait_ms_p50: number;
  wait_ms_p95: number;
  /** Submission (enqueue) to merge. */
  merge_ms_p50: number;
  merge_ms_p95: number;
  /** Candidate builds that ran to an outcome, and how many gate runs they took. */
  builds: number;
  gate_runs: number;
  /** Speculative builds thrown away because the base under them changed. */
  wasted_builds: number;
  /** Size of green builds (1 unless batching): mean and largest. */
  batch_size_mean: number;
  batch_size_max: number;
  /** Deepest bisection of a red batch, and how many batches were split. */
  bisect_depth_max: number;
  batch_splits: number;
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function rigStats(db: Database.Database, rig: string, now: number): RigStats {
  const count = (sql: string, ...args: unknown[]) =>
    (db.prepare(sql).get(...args) as { n: number | null }).n ?? 0;
  const depth = count(`SELECT count(*) AS n FROM mr WHERE rig = ? AND state = 'queued'`, rig);
  const inFlight = count(
    `SELECT count(*) AS n FROM mr WHERE rig = ? AND state IN ('testing','merging')`,
    rig,
  );
  const outcomes = new Map(
    (
      db
        .prepare(`SELECT outcome, count(*) AS n FROM mr_attempts WHERE rig = ? GROUP BY outcome`)
        .all(rig) as { outcome: string; n: number }[]
    ).map((r) => [r.outcome, r.n]),
  );
  const merged = outcomes.get('merged') ?? 0;
  const conflicts = outcomes.get('conflict') ?? 0;
  const gateFailed = outcomes.get('gate_failed') ?? 0;
  const attempts = merged + conflicts + gateFailed;
  const recent = db
    .prepare(
      `SELECT submitted_at, started_at, finished_at FROM mr
       WHERE rig = ? AND state = 'merged' ORDER BY seq DESC LIMIT 1000`,
    )
    .all(rig) as { submitted_at: number; started_at: number | null; finished_at: number }[];
  const waits = recent
    .map((r) => (r.started_at ?? r.finished_at) - r.submitted_at)
    .sort((a, b) => a - b);
  const merges = recent.map((r) => r.finished_at - r.submitted_at).sort((a, b) => a - b);
  // Merges per hour: over the last hour, or over the span of the last
  // hour's worth of merges when the queue ran for less than an hour.
  const lastHour = db
    .prepare(
      `SELECT min(at) AS first, max(at) AS last, count(*) AS n FROM mr_attempts
       WHERE rig = ? AND outcome = 'merged' AND at >= ?`,
    )
    .get(rig, now - 3_600_000) as { first: number | null; last: number | null; n: number };
  const firstSubmit = count(
    `SELECT min(submitted_at) AS n FROM mr WHERE rig = ? AND submitted_at >= ?`,
    rig,
    now - 3_600_000,
  );
  const span = lastHour.last && firstSubmit ? Math.max(1, lastHour.last - firstSubmit) : 0;
  const perHour = lastHour.n && span ? (lastHour.n * 3_600_000) / Math.min(span, 3_600_000) : 0;
  const b = db
    .prepare(
      `SELECT
         sum(outcome IN ('passed','failed','conflict')) AS builds,
         coalesce(sum(gate_runs), 0) AS gate_runs,
         sum(outcome = 'cancelled') AS wasted,
         avg(CASE WHEN outcome = 'passed' THEN size END) AS mean,
         max(CASE WHEN outcome = 'passed' THEN size END) AS max,
         max(depth) AS depth,
         sum(outcome = 'split') AS splits
       FROM mq_builds WHERE rig = ?`,
    )
    .get(rig) as Record<string, number | null>;
  return {
    rig,
    depth,
    in_flight: inFlight,
    merged_last_hour: lastHour.n,
    merged_total: merged,
    merges_per_hour: Math.round(perHour * 10) / 10,
    conflict_rate: attempts ? conflicts / attempts : 0,
    gate_failure_rate: attempts ? gateFailed / attempts : 0,
    wait_ms_p50: pct(waits, 50),
    wait_ms_p95: pct(waits, 95),
    merge_ms_p50: pct(merges, 50),
    merge_ms_p95: pct(merges, 95),
    builds: b.builds ?? 0,
    gate_runs: b.gate_runs ?? 0,
    wasted_builds: b.wasted ?? 0,
    batch_size_mean: Math.round((b.mean ?? 0) * 100) / 100,
    batch_size_max: b.max ?? 0,
    bisect_depth_max: b.depth ?? 0,
    batch_splits: b.splits ?? 0,
  };
}
