/**
 * What the controller reports: sessions as they are now (the last snapshot
 * with its own stops, starts and kills applied), why each waits, pools,
 * caps, and agents that cannot start. A pure function of the controller's
 * state; also the bounded-parallel helper its act step uses.
 */
import type { SessionSnapshot } from '../runtime/index.js';
import { agentOfSession, type DesiredState } from './desired.js';
import type { Plan, SessionTracker } from './plan.js';
import type { ShutdownProgress } from './shutdown.js';
import type { Starting } from './starts.js';
import type { CitySpec } from './spec.js';

export type ControllerState = 'idle' | 'running' | 'stopping' | 'stopped';

export interface SessionStatus {
  name: string;
  agent: string | undefined;
  state: 'starting' | 'running' | 'draining' | 'dead' | 'waiting' | 'quarantined' | 'stopped';
  reason?: string;
  /** While starting: when its start must be done by (epoch ms). */
  start_deadline?: number;
  /** Its last start failed (cleared when one succeeds): why. */
  start_error?: string;
  last_activity: number;
  attached: boolean;
  restarts_in_window: number;
}

export interface ControllerStatus {
  state: ControllerState;
  ticks: number;
  last_tick_ms: number;
  last_tick_at: number;
  sessions: SessionStatus[];
  capped: DesiredState['capped'];
  pools: DesiredState['pools'];
  workspace_cap: number;
  config_error: string | undefined;
  last_error: string | undefined;
  /** Set while the session provider's view is stale: nothing is started or stopped. */
  provider_stale?: { since: number; reason: string };
  /** Agents whose last session start failed (cleared by the next good start). */
  failing: AgentFailure[];
  /** While the city stops: how far its sessions' shutdown has got. */
  shutdown?: ShutdownProgress;
}

export interface AgentFailure {
  agent: string;
  session: string;
  error: string;
  /** What to do about it, when the error says. */
  fix?: string;
  at: number;
}

export interface StatusInput {
  spec: CitySpec;
  state: ControllerState;
  ticks: number;
  lastTickAt: number;
  now: number;
  report: { plan: Plan; desired: DesiredState; ms: number } | undefined;
  live: ReadonlyMap<string, SessionSnapshot>;
  trackers: ReadonlyMap<string, SessionTracker>;
  configError: string | undefined;
  lastError: string | undefined;
  providerStale?: { since: number; reason: string } | undefined;
  failures: ReadonlyMap<string, AgentFailure>;
  /** Sessions whose start is under way. */
  starting?: ReadonlyMap<string, Starting>;
  shutdown?: ShutdownProgress | undefined;
}

export function controllerStatus(o: StatusInput): ControllerStatus {
  const r = o.report;
  const restarts = (t: SessionTracker | undefined) =>
    t ? t.deaths.filter((d) => o.now - d < o.spec.daemon.restartWindowMs).length : 0;
  const sessions: SessionStatus[] = [];
  const seen = new Set<string>();
  const waiting = new Map((r?.plan.waiting ?? []).map((w) => [w.session, w.reason]));
  const starting = o.starting ?? new Map<string, Starting>();
  const startErrors = new Map([...o.failures.values()].map((f) => [f.session, f.error]));
  /** Starting state, deadline and last start error: what every entry may add. */
  const extra = (name: string) => {
    const st = starting.get(name);
    const err = startErrors.get(name);
    return {
      ...(st && !st.waitingFor ? { start_deadline: st.deadline } : {}),
      ...(err !== undefined ? { start_error: err } : {}),
    };
  };
  /** A later wave of a launch waits for its dependencies' starts. */
  const startingState = (st: Starting) =>
    st.waitingFor
      ? { state: 'waiting' as const, reason: `waiting for ${st.waitingFor.join(', ')}` }
      : {
          state: 'starting' as const,
          reason: `starting: ready by ${new Date(st.deadline).toISOString()} or its start fails`,
        };
  for (const s of o.live.values()) {
    seen.add(s.name);
    const t = o.trackers.get(s.name);
    const st = starting.get(s.name);
    const state: SessionStatus['state'] = st
      ? startingState(st).state
      : !s.alive
        ? t?.quarantined
          ? 'quarantined'
          : 'dead'
        : t?.drainingSince !== undefined
          ? 'draining'
          : 'running';
    const reason = st ? startingState(st).reason : (waiting.get(s.name) ?? t?.drainReason);
    sessions.push({
      name: s.name,
      agent: agentOfSession(o.spec, s.name)?.name,
      state,
      ...(reason ? { reason } : {}),
      ...extra(s.name),
      last_activity: s.lastActivity,
      attached: s.attached,
      restarts_in_window: restarts(t),
    });
  }
  for (const st of starting.values()) {
    if (seen.has(st.session)) continue;
    seen.add(st.session);
    sessions.push({
      name: st.session,
      agent: st.agent,
      ...startingState(st),
      ...extra(st.session),
      last_activity: 0,
      attached: false,
      restarts_in_window: restarts(o.trackers.get(st.session)),
    });
  }
  for (const [name, why] of waiting) {
    if (seen.has(name)) continue;
    const t = o.trackers.get(name);
    sessions.push({
      name,
      agent: agentOfSession(o.spec, name)?.name,
      state: t?.quarantined ? 'quarantined' : 'waiting',
      reason: why,
      ...extra(name),
      last_activity: 0,
      attached: false,
      restarts_in_window: restarts(t),
    });
  }
  // A session whose start failed since the last tick: not live, not planned yet.
  for (const f of o.failures.values()) {
    if (seen.has(f.session) || waiting.has(f.session)) continue;
    seen.add(f.session);
    sessions.push({
      name: f.session,
      agent: f.agent,
      state: 'waiting',
      reason: 'to be started again at the next tick',
      ...extra(f.session),
      last_activity: 0,
      attached: false,
      restarts_in_window: restarts(o.trackers.get(f.session)),
    });
  }
  sessions.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return {
    state: o.state,
    ticks: o.ticks,
    last_tick_ms: r?.ms ?? 0,
    last_tick_at: o.lastTickAt,
    sessions,
    capped: r?.desired.capped ?? [],
    pools: r?.desired.pools ?? [],
    workspace_cap: o.spec.workspaceCap,
    config_error: o.configError,
    last_error: o.lastError,
    ...(o.providerStale ? { provider_stale: o.providerStale } : {}),
    failing: [...o.failures.values()].sort((a, b) => (a.agent < b.agent ? -1 : 1)),
    ...(o.shutdown ? { shutdown: o.shutdown } : {}),
  };
}

/** Sessions /v0/status lists at most; the rest are paged through /v0/sessions. */
export const STATUS_SESSIONS = 100;

export interface BoundedStatus extends ControllerStatus {
  /** Every session, counted. */
  sessions_total: number;
  /** Sessions by state, all of them. */
  session_counts: Partial<Record<SessionStatus['state'], number>>;
  /** True when `sessions` holds only part (page the rest: GET /v0/sessions). */
  sessions_truncated: boolean;
  /** Capped sessions, counted (the list is bounded like `sessions`). */
  capped_total: number;
}

/**
 * A status whose size does not grow with the fleet: counts by state, and
 * at most `limit` sessions, those needing attention first (quarantined,
 * dead, draining, waiting, stopped), then running ones, each by name.
 */
export function boundedStatus(s: ControllerStatus, limit = STATUS_SESSIONS): BoundedStatus {
  const counts: BoundedStatus['session_counts'] = {};
  for (const x of s.sessions) counts[x.state] = (counts[x.state] ?? 0) + 1;
  const byName = (a: SessionStatus, b: SessionStatus) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const attention = s.sessions.filter((x) => x.state !== 'running').sort(byName);
  const running = s.sessions.filter((x) => x.state === 'running').sort(byName);
  const sessions = [...attention, ...running].slice(0, limit);
  return {
    ...s,
    sessions,
    capped: s.capped.slice(0, limit),
    sessions_total: s.sessions.length,
    session_counts: counts,
    sessions_truncated: s.sessions.length > sessions.length,
    capped_total: s.capped.length,
  };
}
