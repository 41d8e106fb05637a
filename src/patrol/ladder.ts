/**
 * The escalation ladder, pure: a finding takes the first step it can at
 * once, then one more step each `escalateAfterMs` it stays, and stops at
 * the top. Steps that need a session (nudge, restart) are skipped for
 * findings about a rig, a disk or the city; a crash loop is not nudged or
 * restarted (restarts are what keep failing). A lapsed claim nobody holds
 * is released, which ends it.
 */
import type { Finding } from './inspect.js';

export type Step = 'nudge' | 'restart' | 'mail' | 'alert';
export type Action = Step | 'release';

export interface Rung {
  /** When the finding was first seen. */
  since: number;
  /** Index into the finding's own steps of the last step taken (-1: none). */
  step: number;
  /** When the last step was taken. */
  at: number;
}

/** The ladder's steps that apply to this finding, in order. */
export function stepsFor(f: Finding, ladder: readonly Step[]): Step[] {
  const sessionSteps = f.session !== undefined && f.kind !== 'crash_loop';
  return ladder.filter((s) => sessionSteps || (s !== 'nudge' && s !== 'restart'));
}

export function stepLadder(
  prev: Rung | undefined,
  f: Finding,
  now: number,
  ladder: readonly Step[],
  escalateAfterMs: number,
): { next: Rung; act?: Action } {
  if (f.kind === 'claim_lapsed' && f.orphaned) {
    return prev ? { next: prev } : { next: { since: now, step: 0, at: now }, act: 'release' };
  }
  const steps = stepsFor(f, ladder);
  const r = prev ?? { since: now, step: -1, at: now };
  const due = r.step < 0 || now - r.at >= escalateAfterMs;
  if (!due || r.step + 1 >= steps.length) return { next: r };
  return { next: { since: r.since, step: r.step + 1, at: now }, act: steps[r.step + 1]! };
}

/** The steps taken so far for a finding (what clearing it must undo: an alert resolves). */
export function stepsTaken(f: Finding, r: Rung, ladder: readonly Step[]): Step[] {
  if (f.kind === 'claim_lapsed' && f.orphaned) return [];
  return stepsFor(f, ladder).slice(0, r.step + 1);
}
