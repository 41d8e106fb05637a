/**
 * Merge-queue order, as a pure function.
 *
 *   score = 60 * (4 - priority) + age_minutes - 30 * retries
 *
 * Higher goes first; equal scores go in submission order (FIFO). One
 * priority step is worth an hour of waiting, and each retry costs half an
 * hour. Since every waiting request ages at the same rate, the order of two
 * requests never flips while both wait; and because age grows without bound
 * while a new request always starts at age 0, no request starves: a P4
 * request waiting 4 hours outranks any new P0 request.
 */
export interface Scored {
  seq: number;
  priority: number;
  submitted_at: number;
  retries: number;
}

export const PRIORITY_MINUTES = 60;
export const RETRY_PENALTY_MINUTES = 30;

export function score(r: Scored, now: number): number {
  const ageMinutes = Math.max(0, now - r.submitted_at) / 60_000;
  return PRIORITY_MINUTES * (4 - r.priority) + ageMinutes - RETRY_PENALTY_MINUTES * r.retries;
}

/** Requests in merge order at `now`. */
export function mergeOrder<T extends Scored>(requests: readonly T[], now: number): T[] {
  return [...requests]
    .map((r) => ({ r, s: score(r, now) }))
    .sort((a, b) => b.s - a.s || a.r.seq - b.r.seq)
    .map((x) => x.r);
}
