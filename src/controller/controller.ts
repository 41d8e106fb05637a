/**
 * The controller: keeps the running fleet equal to city.toml. Each tick is
 * observe (one provider snapshot, one store workload query, the pools'
 * scale checks) -> decide (desiredState, reconcilePlan: pure) -> act (the
 * plan, bounded-parallel, in depends_on waves) -> record (one event per
 * transition). Ticks run every patrol_interval, at once on poke and soon
 * after writes (ticker.ts); they never overlap.
 */
import { GcError, errorMessage, mapLimit, systemClock, type Clock } from '../core/index.js';
import { loadFacts, saveFacts, type SessionFacts } from './session-facts.js';
import type { CityOps } from '../city/index.js';
import { CountingProvider, type Provider, type SessionSnapshot } from '../runtime/index.js';
import { adoptStrangers } from './adopt.js';
import { operatorDrain, resetSession, type OperatorContext } from './operator.js';
import { noteIdle, pollDrainAcks, recheckIdleStops, stopWave } from './fleet.js';
import { startWave } from './start-wave.js';
import { StartsInFlight, type StartAction } from './starts.js';
import { agentOfSession, desiredState } from './desired.js';
import { reconcilePlan, type Action, type Plan, type SessionTracker } from './plan.js';
import { runScaleChecks } from './scale-check.js';
import { shutdownSessions, type ShutdownProgress } from './shutdown.js';
import { SessionKeys } from './session-keys.js';
import { startRequest } from './start-request.js';
import { Ticker } from './ticker.js';
import { ProviderHealthWatch } from './provider-health.js';
import type { CitySpec } from './spec.js';
import {
  controllerStatus,
  type AgentFailure,
  type ControllerState,
  type ControllerStatus,
} from './status.js';
import { META, SCALE_DOWN_GRACE_MS, type ControllerOptions, type TickReport } from './options.js';

export { META, SCALE_DOWN_GRACE_MS, type ControllerOptions, type TickReport } from './options.js';
export type { AgentFailure, ControllerState, ControllerStatus, SessionStatus } from './status.js';

/** How many provider calls one act step may run at once. */
const ACT_CONCURRENCY = 8;

export class Controller {
  private spec: CitySpec;
  private readonly provider: Provider;
  private readonly ops: CityOps;
  private readonly clock: Clock;
  private readonly sessionEnv: Record<string, string>;
  private readonly foreign: ((session: string) => boolean) | undefined;
  private readonly log: (line: string) => void;
  private readonly tokens: ControllerOptions['tokens'];
  private readonly facts: SessionFacts | undefined;
  private readonly sessionKeys: SessionKeys;
  private readonly workspaces: ControllerOptions['workspaces'];
  readonly trackers = new Map<string, SessionTracker>();
  private state: ControllerState = 'idle';
  /** The earliest scale-down grace end (epoch ms): the next tick comes no later. */
  private nextWake: number | undefined;
  /** The last snapshot with what was done since applied (status never shows a stopped session running). */
  private live = new Map<string, SessionSnapshot>();
  private readonly ticker: Ticker;
  private ticks = 0;
  private held: ReadonlySet<string> = new Set();
  private lastReport: TickReport | undefined;
  private lastTickAt = 0;
  private configError: string | undefined;
  private lastError: string | undefined;
  private shutdownProgress: ShutdownProgress | undefined;
  /** The last failed start per agent: what status shows until one starts. */
  private readonly startFailures = new Map<string, AgentFailure>();
  /** Every call the controller makes to its provider, counted at the provider. */
  private readonly counted: CountingProvider;
  /** Starts under way, outside the tick (starts.ts). */
  private readonly starts: StartsInFlight;

  constructor(private readonly options: ControllerOptions) {
    this.counted = new CountingProvider(options.provider);
    this.provider = this.counted;
    this.ops = options.ops;
    this.spec = options.spec;
    this.clock = options.clock ?? systemClock;
    this.sessionEnv = options.sessionEnv ?? {};
    this.foreign = options.foreign;
    this.workspaces = options.workspaces;
    this.log = options.log ?? (() => undefined);
    this.tokens = options.tokens;
    this.facts = options.facts;
    this.sessionKeys = SessionKeys.forCity(options.spec.root);
    this.mayAct = options.mayAct ?? (() => true);
    this.starts = new StartsInFlight({
      runWave: (wave, recorded) => this.startWave(wave, recorded),
      // A started session lets its dependents and the wake limit's waiters
      // go now; a failed one is tried again at the next regular tick.
      started: () => this.ticker.poke(),
      now: () => this.clock.now(),
      timeoutMs: () => this.spec.startupTimeoutMs,
      log: this.log,
    });
    this.health = new ProviderHealthWatch(this.provider, (t, sub, pl, m) =>
      this.record(t, sub, pl, m),
    );
    this.ticker = new Ticker({
      run: () =>
        this.tickAndGo().then(
          () => undefined,
          (e: unknown) => {
            this.lastError = errorMessage(e);
            this.log(`tick failed: ${this.lastError}`);
          },
        ),
      active: () => this.state === 'running',
      idleWait: () => {
        const wait = this.spec.daemon.patrolIntervalMs;
        if (this.nextWake === undefined) return wait;
        return Math.max(0, Math.min(wait, this.nextWake - this.clock.now()));
      },
      nudgeGapMs: options.nudgeGapMs ?? 200,
    });
  }

  /** A session ended (or never started): its token goes, its worktree is handed back. */
  private revokeToken(session: string): void {
    try {
      this.tokens?.revoke(session);
    } catch (e) {
      this.log(`revoking the token of ${session}: ${errorMessage(e)}`);
    }
    const agent = agentOfSession(this.spec, session);
    if (agent?.rig && this.workspaces) {
      try {
        this.workspaces.release(session, agent.rig, agent.pool);
      } catch (e) {
        this.log(`releasing the worktree of ${session}: ${errorMessage(e)}`);
      }
    }
  }

  get currentSpec(): CitySpec {
    return this.spec;
  }

  private record(
    type: string,
    subject: string,
    payload: Record<string, unknown>,
    message: string,
  ): Promise<unknown> {
    return this.ops.events
      .record({ type, actor: 'controller', subject, payload, message })
      .catch((e: unknown) => this.log(`event ${type} not recorded: ${errorMessage(e)}`));
  }

  /** Replace the spec (config reload); ticks at once. */
  setSpec(spec: CitySpec): void {
    this.spec = spec;
    this.configError = undefined;
    this.poke();
  }

  /** A reload failed: keep running the old spec, show why. */
  setConfigError(message: string | undefined): void {
    this.configError = message;
  }

  /**
   * Take up the crash-loop records and quarantines kept by the last server
   * (deaths older than the restart window are dropped). Call before start.
   */
  loadFacts(): Promise<number> {
    return loadFacts(this.facts, (s) => this.tracker(s), this.clock.now(), this.spec);
  }

  private saveFacts(session: string): Promise<void> {
    return saveFacts(this.facts, session, this.trackers.get(session), this.log);
  }

  /** Start ticking: one tick now, then every patrol_interval. */
  start(): void {
    if (this.state === 'running') return;
    this.state = 'running';
    this.poke();
  }

  /** Tick as soon as possible (coalesced; never overlapping). */
  poke(): void {
    this.ticker.poke();
  }

  /** A write happened: tick soon (write-driven ticks at most once per nudge gap). */
  nudge(): void {
    this.ticker.nudge();
  }

  /** Wait for the tick in flight and the starts under way. */
  async settle(): Promise<void> {
    while (this.ticker.inFlight || this.starts.size) {
      if (this.ticker.inFlight) await this.ticker.inFlight;
      await this.starts.settled();
    }
  }

  private isCitySession = (name: string): boolean => agentOfSession(this.spec, name) !== undefined;

  /**
   * One tick: observe, decide, act, then wait for the starts it began (a
   * caller that ticks by hand sees their outcome). The ticker's ticks do
   * not wait for starts (tickAndGo). Ticks never overlap: one asked for
   * while another runs runs after it, so two ticks cannot both start (and
   * issue a token for) the same session.
   */
  async tick(): Promise<TickReport> {
    const report = await this.tickAndGo();
    await this.starts.settled();
    return report;
  }

  /** One tick; the starts it decides run on after it (starts.ts). */
  private tickAndGo(): Promise<TickReport> {
    const run = this.tickTail.then(
      () => this.tickOnce(),
      () => this.tickOnce(),
    );
    this.tickTail = run.catch(() => undefined);
    return run;
  }

  private tickTail: Promise<unknown> = Promise.resolve();

  private readonly mayAct: () => boolean;
  private readonly health: ProviderHealthWatch;

  private async tickOnce(): Promise<TickReport> {
    // A server that no longer leads (paused past its lease) records nothing:
    // what it saw is the new leader's to see.
    if (!this.mayAct()) {
      throw new GcError('unavailable', 'this server does not lead the city now; tick skipped');
    }
    const t0 = performance.now();
    const calls0 = this.counted.total;
    const now = this.clock.now();
    const foreign = this.foreign;
    // Taken before the snapshot: a start that ends after it has its tracker set.
    const starting = new Set(this.starts.sessions.keys());
    await this.health.check();
    const all = await this.health.snapshot(() => this.provider.snapshot(''));
    let snapshot = foreign ? all.filter((s) => !foreign(s.name)) : all;
    this.live = new Map(snapshot.map((s) => [s.name, s]));
    snapshot = snapshot.filter((s) => !starting.has(s.name));
    const workload = await this.ops.store.workload();
    const scaleFailures: [agent: string, why: string][] = [];
    const scale = await runScaleChecks(this.spec, {
      onFailure: (agent, why) => scaleFailures.push([agent, why]),
    });
    for (const [agent, why] of scaleFailures) {
      await this.record(
        'controller.scale_check_failed',
        agent,
        { error: why },
        `scale_check of ${agent} failed: ${why}`,
      );
    }
    snapshot = await this.adopt(snapshot, now);
    const desired = desiredState(this.spec, { workload, scale, held: this.held }, snapshot);
    const claims = new Map(workload.claims.map((c) => [c.assignee, c.in_progress]));
    const plan = reconcilePlan(desired, snapshot, this.trackers, {
      now,
      maxWakesPerTick: this.spec.daemon.maxWakesPerTick,
      maxRestarts: this.spec.daemon.maxRestarts,
      restartWindowMs: this.spec.daemon.restartWindowMs,
      driftDrainTimeoutMs: this.spec.daemon.driftDrainTimeoutMs,
      scaleDownGraceMs: SCALE_DOWN_GRACE_MS,
      claims,
      isCitySession: this.isCitySession,
      starting,
    });
    this.nextWake = noteIdle(this.trackers, plan, now);
    await this.act(plan, now);
    if (await pollDrainAcks(this.provider, this.trackers, ACT_CONCURRENCY)) this.ticker.poke();
    this.ticks++;
    this.lastTickAt = now;
    const report: TickReport = {
      plan,
      snapshot,
      desired,
      ms: performance.now() - t0,
      providerCalls: this.counted.total - calls0,
    };
    this.lastReport = report;
    this.options.ticked?.(report);
    return report;
  }

  /** A session was stopped outside a tick (gc session kill): status shows it at once. */
  sessionStopped(name: string): void {
    this.live.delete(name);
    this.poke();
  }

  /** Adopt live sessions the controller has no memory of (see adopt.ts). */
  private adopt(snapshot: SessionSnapshot[], now: number): Promise<SessionSnapshot[]> {
    return adoptStrangers(
      {
        provider: this.provider,
        trackers: this.trackers,
        isCitySession: this.isCitySession,
        record: (type, subject, message) => this.record(type, subject, {}, message),
        revokeToken: (s) => this.revokeToken(s),
        forget: (s) => this.live.delete(s),
        log: this.log,
      },
      snapshot,
      now,
    );
  }

  private tracker(name: string): SessionTracker {
    let t = this.trackers.get(name);
    if (!t) {
      t = { deaths: [] };
      this.trackers.set(name, t);
    }
    return t;
  }

  private async act(plan: Plan, now: number): Promise<void> {
    const byKind = <K extends Action['kind']>(k: K) =>
      plan.actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === k);

    // Events are queued in order and committed together (the log batches a burst).
    const recorded: Promise<unknown>[] = [];
    for (const a of byKind('died')) {
      const t = this.tracker(a.session);
      t.deaths.push(now);
      t.deaths = t.deaths.filter((d) => now - d < this.spec.daemon.restartWindowMs);
      delete t.startedAt;
      delete t.drainingSince;
      delete t.drainAcked;
      delete t.drainReason;
      this.revokeToken(a.session);
      recorded.push(this.saveFacts(a.session));
      const code = a.exitCode === undefined ? '' : ` (exit status ${a.exitCode})`;
      recorded.push(
        this.record(
          'session.died',
          a.session,
          { exit_code: a.exitCode ?? null },
          `session ${a.session} died${code}`,
        ),
      );
    }
    for (const a of byKind('exited')) {
      this.revokeToken(a.session);
      const t = this.tracker(a.session);
      const why =
        t.drainingSince !== undefined ? `after drain (${t.drainReason})` : 'exit status 0';
      delete t.startedAt;
      delete t.drainingSince;
      delete t.drainAcked;
      delete t.drainReason;
      recorded.push(
        this.record(
          'session.exited',
          a.session,
          { exit_code: a.exitCode ?? null },
          `session ${a.session} ended: ${why}`,
        ),
      );
    }
    for (const a of byKind('release')) {
      const released = await this.ops.releaseClaimsOf('controller', a.holder, a.reason);
      if (released.length)
        this.log(`released ${released.length} claim(s) of ${a.holder}: ${a.reason}`);
    }
    for (const a of byKind('quarantine')) {
      this.tracker(a.session).quarantined = true;
      recorded.push(this.saveFacts(a.session));
      recorded.push(
        this.record(
          'session.quarantined',
          a.session,
          { deaths: a.deaths },
          `session ${a.session} quarantined after ${a.deaths} deaths; clear with gc session reset ${a.session}`,
        ),
      );
    }
    await Promise.all(recorded);
    // Stops decided because a session held no claims: fence its claims and
    // look again. One that claimed work since the snapshot is drained, never
    // killed with work in hand.
    const { stops, drains: busyNow } = await recheckIdleStops(this.ops, byKind('stop'), this.log);
    const drains = [...byKind('drain'), ...busyNow];
    await mapLimit(drains, ACT_CONCURRENCY, async (a) => {
      try {
        await this.provider.setMeta(a.session, META.drain, String(Math.floor(now / 1000)));
      } catch (e) {
        this.log(`drain ${a.session}: ${errorMessage(e)}`);
        return;
      }
      const t = this.tracker(a.session);
      t.drainingSince = now;
      t.drainReason = a.reason;
      delete t.restartRequested;
      await this.record(
        'session.draining',
        a.session,
        { reason: a.reason },
        `draining ${a.session}: ${a.reason}`,
      );
    });
    // A wave of stops is one provider call when the provider batches them.
    const batched = stops.length > 1 && (await stopWave(this.provider, stops, this.log));
    await mapLimit(stops, ACT_CONCURRENCY, async (a) => {
      try {
        if (!batched) await this.provider.stop(a.session);
      } catch (e) {
        this.log(`stop ${a.session}: ${errorMessage(e)}`);
        return;
      } finally {
        // Stopped (its token is revoked) or still running: either way it may
        // claim again (a later session of the same name, or this one).
        if (a.ifIdle) this.ops.unfenceClaims([a.session]);
      }
      this.revokeToken(a.session);
      this.live.delete(a.session);
      const t = this.tracker(a.session);
      delete t.startedAt;
      delete t.drainingSince;
      delete t.drainAcked;
      delete t.drainReason;
      await this.record(
        'session.stopped',
        a.session,
        { reason: a.reason },
        `stopped ${a.session}: ${a.reason}`,
      );
    });
    // Starts run on after the tick; when they are done the next tick comes
    // (dependents, and sessions over this tick's wake limit, start then).
    this.starts.launch(byKind('start')).catch((e: unknown) => this.log(errorMessage(e)));
  }

  /** One depends_on wave of starts (start-wave.ts), its outcomes recorded here. */
  private async startWave(
    wave: StartAction[],
    recorded: (session: string, started: boolean) => void,
  ): Promise<void> {
    const now = this.clock.now();
    await startWave(wave, {
      provider: this.provider,
      tokens: this.tokens,
      concurrency: ACT_CONCURRENCY,
      request: async (a, token) => {
        const d = a.session;
        const workDir =
          d.rig && this.workspaces ? await this.workspaces.prepare(d.name, d.rig) : undefined;
        const mode = this.spec.agents.find((x) => x.name === d.agent)?.wakeMode;
        return startRequest(this.spec, d, {
          sessionEnv: this.sessionEnv,
          token,
          workDir,
          wake: await this.sessionKeys.wake(d.name, mode ?? 'fresh'),
          deadline: this.clock.now() + this.spec.startupTimeoutMs,
        });
      },
      failed: async (a, e) => {
        await this.startFailed(a, e, now);
        recorded(a.session.name, false);
      },
      started: async (a) => {
        await this.started(a, now);
        recorded(a.session.name, true);
      },
    });
  }

  /** A failed start counts toward the crash loop like a death. */
  private async startFailed(a: StartAction, e: unknown, now: number): Promise<void> {
    const d = a.session;
    this.revokeToken(d.name);
    this.tracker(d.name).deaths.push(now);
    await this.saveFacts(d.name);
    const msg = errorMessage(e);
    this.log(`start ${d.name} failed: ${msg}`);
    const fix = e instanceof GcError ? e.fix : undefined;
    this.startFailures.set(d.agent, {
      agent: d.agent,
      session: d.name,
      error: msg,
      ...(fix ? { fix } : {}),
      at: now,
    });
    await this.record(
      'session.start_failed',
      d.name,
      { agent: d.agent, error: msg },
      `start of ${d.name} failed: ${msg}`,
    );
  }

  private async started(a: StartAction, now: number): Promise<void> {
    const d = a.session;
    const t = this.tracker(d.name);
    t.startedAt = now;
    t.fingerprint = d.fingerprint;
    this.startFailures.delete(d.agent);
    this.live.set(d.name, { name: d.name, alive: true, lastActivity: 0, attached: false });
    delete t.drainingSince;
    delete t.drainAcked;
    delete t.drainReason;
    await this.record(
      'session.started',
      d.name,
      { agent: d.agent, rig: d.rig ?? null, reason: a.reason },
      `started ${d.name} (${a.reason})`,
    );
  }

  /** An operator's drain or undrain of one session (operator.ts). */
  drain(session: string, on: boolean, actor: string) {
    return operatorDrain(this.operatorContext(), session, on, actor);
  }

  private operatorContext(): OperatorContext {
    const { provider, trackers, clock, sessionKeys } = this;
    const record = this.record.bind(this);
    const saveFacts = this.saveFacts.bind(this);
    const poke = this.poke.bind(this);
    return { provider, trackers, clock, record, saveFacts, sessionKeys, poke };
  }

  /** A session this controller started or adopted and has not seen end. */
  hasSession(session: string): boolean {
    return this.trackers.get(session)?.startedAt !== undefined;
  }

  drainAcked(session: string): void {
    const t = this.trackers.get(session);
    if (t?.drainingSince !== undefined) {
      t.drainAcked = true;
      this.poke();
    }
  }

  /** Hold these agents back (tripped budgets): suspended, as if city.toml said so. */
  hold(agents: ReadonlySet<string>): void {
    this.held = new Set(agents);
    this.poke();
  }

  /** The agent asked to be restarted (drain, then start fresh). */
  requestRestart(session: string): void {
    this.tracker(session).restartRequested = true;
    this.poke();
  }

  /** Clear a session's crash-loop record and quarantine. */
  resetSession(session: string): Promise<boolean> {
    return resetSession(this.operatorContext(), session);
  }

  status(): ControllerStatus {
    return controllerStatus({
      spec: this.spec,
      state: this.state,
      ticks: this.ticks,
      lastTickAt: this.lastTickAt,
      now: this.clock.now(),
      report: this.lastReport,
      live: this.live,
      trackers: this.trackers,
      configError: this.configError,
      lastError: this.lastError,
      providerStale: this.health.stale,
      failures: this.startFailures,
      starting: this.starts.sessions,
      shutdown: this.shutdownProgress,
    });
  }

  /**
   * Graceful shutdown: stop ticking, interrupt every session, wait up to
   * shutdown_timeout for them to exit, stop the survivors.
   */
  async shutdown(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.ticker.stop();
    await this.settle();
    await shutdownSessions({
      provider: this.provider,
      isCitySession: this.isCitySession,
      graceMs: this.spec.daemon.shutdownTimeoutMs,
      log: this.log,
      progress: (p) => (this.shutdownProgress = p),
      stopped: (name) => {
        this.revokeToken(name);
        const why = { reason: 'city shutdown' };
        return this.record('session.stopped', name, why, `stopped ${name}: city shutdown`);
      },
    });
    this.state = 'stopped';
  }

  /** Stop ticking without touching sessions (they are adopted by the next server). */
  detach(): void {
    this.state = 'stopped';
    this.ticker.stop();
  }
}
