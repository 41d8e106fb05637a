/**
 * Building one candidate of the train: its requests rebased one after
 * another onto the candidate's base (optionally squashed, one commit each),
 * then the rig's gates run once on the last commit.
 */
import type { Git, Region } from '../git/index.js';
import type { GateRun, GateSpec } from './gates.js';
import type { MergeRequest } from './queue.js';

export type MergeStyle = 'rebase' | 'squash';

export type Rebased =
  | {
      ok: true;
      tip: string;
      /** each request's own commit in the chain */
      tips: string[];
      /** files whose additions-only conflicts were resolved by keeping both sides */
      resolved: string[][];
    }
  | { ok: false; /** index of the request that conflicts */ at: number; files: string[] };

/**
 * Rebase each request onto the tip before it (the first onto `base`) in the
 * worktree `wt`. Stops at the first conflict. `stale()` true: stop early
 * (the caller ignores the result).
 */
export async function rebaseChain(
  git: Git,
  wt: Git,
  base: string,
  mrs: readonly MergeRequest[],
  style: MergeStyle,
  stale: () => boolean,
  autoResolve = false,
): Promise<Rebased> {
  let tip = base;
  const tips: string[] = [];
  const resolved: string[][] = [];
  for (const [i, mr] of mrs.entries()) {
    // The cheap check first (no worktree touched); a conflict it finds may
    // still be one that keeping both sides' added lines resolves.
    const check = await git.mergeCheck(tip, mr.head);
    if (stale()) return { ok: true, tip, tips, resolved };
    if (!check.clean && !autoResolve) return { ok: false, at: i, files: check.files };
    const rebased = await wt.rebaseOnto(mr.head, tip, { unionAdditions: autoResolve });
    if (stale()) return { ok: true, tip, tips, resolved };
    if (!rebased.ok) return { ok: false, at: i, files: rebased.files };
    resolved.push(rebased.resolved);
    let next = rebased.tip;
    if (style === 'squash' && next !== tip) next = await git.squash(next, tip, squashMessage(mr));
    tip = next;
    tips.push(tip);
  }
  // The worktree holds the last rebased commit, whose tree is the tip's.
  return { ok: true, tip, tips, resolved };
}

export type GatesResult =
  | { ok: true; flaky: string[]; runs: number }
  | { ok: false; cancelled: true; runs: number }
  | { ok: false; cancelled: false; gate: string; tail: string; runs: number };

/**
 * The gates in order, each retried once when it fails (a gate that passes
 * the second time is flaky, not failing).
 */
export async function runGates(
  gates: readonly GateSpec[],
  dir: string,
  env: Record<string, string>,
  signal: AbortSignal,
  stale: () => boolean,
  run: (
    gate: GateSpec,
    dir: string,
    env: Record<string, string>,
    signal: AbortSignal,
  ) => Promise<GateRun>,
): Promise<GatesResult> {
  const flaky: string[] = [];
  let runs = 0;
  for (const gate of gates) {
    runs++;
    let r = await run(gate, dir, env, signal);
    if (!r.ok && !r.cancelled && !stale()) {
      runs++;
      const again = await run(gate, dir, env, signal);
      if (again.ok) flaky.push(gate.name);
      r = again;
    }
    if (stale() || r.cancelled) return { ok: false, cancelled: true, runs };
    if (!r.ok) return { ok: false, cancelled: false, gate: gate.name, tail: r.tail, runs };
  }
  return { ok: true, flaky, runs };
}

/** Requests with where they change the target since they left it (a git call per new head, cached). */
export async function withTouches(
  git: Git,
  targetRef: string,
  mrs: readonly MergeRequest[],
  cache: Map<string, Region[]>,
): Promise<{ id: string; mr: MergeRequest; touches: Region[] }[]> {
  const out: { id: string; mr: MergeRequest; touches: Region[] }[] = [];
  for (const mr of mrs) {
    let touches = cache.get(mr.head);
    if (!touches) {
      touches = await git.changedRegions(targetRef, mr.head).catch(() => []);
      if (cache.size > 10_000) cache.clear();
      cache.set(mr.head, touches);
    }
    out.push({ id: mr.id, mr, touches });
  }
  return out;
}

export function squashMessage(mr: MergeRequest): string {
  return `${mr.bead ? `${mr.bead}: ` : ''}merge ${mr.branch} (${mr.id})\n\nMerge-Request: ${mr.id}\nAuthor-Agent: ${mr.author}\n`;
}
