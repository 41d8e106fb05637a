/**
 * Conflict-aware claiming over the store (paths.ts decides): claim-next
 * prefers ready beads whose paths overlap nothing in flight, and the hold
 * reasons shown by `gc bead show` and `gc hook`.
 *
 * In flight: beads claimed now, and beads whose merge request still waits
 * (`pendingBeads`, from the merge queue). Only the first CANDIDATES ready
 * beads are weighed; when none of them declares or has touched paths, the
 * claim is the plain one (no extra reads).
 */
import { ConflictError } from '../core/index.js';
import type { CityOps, ClaimRequest } from '../city/index.js';
import type { Bead, ReadyQuery } from '../store/index.js';
import { beadPaths, claimOrder, holdsOf, holdText, type PathBead } from './paths.js';

const CANDIDATES = 16;

/** Beads with a merge request still waiting (their ids). */
export type PendingBeads = () => readonly string[];

export async function inFlight(ops: CityOps, pending: PendingBeads): Promise<PathBead[]> {
  const claimed = (await ops.store.list({ status: 'in_progress', limit: 1000 })).items;
  const out: PathBead[] = claimed.map((b) => ({ id: b.id, paths: beadPaths(b.metadata) }));
  const seen = new Set(claimed.map((b) => b.id));
  for (const id of pending()) {
    if (seen.has(id)) continue;
    seen.add(id);
    const b = await ops.store.get(id).catch(() => undefined);
    if (b) out.push({ id, paths: beadPaths(b.metadata) });
  }
  return out.filter((b) => b.paths.length > 0);
}

export async function claimNextAware(
  ops: CityOps,
  actor: string,
  query: ReadyQuery & ClaimRequest,
  pending: PendingBeads,
): Promise<Bead | null> {
  const { leaseMs, ...ready } = query;
  const candidates = (await ops.store.ready({ ...ready, limit: CANDIDATES })).items
    .filter((b) => !b.assignee || b.assignee === actor)
    .map((b) => ({ ...b, paths: beadPaths(b.metadata) }));
  if (!candidates.some((b) => b.paths.length)) return ops.claimNext(actor, query);
  const { order } = claimOrder(candidates, await inFlight(ops, pending));
  for (const b of order) {
    try {
      return await ops.claimBead(actor, b.id, leaseMs !== undefined ? { leaseMs } : {});
    } catch (e) {
      if (e instanceof ConflictError) continue; // taken meanwhile: the next one
      throw e;
    }
  }
  return ops.claimNext(actor, query);
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
