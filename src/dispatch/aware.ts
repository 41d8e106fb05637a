/**
 * Conflict-aware claiming over the store (paths.ts decides): claim-next
 * prefers ready beads whose paths overlap nothing in flight, and the hold
 * reasons shown by `gc bead show` and `gc hook`.
 *
 * In flight: beads claimed now, and beads with a merge request in the
 * queue (queued, testing or merging; from the merge queue). Only the first
 * CANDIDATES ready beads are weighed (STRICT_CANDIDATES in strict mode);
 * when none of them declares or has touched paths, the claim is the plain
 * one (no extra reads).
 *
 * Modes: `prefer` hands out a held bead when no weighed bead is free;
 * `strict` never does (the claim finds nothing and the agent waits until the
 * overlapping work has landed).
 */
import { AlreadyClaimedError, ConflictError } from '../core/index.js';
import type { CityOps, ClaimRequest } from '../city/index.js';
import type { Bead, ReadyQuery } from '../store/index.js';
import { beadPaths, claimOrder, holdsOf, holdText, type PathBead } from './paths.js';

const CANDIDATES = 16;
const STRICT_CANDIDATES = 200;

export type HoldMode = 'prefer' | 'strict';

/** Beads with a merge request in the queue (their ids). */
export type PendingBeads = () => Promise<readonly string[]>;

export async function inFlight(ops: CityOps, pending: PendingBeads): Promise<PathBead[]> {
  const claimed = (await ops.store.list({ status: 'in_progress', limit: 1000 })).items;
  const out: PathBead[] = claimed.map((b) => ({ id: b.id, paths: beadPaths(b.metadata) }));
  const seen = new Set(claimed.map((b) => b.id));
  for (const id of await pending()) {
    if (seen.has(id)) continue;
    seen.add(id);
    const b = await ops.store.get(id).catch(() => undefined);
    if (b) out.push({ id, paths: beadPaths(b.metadata) });
  }
  return out.filter((b) => b.paths.length > 0);
}

/** Conflict-aware claims of one city go one at a time: each sees the claims before it in flight. */
const turns = new WeakMap<CityOps, Promise<unknown>>();

export function claimNextAware(
  ops: CityOps,
  actor: string,
  query: ReadyQuery & ClaimRequest,
  pending: PendingBeads,
  mode: HoldMode = 'prefer',
): Promise<Bead | null> {
  const before = turns.get(ops) ?? Promise.resolve();
  const mine = before.then(
    () => claimAware(ops, actor, query, pending, mode),
    () => claimAware(ops, actor, query, pending, mode),
  );
  turns.set(
    ops,
    mine.catch(() => undefined),
  );
  return mine;
}

async function claimAware(
  ops: CityOps,
  actor: string,
  query: ReadyQuery & ClaimRequest,
  pending: PendingBeads,
  mode: HoldMode,
): Promise<Bead | null> {
  const { leaseMs, ...ready } = query;
  const limit = mode === 'strict' ? STRICT_CANDIDATES : CANDIDATES;
  const candidates = (await ops.store.ready({ ...ready, limit })).items
    .filter((b) => !b.assignee || b.assignee === actor)
    .map((b) => ({ ...b, paths: beadPaths(b.metadata) }));
  if (!candidates.some((b) => b.paths.length)) return ops.claimNext(actor, query);
  const { order, held } = claimOrder(candidates, await inFlight(ops, pending));
  for (const b of order) {
    if (mode === 'strict' && held.has(b.id)) return null;
    try {
      return await ops.claimBead(actor, b.id, leaseMs !== undefined ? { leaseMs } : {});
    } catch (e) {
      // Taken (or closed) meanwhile: the next one.
      if (e instanceof AlreadyClaimedError || e instanceof ConflictError) continue;
      throw e;
    }
  }
  return mode === 'strict' ? null : ops.claimNext(actor, query);
}

/** Why each of these beads is held back (only the held ones appear). */
export async function holdReasons(
  ops: CityOps,
  beads: readonly Bead[],
  pending: PendingBeads,
): Promise<Record<string, string>> {
  const open = beads.filter((b) => b.status === 'open' && beadPaths(b.metadata).length);
  if (!open.length) return {};
  const flight = await inFlight(ops, pending);
  const out: Record<string, string> = {};
  for (const b of open) {
    const holds = holdsOf({ id: b.id, paths: beadPaths(b.metadata) }, flight);
    if (holds.length) out[b.id] = holdText(holds);
  }
  return out;
}
