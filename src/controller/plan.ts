/**
 * reconcilePlan: what to do this tick to move the runtime toward the desired
 * state. Pure: desired state + snapshot + the controller's memory of each
 * session (trackers) in, a list of actions with reasons out.
 */
import type { SessionSnapshot } from '../runtime/index.js';
import type { DesiredSession, DesiredState } from './desired.js';

/** What the controller remembers about a session between ticks. */
export interface SessionTracker {
  /** When the controller started or adopted it. */
  startedAt?: number;
  /** Fingerprint it was started with; undefined when adopted and unknown. */
  fingerprint?: string;
  /** Times it died (for crash-loop detection), oldest first. */
  deaths: number[];
  quarantined?: boolean;
  /** Draining since (ms); the drain reason. */
  drainingSince?: number;
  drainReason?: string;
  /** The agent acknowledged the drain (GC_DRAIN_ACK=1). */
  drainAcked?: boolean;
  /** The agent asked for a restart (gc runtime request-restart). */
  restartRequested?: boolean;
  /** Unwanted and idle since (ms): the scale-down grace counts from here. */
  idleSince?: number;
}

export type Action =
  | { kind: 'start'; session: DesiredSession; wave: number; reason: string }
  | {
      kind: 'stop';
      session: string;
      reason: string;
      /**
       * Chosen because the session held no claims as of the tick's snapshot.
       * The act step checks again, with new claims by it refused; when it
       * claimed work meanwhile, it is drained (`drain`: it is not wanted) or
       * left running (`keep`: it was only idle).
       */
      ifIdle?: 'drain' | 'keep';
    }
  | { kind: 'drain'; session: string; reason: string }
  | { kind: 'died'; session: string; exitCode: number | undefined }
  /** Ended cleanly (exit 0, or after a drain): not counted toward the crash loop. */
  | { kind: 'exited'; session: string; exitCode: number | undefined }
  | { kind: 'quarantine'; session: string; deaths: number }
  | { kind: 'release'; holder: string; reason: string };

/** Why a wanted session waits when more were due than one tick may start. */
export const WAKE_LIMIT = 'wake limit for this tick';

export interface Waiting {
  session: string;
  reason: string;
  /**
   * An idle, unwanted session inside its scale-down grace: when the grace
   * ends (epoch ms). The controller notes when it became idle and ticks then.
   */
  graceEndsAt?: number;
}

export interface Plan {
  actions: Action[];
  waiting: Waiting[];
}

export interface PlanOptions {
  now: number;
  maxWakesPerTick: number;
  maxRestarts: number;
  restartWindowMs: number;
  driftDrainTimeoutMs: number;
  /**
   * An idle session that became unwanted less than this long ago (its
   * tracker's `idleSince`; now, when not yet noted) is not stopped yet:
   * demand that dips and comes back (work created a bit at a time) must not
   * churn agent starts.
   */
  scaleDownGraceMs?: number;
  /** In-progress claims per assignee (this tick's workload). */
  claims: ReadonlyMap<string, number>;
  /** Whether a name is one of this city's session names (desired or not). */
  isCitySession: (name: string) => boolean;
  /**
   * Sessions whose start is under way (outside the tick): left alone (not
   * started again, not judged dead, their claims kept) and counted against
   * the wake limit. The snapshot given with them may or may not hold them.
   */
  starting?: ReadonlySet<string>;
}

/** Why a wanted session is not acted on: its start is under way. */
export const STARTING = 'starting';

/** Deaths inside the restart window. */
export function recentDeaths(t: SessionTracker | undefined, now: number, windowMs: number): number {
  return t ? t.deaths.filter((d) => now - d < windowMs).length : 0;
}

export function reconcilePlan(
  desired: DesiredState,
  snapshot: readonly SessionSnapshot[],
  trackers: ReadonlyMap<string, SessionTracker>,
  o: PlanOptions,
): Plan {
  const actions: Action[] = [];
  const waiting: Waiting[] = [];
  const starting = o.starting ?? new Set<string>();
  const snap = new Map(snapshot.filter((s) => !starting.has(s.name)).map((s) => [s.name, s]));
  const wanted = new Map(desired.sessions.map((d) => [d.name, d]));
  const aliveAgents = new Set<string>();
  const agentOf = new Map(desired.sessions.map((d) => [d.name, d.agent]));
  for (const s of snap.values()) {
    const agent = agentOf.get(s.name);
    if (s.alive && agent) aliveAgents.add(agent);
  }

  // Deaths: a session we started or adopted that is now dead or gone.
  const died = new Set<string>();
  for (const [name, t] of trackers) {
    if (starting.has(name)) continue;
    const s = snap.get(name);
    if (t.startedAt !== undefined && !s?.alive) {
      if (t.drainingSince !== undefined || s?.exitCode === 0) {
        actions.push({ kind: 'exited', session: name, exitCode: s?.exitCode });
      } else {
        died.add(name);
        actions.push({ kind: 'died', session: name, exitCode: s?.exitCode });
      }
    }
  }

  // Claims held by city sessions that are not alive go back to open.
  for (const [holder, n] of o.claims) {
    if (n > 0 && !snap.get(holder)?.alive && !starting.has(holder) && o.isCitySession(holder)) {
      actions.push({
        kind: 'release',
        holder,
        reason: died.has(holder) ? 'session died' : 'session not running',
      });
    }
  }

  const starts: DesiredSession[] = [];
  for (const d of desired.sessions) {
    if (starting.has(d.name)) {
      waiting.push({ session: d.name, reason: STARTING });
      continue;
    }
    const s = snap.get(d.name);
    const t = trackers.get(d.name);
    if (s?.alive) {
      if (t?.drainingSince !== undefined) {
        const timeout = t.drainReason === 'config drift' ? o.driftDrainTimeoutMs : d.drainTimeoutMs;
        if (t.drainAcked || o.now - t.drainingSince >= timeout) {
          actions.push({
            kind: 'stop',
            session: d.name,
            reason: t.drainAcked
              ? `drained (${t.drainReason})`
              : `drain timeout (${t.drainReason})`,
          });
        } else {
          waiting.push({ session: d.name, reason: `draining: ${t.drainReason}` });
        }
        continue;
      }
      if (t?.restartRequested) {
        actions.push({ kind: 'drain', session: d.name, reason: 'restart requested' });
      } else if (t?.fingerprint !== undefined && t.fingerprint !== d.fingerprint) {
        actions.push({ kind: 'drain', session: d.name, reason: 'config drift' });
      } else if (
        d.idleTimeoutMs !== undefined &&
        s.lastActivity > 0 &&
        o.now - s.lastActivity >= d.idleTimeoutMs &&
        !(o.claims.get(d.name) ?? 0)
      ) {
        actions.push({ kind: 'stop', session: d.name, reason: 'idle timeout', ifIdle: 'keep' });
      }
      continue;
    }
    // Not alive: start it, unless quarantined.
    const deaths = recentDeaths(t, o.now, o.restartWindowMs) + (died.has(d.name) ? 1 : 0);
    if (t?.quarantined || deaths > o.maxRestarts) {
      if (!t?.quarantined) actions.push({ kind: 'quarantine', session: d.name, deaths });
      waiting.push({
        session: d.name,
        reason: `quarantined: ${deaths} deaths in the restart window`,
      });
      continue;
    }
    starts.push(d);
  }

  // Sessions nobody wants any more: drain the busy, stop the rest.
  for (const s of snap.values()) {
    if (wanted.has(s.name)) continue;
    const t = trackers.get(s.name);
    if (!s.alive) {
      actions.push({ kind: 'stop', session: s.name, reason: 'dead and not desired' });
    } else if (t?.drainingSince !== undefined) {
      if (t.drainAcked || o.now - t.drainingSince >= o.driftDrainTimeoutMs) {
        actions.push({
          kind: 'stop',
          session: s.name,
          reason: t.drainAcked ? 'drained' : 'drain timeout',
        });
      } else waiting.push({ session: s.name, reason: `draining: ${t.drainReason}` });
    } else if ((o.claims.get(s.name) ?? 0) > 0) {
      actions.push({
        kind: 'drain',
        session: s.name,
        reason: 'not desired (scale down or removed)',
      });
    } else if (
      t?.startedAt !== undefined &&
      o.scaleDownGraceMs !== undefined &&
      o.now - (t.idleSince ?? o.now) < o.scaleDownGraceMs
    ) {
      waiting.push({
        session: s.name,
        reason: 'idle; stops when the scale-down grace ends',
        graceEndsAt: (t.idleSince ?? o.now) + o.scaleDownGraceMs,
      });
    } else {
      actions.push({
        kind: 'stop',
        session: s.name,
        reason: 'not desired (scale down or removed)',
        ifIdle: 'drain',
      });
    }
  }

  // Starts in depends_on waves, at most maxWakesPerTick.
  const waveOf = new Map<string, number>();
  const startingAgents = new Map<string, number>();
  // Starts under way use up wakes: a tick starts no more than the limit
  // allows on top of those still starting.
  let wakes = starting.size;
  const pending = [...starts];
  for (let wave = 1; pending.length; wave++) {
    const ready = pending.filter((d) =>
      d.dependsOn.every(
        (dep) => aliveAgents.has(dep) || (startingAgents.get(dep) ?? Infinity) < wave,
      ),
    );
    if (ready.length === 0) break;
    for (const d of ready) {
      pending.splice(pending.indexOf(d), 1);
      if (wakes >= o.maxWakesPerTick) {
        waiting.push({ session: d.name, reason: WAKE_LIMIT });
        continue;
      }
      wakes++;
      waveOf.set(d.name, wave);
      if (!startingAgents.has(d.agent)) startingAgents.set(d.agent, wave);
      const reason = died.has(d.name)
        ? 'restart after death'
        : trackers.get(d.name)?.startedAt !== undefined
          ? 'restart'
          : 'desired';
      actions.push({ kind: 'start', session: d, wave, reason });
    }
  }
  for (const d of pending) {
    const missing = d.dependsOn.filter((dep) => !aliveAgents.has(dep) && !startingAgents.has(dep));
    waiting.push({
      session: d.name,
      reason: `waiting for ${missing.join(', ') || 'dependencies'}`,
    });
  }
  return { actions, waiting };
}
