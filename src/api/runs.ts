/**
 * Agent runs: `POST /v0/runs` starts a session from a city agent's template
 * with a prompt, outside the controller's pools; its output streams as SSE
 * from the session log; it ends when the agent exits or is stopped.
 *
 * Limits: at most `maxRuns` runs at once city-wide, and an operator key's
 * `max_sessions` (its tier) caps that operator's concurrent runs. A run
 * over either limit is refused with 429, never queued silently.
 *
 * Runs are recorded (`.gc/api.db`, or the city's database: run-records.ts),
 * so a restarted server knows which live sessions are runs (and leaves them
 * alone) and still answers for old ones.
 */
import { randomBytes } from 'node:crypto';
import {
  ForbiddenError,
  GcError,
  NotFoundError,
  RateLimitedError,
  ValidationError,
  errorMessage,
} from '../core/index.js';
import type { Principal } from '../city/index.js';
import type { CitySpec } from '../controller/index.js';
import type { EventLog } from '../events/index.js';
import type { Provider } from '../runtime/index.js';
import type { RunRecords, RunRow, RunState } from './run-records.js';

export type { RunState } from './run-records.js';

export interface Run {
  id: string;
  session: string;
  template: string;
  owner: string;
  owner_kind: string;
  state: RunState;
  exit_code: number | null;
  error: string;
  created_at: string;
  ended_at: string | null;
  seq: number;
}

export interface RunServiceOptions {
  records: RunRecords;
  provider: Provider;
  events: EventLog;
  spec: () => CitySpec;
  maxRuns: number;
  sessionEnv: Record<string, string>;
  tokens: { issue(session: string): Promise<string>; revoke(session: string): void };
  log: (line: string) => void;
  /** How often ended runs are noticed. */
  reapIntervalMs?: number;
  /** Whether this server may act on sessions now (it leads the city); default always. */
  mayAct?: () => boolean;
}

type Row = RunRow;

const toRun = (r: Row): Run => ({
  id: r.id,
  session: r.session,
  template: r.template,
  owner: r.owner,
  owner_kind: r.owner_kind,
  state: r.state,
  exit_code: r.exit_code,
  error: r.error,
  created_at: r.created_at,
  ended_at: r.ended_at,
  seq: r.seq,
});

export class RunService {
  /** Sessions of live runs, for the controller's `foreign` check. */
  private readonly live = new Map<string, Row>();
  private readonly starting = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly o: RunServiceOptions) {}

  /** Load the runs still running (a restarted server leaves their sessions alone), then reap. */
  static async open(o: RunServiceOptions): Promise<RunService> {
    const service = new RunService(o);
    for (const r of await o.records.running()) service.live.set(r.session, r);
    service.startReaping();
    return service;
  }

  private startReaping(): void {
    const o = this.o;
    this.timer = setInterval(() => {
      this.reap().catch((e: unknown) => o.log(`runs: reaping failed: ${errorMessage(e)}`));
    }, o.reapIntervalMs ?? 1000);
    this.timer.unref();
  }

  isRunSession = (session: string): boolean => this.live.has(session) || this.starting.has(session);

  get active(): number {
    return this.live.size + this.starting.size;
  }

  private activeOf(ownerKey: string): number {
    let n = 0;
    for (const r of this.live.values()) if (r.owner_key === ownerKey) n++;
    for (const k of this.starting.values()) if (k === ownerKey) n++;
    return n;
  }

  async start(
    principal: Principal,
    input: { template: string; prompt: string; env?: Record<string, string> },
  ): Promise<Run> {
    if (principal.kind === 'agent') {
      throw new ForbiddenError(`agent ${principal.name} may not start runs`);
    }
    const agent = this.o.spec().agents.find((a) => a.name === input.template);
    if (!agent) {
      throw new ValidationError(`no agent ${input.template} in city.toml to run as a template`, {
        where: 'template',
      });
    }
    // Run env is an allowlist per agent: a variable like NODE_OPTIONS,
    // LD_PRELOAD or BASH_ENV would run the caller's code as the city user.
    const refused = Object.keys(input.env ?? {}).filter((k) => !agent.runEnv.includes(k));
    if (refused.length) {
      throw new ValidationError(
        `${refused.join(', ')} may not be set for a run of ${agent.name}${agent.runEnv.length ? ` (allowed: ${agent.runEnv.join(', ')})` : ' (it allows none)'}`,
        {
          where: `body.env.${refused[0]}`,
          fix: `list the variable in run_env of [[agent]] ${agent.name} in city.toml`,
        },
      );
    }
    if (this.active >= this.o.maxRuns) {
      throw new RateLimitedError(
        principal.name,
        5000,
        `the city has ${this.active} runs going, its limit ([api] max_runs = ${this.o.maxRuns})`,
      );
    }
    if (
      principal.kind === 'operator' &&
      principal.max_sessions > 0 &&
      this.activeOf(principal.key_id) >= principal.max_sessions
    ) {
      throw new RateLimitedError(
        principal.name,
        5000,
        `operator ${principal.name} has ${principal.max_sessions} runs going, its limit (max_sessions)`,
      );
    }
    const id = `run-${randomBytes(5).toString('hex')}`;
    const session = id;
    this.starting.set(session, principal.key_id);
    const created = new Date().toISOString();
    try {
      const env = {
        ...agent.start.env,
        ...input.env,
        ...this.o.sessionEnv,
        GC_CITY: this.o.spec().name,
        GC_CITY_ROOT: this.o.spec().root,
        GC_AGENT: agent.name,
        GC_SESSION_NAME: session,
        GC_RUN_ID: id,
        GC_RUN_PROMPT: input.prompt,
        GC_TOKEN: await this.o.tokens.issue(session),
      };
      const row = await this.o.records.insert({
        id,
        session,
        template: agent.name,
        owner: principal.name,
        owner_key: principal.key_id,
        owner_kind: principal.kind,
        created_at: created,
      });
      try {
        await this.o.provider.start(
          session,
          { ...agent.start, env, nudge: input.prompt },
          { deadline: Date.now() + this.o.spec().startupTimeoutMs },
        );
      } catch (e) {
        this.o.tokens.revoke(session);
        await this.end(row, 'failed', null, errorMessage(e));
        throw e instanceof GcError
          ? e
          : new GcError('unavailable', `run ${id} did not start: ${errorMessage(e)}`);
      }
      this.live.set(session, row);
      await this.o.events.record({
        type: 'run.started',
        actor: principal.name,
        subject: id,
        payload: { template: agent.name, session },
        message: `run ${id} of ${agent.name} started by ${principal.name}`,
      });
      return toRun(row);
    } finally {
      this.starting.delete(session);
    }
  }

  private async end(row: Row, state: RunState, exitCode: number | null, error = ''): Promise<Row> {
    const ended = new Date().toISOString();
    await this.o.records.end(row.seq, state, exitCode, error, ended);
    this.live.delete(row.session);
    return { ...row, state, exit_code: exitCode, error, ended_at: ended };
  }

  private async row(id: string): Promise<Row> {
    const r = await this.o.records.get(id);
    if (!r) throw new NotFoundError('run', id);
    return r;
  }

  async get(id: string): Promise<Run> {
    return toRun(await this.row(id));
  }

  /** Runs by start order; operators see their own, admin all. */
  async list(
    principal: Principal,
    after = 0,
    limit = 100,
  ): Promise<{ items: Run[]; next_cursor: string | null }> {
    const rows = await this.o.records.list(
      after,
      limit + 1,
      principal.kind === 'admin' ? undefined : principal.key_id,
    );
    const items = rows.slice(0, limit).map(toRun);
    return {
      items,
      next_cursor: rows.length > limit ? String(items.at(-1)!.seq) : null,
    };
  }

  /** The run, if `principal` may see or stop it. */
  async mayTouch(principal: Principal, id: string): Promise<Run> {
    const row = await this.row(id);
    const run = toRun(row);
    if (principal.kind === 'admin') return run;
    if (principal.kind === 'operator' && row.owner_key === principal.key_id) return run;
    throw new ForbiddenError(`${principal.kind} ${principal.name} may not touch run ${id}`);
  }

  async stop(id: string, by: string): Promise<Run> {
    const run = await this.get(id);
    const row = this.live.get(run.session);
    if (!row) return run;
    await this.o.provider.stop(run.session);
    this.o.tokens.revoke(run.session);
    const ended = await this.end(row, 'stopped', null);
    await this.o.events.record({
      type: 'run.stopped',
      actor: by,
      subject: id,
      message: `run ${id} stopped by ${by}`,
    });
    return toRun(ended);
  }

  /** Notice runs whose session exited; clean their session up. */
  /**
   * Take the runs up again from the records (a server that has just become
   * the city's leader: runs started by the one before it are its now).
   */
  async takeUp(): Promise<void> {
    this.live.clear();
    for (const r of await this.o.records.running()) this.live.set(r.session, r);
  }

  async reap(): Promise<void> {
    if (!this.live.size || this.o.mayAct?.() === false) return;
    let snap;
    try {
      snap = await this.o.provider.snapshot('run-');
    } catch (e) {
      this.o.log(`runs: snapshot failed: ${errorMessage(e)}`);
      return;
    }
    const alive = new Map(snap.map((s) => [s.name, s]));
    for (const row of [...this.live.values()]) {
      const s = alive.get(row.session);
      if (s?.alive) continue;
      const code = s?.exitCode ?? null;
      await this.o.provider.stop(row.session).catch(() => undefined);
      this.o.tokens.revoke(row.session);
      await this.end(row, 'exited', code);
      await this.o.events.record({
        type: 'run.exited',
        actor: 'controller',
        subject: row.id,
        payload: { exit_code: code },
        message: `run ${row.id} exited${code === null ? '' : ` with status ${code}`}`,
      });
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
