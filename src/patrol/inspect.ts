/**
 * The patrol's decisions, pure: which tier each rig is in, which rigs are
 * due a look, and what is wrong in them, from one observation of the city.
 */

export type Tier = 'hot' | 'warm' | 'cold';

export interface RigInfo {
  /** "" is the city itself (its agents that work in no rig). */
  name: string;
  suspended: boolean;
  /** Who the mail step writes to. */
  owner: string;
}

export interface PatrolSession {
  name: string;
  /** The rig its agent works in ("" for the city). */
  rig: string;
  alive: boolean;
  /** Epoch ms of its last output; 0 when the provider does not say. */
  lastActivity: number;
  restarts: number;
  quarantined: boolean;
}

export interface PatrolClaim {
  bead: string;
  assignee: string;
  attempt: number;
  /** Epoch ms; null when the claim has no lease. */
  leaseExpiresAt: number | null;
}

export interface PatrolQueue {
  rig: string;
  depth: number;
  in_flight: number;
  conflict_rate: number;
  merge_ms_p95: number;
}

export interface PatrolDisk {
  path: string;
  /** The rig whose worktrees live there ("" for .gc/). */
  rig: string;
  freeBytes: number;
}

/** One batched look at the city: one session snapshot, one claims read, one queue read. */
export interface Observation {
  at: number;
  sessions: PatrolSession[];
  claims: PatrolClaim[];
  queues: PatrolQueue[];
  disks: PatrolDisk[];
  /** Parts of the city that could not be read, and why. */
  faults: { what: string; rig: string; error: string }[];
}

export interface PatrolSettings {
  hotMs: number;
  warmMs: number;
  coldMs: number;
  stallMs: number;
  crashLoopRestarts: number;
  mqDepth: number;
  mqMergeMs: number;
  conflictRate: number;
  diskMinFreeBytes: number;
}

export type FindingKind =
  | 'stalled'
  | 'crash_loop'
  | 'claim_lapsed'
  | 'mq_backed_up'
  | 'mq_slow'
  | 'conflicts'
  | 'disk_low'
  | 'unhealthy';

export interface Finding {
  /** Stable while the same thing stays wrong: `kind:subject`. */
  key: string;
  kind: FindingKind;
  rig: string;
  session?: string;
  bead?: string;
  /** The claim's fencing token (claim_lapsed). */
  attempt?: number;
  /** The claim's holder is not a live session: nobody will renew it. */
  orphaned?: boolean;
  value: number;
  detail: string;
}

/** Hot: sessions running or merges queued; warm: active, nothing running; cold: parked. */
export function tierRigs(rigs: readonly RigInfo[], o: Observation): Map<string, Tier> {
  const busy = new Set<string>();
  for (const s of o.sessions) if (s.alive) busy.add(s.rig);
  for (const q of o.queues) if (q.depth + q.in_flight > 0) busy.add(q.rig);
  const out = new Map<string, Tier>();
  for (const r of rigs) out.set(r.name, r.suspended ? 'cold' : busy.has(r.name) ? 'hot' : 'warm');
  return out;
}

/** The rigs whose tier's interval has passed since they were last looked at. */
export function dueRigs(
  tiers: ReadonlyMap<string, Tier>,
  lastLooked: ReadonlyMap<string, number>,
  now: number,
  s: Pick<PatrolSettings, 'hotMs' | 'warmMs' | 'coldMs'>,
): string[] {
  const every: Record<Tier, number> = { hot: s.hotMs, warm: s.warmMs, cold: s.coldMs };
  const due: string[] = [];
  for (const [rig, tier] of tiers) {
    const last = lastLooked.get(rig);
    if (last === undefined || now - last >= every[tier]) due.push(rig);
  }
  return due;
}

const mins = (ms: number) => `${Math.round(ms / 60_000)}m`;

/** What is wrong in the due rigs. */
export function inspect(o: Observation, due: ReadonlySet<string>, s: PatrolSettings): Finding[] {
  const out: Finding[] = [];
  const sessions = new Map(o.sessions.map((x) => [x.name, x]));
  const claimsOf = new Map<string, PatrolClaim[]>();
  for (const c of o.claims) {
    const list = claimsOf.get(c.assignee) ?? [];
    list.push(c);
    claimsOf.set(c.assignee, list);
  }
  for (const x of o.sessions) {
    if (!due.has(x.rig)) continue;
    const held = claimsOf.get(x.name) ?? [];
    if (x.alive && held.length && x.lastActivity > 0 && o.at - x.lastActivity >= s.stallMs) {
      out.push({
        key: `stalled:${x.name}`,
        kind: 'stalled',
        rig: x.rig,
        session: x.name,
        bead: held[0]!.bead,
        value: o.at - x.lastActivity,
        detail: `${x.name} holds ${held.map((c) => c.bead).join(', ')} and has shown no output for ${mins(o.at - x.lastActivity)}`,
      });
    }
    if (x.quarantined || x.restarts >= s.crashLoopRestarts) {
      out.push({
        key: `crash_loop:${x.name}`,
        kind: 'crash_loop',
        rig: x.rig,
        session: x.name,
        value: x.restarts,
        detail: x.quarantined
          ? `${x.name} is quarantined after ${x.restarts} restarts`
          : `${x.name} restarted ${x.restarts} times in the restart window`,
      });
    }
  }
  for (const c of o.claims) {
    if (c.leaseExpiresAt === null || c.leaseExpiresAt > o.at) continue;
    const holder = sessions.get(c.assignee);
    const rig = holder?.rig ?? '';
    if (!due.has(rig)) continue;
    const live = holder?.alive === true;
    out.push({
      key: `claim_lapsed:${c.bead}`,
      kind: 'claim_lapsed',
      rig,
      bead: c.bead,
      attempt: c.attempt,
      ...(live ? { session: c.assignee } : { orphaned: true }),
      value: o.at - c.leaseExpiresAt,
      detail: `the claim of ${c.assignee} on ${c.bead} lapsed ${mins(o.at - c.leaseExpiresAt)} ago${live ? '' : ' and no live session holds it'}`,
    });
  }
  for (const q of o.queues) {
    if (!due.has(q.rig)) continue;
    if (q.depth > s.mqDepth) {
      out.push({
        key: `mq_backed_up:${q.rig}`,
        kind: 'mq_backed_up',
        rig: q.rig,
        value: q.depth,
        detail: `${q.depth} merge requests wait in ${q.rig} (over ${s.mqDepth})`,
      });
    }
    if (q.merge_ms_p95 > s.mqMergeMs) {
      out.push({
        key: `mq_slow:${q.rig}`,
        kind: 'mq_slow',
        rig: q.rig,
        value: q.merge_ms_p95,
        detail: `merges in ${q.rig} take ${mins(q.merge_ms_p95)} at p95 (over ${mins(s.mqMergeMs)})`,
      });
    }
    if (q.conflict_rate > s.conflictRate) {
      out.push({
        key: `conflicts:${q.rig}`,
        kind: 'conflicts',
        rig: q.rig,
        value: q.conflict_rate,
        detail: `${Math.round(q.conflict_rate * 100)}% of merge attempts in ${q.rig} conflict (over ${Math.round(s.conflictRate * 100)}%)`,
      });
    }
  }
  for (const d of o.disks) {
    if (!due.has(d.rig) || d.freeBytes >= s.diskMinFreeBytes) continue;
    out.push({
      key: `disk_low:${d.path}`,
      kind: 'disk_low',
      rig: d.rig,
      value: d.freeBytes,
      detail: `${Math.floor(d.freeBytes / 2 ** 20)} MiB free under ${d.path}`,
    });
  }
  for (const f of o.faults) {
    if (!due.has(f.rig)) continue;
    out.push({
      key: `unhealthy:${f.what}`,
      kind: 'unhealthy',
      rig: f.rig,
      value: 1,
      detail: `reading the ${f.what} failed: ${f.error}`,
    });
  }
  return out;
}
