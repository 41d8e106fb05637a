/**
 * One batched look at the city for the patrol: one session snapshot from
 * the provider (not a probe per session), the controller's memory for
 * restarts and quarantine, one paged read of the claims, one read of the
 * merge queue and a statfs per disk. A part that cannot be read becomes a
 * fault (a finding), never a failed pass.
 */
import { statfs } from 'node:fs/promises';
import { errorMessage } from '../core/index.js';
import type { ControllerStatus } from '../controller/index.js';
import type { RigStats } from '../refinery/index.js';
import type { Provider } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import type { Observation, PatrolClaim, PatrolDisk, PatrolSession } from './inspect.js';

export interface CityView {
  provider: Pick<Provider, 'snapshot'>;
  status(): Pick<ControllerStatus, 'sessions'>;
  /** The rig an agent works in ("" for the city or an unknown agent). */
  rigOf(agent: string | undefined): string;
  isCitySession(name: string): boolean;
  store: Pick<Store, 'list'>;
  rigStats(): Promise<RigStats[]>;
  /** Folders whose disk is watched: .gc/ ("" rig) and each rig's. */
  dirs(): { path: string; rig: string }[];
  now(): number;
}

async function claims(store: CityView['store']): Promise<PatrolClaim[]> {
  const out: PatrolClaim[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({
      status: 'in_progress',
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    for (const b of page.items) {
      if (!b.assignee) continue;
      out.push({
        bead: b.id,
        assignee: b.assignee,
        attempt: b.attempt,
        leaseExpiresAt: b.lease_expires_at ? Date.parse(b.lease_expires_at) : null,
      });
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

async function sessions(v: CityView): Promise<PatrolSession[]> {
  const snap = (await v.provider.snapshot('')).filter((s) => v.isCitySession(s.name));
  const known = new Map(v.status().sessions.map((s) => [s.name, s]));
  const out = new Map<string, PatrolSession>();
  for (const s of snap) {
    const k = known.get(s.name);
    out.set(s.name, {
      name: s.name,
      rig: v.rigOf(k?.agent),
      alive: s.alive,
      lastActivity: s.lastActivity,
      restarts: k?.restarts_in_window ?? 0,
      quarantined: k?.state === 'quarantined',
    });
  }
  // Quarantined sessions are gone from the provider but not from the controller's memory.
  for (const k of known.values()) {
    if (out.has(k.name) || (k.state !== 'quarantined' && k.restarts_in_window === 0)) continue;
    out.set(k.name, {
      name: k.name,
      rig: v.rigOf(k.agent),
      alive: false,
      lastActivity: k.last_activity,
      restarts: k.restarts_in_window,
      quarantined: k.state === 'quarantined',
    });
  }
  return [...out.values()];
}

export async function observe(v: CityView): Promise<Observation> {
  const faults: Observation['faults'] = [];
  const guard = async <T>(what: string, rig: string, f: () => Promise<T>, none: T): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      faults.push({ what, rig, error: errorMessage(e) });
      return none;
    }
  };
  const dirs = v.dirs();
  const [s, c, q, d] = await Promise.all([
    guard('sessions', '', () => sessions(v), []),
    guard('store', '', () => claims(v.store), []),
    guard('merge queue', '', () => v.rigStats(), []),
    Promise.all(
      dirs.map((x) =>
        guard(
          `disk of ${x.path}`,
          x.rig,
          async (): Promise<PatrolDisk[]> => {
            const st = await statfs(x.path);
            return [{ path: x.path, rig: x.rig, freeBytes: st.bavail * st.bsize }];
          },
          [],
        ),
      ),
    ),
  ]);
  return {
    at: v.now(),
    sessions: s,
    claims: c,
    queues: q.map((r) => ({
      rig: r.rig,
      depth: r.depth,
      in_flight: r.in_flight,
      conflict_rate: r.conflict_rate,
      merge_ms_p95: r.merge_ms_p95,
    })),
    disks: d.flat(),
    faults,
  };
}
