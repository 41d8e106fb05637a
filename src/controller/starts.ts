/**
 * Starts run outside the tick. A session's start (its work dir, the
 * process, session_setup, the readiness wait with its dialogs, the first
 * nudge) can take as long as the start deadline; a tick that waited for it
 * would hold every crash restart, scale change and drain of the city for
 * that long. The tick hands its start actions here and goes on: each
 * session is `starting` (with its deadline) until its start succeeds or
 * fails, the planner leaves it alone meanwhile, and its outcome is
 * recorded by the controller's callbacks, after which the next tick is
 * asked for (dependents and sessions held back by the wake limit go then).
 */
import { errorMessage } from '../core/index.js';
import type { Action } from './plan.js';

export type StartAction = Extract<Action, { kind: 'start' }>;

/** A session whose start is under way. */
export interface Starting {
  session: string;
  agent: string;
  /** When its start began and when it must be ready by (epoch ms). */
  since: number;
  deadline: number;
  /**
   * A later depends_on wave of the same launch: the agents it waits for
   * before its own start begins (absent once it has begun).
   */
  waitingFor?: string[];
}

export interface StartsOptions {
  /**
   * Run one depends_on wave of starts; `recorded(session, started)` as each
   * session's outcome has been recorded (a session ready early is not held
   * back by a slow one of its wave).
   */
  runWave(
    wave: StartAction[],
    recorded: (session: string, started: boolean) => void,
  ): Promise<void>;
  /** A session has started: its dependents and the wake limit's waiters may go. */
  started(): void;
  now(): number;
  /** The start deadline from now (ms). */
  timeoutMs(): number;
  log(line: string): void;
}

export class StartsInFlight {
  /** Sessions starting now, by name. */
  readonly sessions = new Map<string, Starting>();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly o: StartsOptions) {}

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Start a tick's sessions, wave after wave, without waiting. Each
   * session stays `starting` until its own outcome has been recorded.
   */
  launch(starts: readonly StartAction[]): Promise<void> {
    if (!starts.length) return Promise.resolve();
    const waves = [...new Set(starts.map((s) => s.wave))].sort((x, y) => x - y);
    const first = waves[0];
    const since = this.o.now();
    for (const a of starts) {
      this.sessions.set(a.session.name, {
        session: a.session.name,
        agent: a.session.agent,
        since,
        deadline: since + this.o.timeoutMs(),
        ...(a.wave !== first ? { waitingFor: [...a.session.dependsOn] } : {}),
      });
    }
    const recorded = (session: string, started: boolean) => {
      this.sessions.delete(session);
      if (started) this.o.started();
    };
    const run = (async () => {
      for (const wave of waves) {
        const these = starts.filter((s) => s.wave === wave);
        const begun = this.o.now();
        for (const a of these) {
          const st = this.sessions.get(a.session.name);
          if (st?.waitingFor) {
            delete st.waitingFor;
            st.since = begun;
            st.deadline = begun + this.o.timeoutMs();
          }
        }
        try {
          await this.o.runWave(these, recorded);
        } catch (e) {
          this.o.log(`start wave failed: ${errorMessage(e)}`);
        } finally {
          for (const a of these) this.sessions.delete(a.session.name);
        }
      }
    })();
    this.running.add(run);
    return run.finally(() => this.running.delete(run));
  }

  /** Resolves when no start is under way. */
  async settled(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }
}
