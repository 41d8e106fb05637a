/** Merge-queue statistics of one rig, read from the request and build tables. */
import type { MqTx } from './queue-conn.js';

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

export async function rigStats(c: MqTx, rig: string, now: number): Promise<RigStats> {
  const one = async (sql: string, ...args: unknown[]) => {
    const [r] = await c.query<Record<string, number | string | null>>(sql, args);
    return r ?? {};
  };
  const n = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
  const counts = await one(
    `SELECT sum(CASE WHEN state = 'queued' THEN 1 ELSE 0 END) AS depth,
            sum(CASE WHEN state IN ('testing','merging') THEN 1 ELSE 0 END) AS in_flight
     FROM mr WHERE rig = ? AND state IN ('queued','testing','merging')`,
    rig,
  );
  const outcomes = new Map(
    (
      await c.query<{ outcome: string; n: number }>(
        `SELECT outcome, count(*) AS n FROM mr_attempts WHERE rig = ? GROUP BY outcome`,
        [rig],
      )
    ).map((r) => [r.outcome, Number(r.n)]),
  );
  const merged = outcomes.get('merged') ?? 0;
  const conflicts = outcomes.get('conflict') ?? 0;
  const gateFailed = outcomes.get('gate_failed') ?? 0;
  const attempts = merged + conflicts + gateFailed;
  const recent = (
    await c.query<{ submitted_at: number; started_at: number | null; finished_at: number }>(
      `SELECT submitted_at, started_at, finished_at FROM mr
       WHERE rig = ? AND state = 'merged' ORDER BY seq DESC LIMIT 1000`,
      [rig],
    )
  ).map((r) => ({
    submitted: Number(r.submitted_at),
    started: r.started_at === null ? null : Number(r.started_at),
    finished: Number(r.finished_at),
  }));
  const waits = recent.map((r) => (r.started ?? r.finished) - r.submitted).sort((a, b) => a - b);
  const merges = recent.map((r) => r.finished - r.submitted).sort((a, b) => a - b);
  // Merges per hour: over the last hour, or over the span of the last
  // hour's worth of merges when the queue ran for less than an hour.
  const lastHour = await one(
    `SELECT max(at) AS last, count(*) AS n FROM mr_attempts
     WHERE rig = ? AND outcome = 'merged' AND at >= ?`,
    rig,
    now - 3_600_000,
  );
  const firstSubmit = n(
    (
      await one(
        `SELECT min(submitted_at) AS n FROM mr WHERE rig = ? AND submitted_at >= ?`,
        rig,
        now - 3_600_000,
      )
    ).n,
  );
  const mergedLastHour = n(lastHour.n);
  const last = n(lastHour.last);
  const span = last && firstSubmit ? Math.max(1, last - firstSubmit) : 0;
  const perHour =
    mergedLastHour && span ? (mergedLastHour * 3_600_000) / Math.min(span, 3_600_000) : 0;
  const b = await one(
    `SELECT
       sum(CASE WHEN outcome IN ('passed','failed','conflict') THEN 1 ELSE 0 END) AS builds,
       coalesce(sum(gate_runs), 0) AS gate_runs,
       sum(CASE WHEN outcome = 'cancelled' THEN 1 ELSE 0 END) AS wasted,
       avg(CASE WHEN outcome = 'passed' THEN size END) AS mean,
       max(CASE WHEN outcome = 'passed' THEN size END) AS max,
       max(depth) AS depth,
       sum(CASE WHEN outcome = 'split' THEN 1 ELSE 0 END) AS splits
     FROM mq_builds WHERE rig = ?`,
    rig,
  );
  return {
    rig,
    depth: n(counts.depth),
    in_flight: n(counts.in_flight),
    merged_last_hour: mergedLastHour,
    merged_total: merged,
    merges_per_hour: Math.round(perHour * 10) / 10,
    conflict_rate: attempts ? conflicts / attempts : 0,
    gate_failure_rate: attempts ? gateFailed / attempts : 0,
    wait_ms_p50: pct(waits, 50),
    wait_ms_p95: pct(waits, 95),
    merge_ms_p50: pct(merges, 50),
    merge_ms_p95: pct(merges, 95),
    builds: n(b.builds),
    gate_runs: n(b.gate_runs),
    wasted_builds: n(b.wasted),
    batch_size_mean: Math.round(n(b.mean) * 100) / 100,
    batch_size_max: n(b.max),
    bisect_depth_max: n(b.depth),
    batch_splits: n(b.splits),
  };
}
