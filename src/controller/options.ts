import type { SessionFacts } from './session-facts.js';
/** The controller's options, its tick report, and the names it shares with agents. */
import type { CityOps } from '../city/index.js';
import type { Clock } from '../core/index.js';
import type { Provider, SessionSnapshot } from '../runtime/index.js';
import type { DesiredState } from './desired.js';
import type { Plan } from './plan.js';
import type { CitySpec } from './spec.js';

/** Session meta keys the controller and agents speak through. */
export const META = {
  drain: 'GC_DRAIN',
  drainAck: 'GC_DRAIN_ACK',
  fingerprint: 'GC_FINGERPRINT',
  agent: 'GC_AGENT',
} as const;

/**
 * Minimum life of a pool session before an idle one is scaled down: work
 * often arrives a little at a time, and an agent start is expensive.
 */
export const SCALE_DOWN_GRACE_MS = 10_000;

export interface TickReport {
  plan: Plan;
  snapshot: SessionSnapshot[];
  desired: DesiredState;
  ms: number;
  /** Calls the tick made to the provider, counted at the provider (CountingProvider). */
  providerCalls: number;
}

export interface ControllerOptions {
  provider: Provider;
  ops: CityOps;
  spec: CitySpec;
  /** After each tick (metrics). */
  ticked?: (report: TickReport) => void;
  clock?: Clock;
  /** Extra env for every session (GC_API, PATH with the gc shim, ...). */
  sessionEnv?: Record<string, string>;
  log?: (line: string) => void;
  /**
   * Per-session API tokens: issued at each start (env GC_TOKEN), revoked when
   * the session ends. Never logged or recorded.
   */
  /**
   * Where crash-loop records and quarantines are kept across restarts
   * (loaded by `loadFacts`, saved as they change). Absent: memory only.
   */
  facts?: SessionFacts;
  tokens?: {
    issue(session: string): Promise<string>;
    /** `issue` for a wave of sessions, in one write. Optional. */
    issueMany?(sessions: readonly string[]): Promise<Map<string, string>>;
    /** The token stops working at once (its record may follow). */
    revoke(session: string): void;
  };
  /**
   * Sessions someone else manages (API runs): the controller neither stops
   * nor counts them.
   */
  foreign?: (session: string) => boolean;
  /**
   * Whether this process may act for the city now (one of several servers:
   * it leads, its lease confirmed). A tick that starts while it may not
   * observes, decides and records nothing. Default: always.
   */
  mayAct?: () => boolean;
  /**
   * Per-session work directories of rig agents (git worktrees): made before
   * a start (the session runs in the returned directory), handed back when
   * the session ends (pool sessions: removed unless they hold unmerged work).
   */
  workspaces?: {
    prepare(session: string, rig: string): Promise<string | undefined>;
    release(session: string, rig: string, pool: boolean): void;
  };
  /**
   * Least time between the starts of two ticks that writes asked for
   * (`nudge`): a stream of writes costs a few ticks a second, not one tick
   * (and one provider snapshot) per write. Default 200 ms.
   */
  nudgeGapMs?: number;
}
