/**
 * In-memory provider for controller tests: a real implementation of the
 * contract (it passes the conformance suite) with a call log and failure
 * modes. Its "agent" echoes: nudged text appears in `peek`.
 */
import { NotFoundError, UnsupportedError, systemClock, type Clock } from '../core/index.js';
import { ProviderUnavailableError, SessionExistsError } from './errors.js';
import type {
  Provider,
  ProviderCapabilities,
  SessionSnapshot,
  StartConfig,
  StartOptions,
  StartRequest,
  StartedEach,
} from './provider.js';
import {
  resolveInside,
  validateKeys,
  validateMetaKey,
  validateNudgeText,
  validatePrefix,
  validateSessionName,
} from './validate.js';

export interface FakeCall {
  op: string;
  name: string;
  args: unknown[];
}

interface FakeSession {
  config: StartConfig;
  alive: boolean;
  zombie: boolean;
  attached: boolean;
  meta: Map<string, string>;
  output: string[];
  lastActivity: number;
  exitCode?: number;
}

export class FakeProvider implements Provider {
  readonly name = 'fake';
  readonly capabilities: ProviderCapabilities = {
    reportsActivity: true,
    reportsAttachment: true,
    canAttach: false,
    runsProcesses: false,
  };
  /** Every call, in order (the spy). */
  readonly calls: FakeCall[] = [];
  private readonly sessions = new Map<string, FakeSession>();
  private failure: Error | undefined;
  private readonly dieOnStartNames = new Set<string>();
  private readonly clock: Clock;

  constructor(options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? systemClock;
  }

  // ---- failure modes and test controls ----

  /** Make every call fail (with `error`, or a provider-unavailable error); `undefined` heals. */
  failAll(error?: Error | null): void {
    this.failure =
      error === null
        ? undefined
        : (error ?? new ProviderUnavailableError('fake', 'failAll is set'));
  }

  /**
   * A start of `name` (single or in a batch) waits until the returned
   * function is called: a slow agent start-up.
   */
  holdStart(name: string): () => void {
    let release!: () => void;
    this.held.set(
      name,
      new Promise<void>((r) => {
        release = r;
      }),
    );
    return () => {
      this.held.delete(name);
      release();
    };
  }

  private readonly held = new Map<string, Promise<void>>();
  private readonly startErrors = new Map<string, Error>();

  /** Starts of `name` fail with `error` (undefined: they succeed again). */
  failStart(name: string, error: Error | undefined): void {
    if (error) this.startErrors.set(name, error);
    else this.startErrors.delete(name);
  }

  /** Sessions with these names die right after they start. */
  dieOnStart(...names: string[]): void {
    for (const n of names) this.dieOnStartNames.add(n);
  }

  /** The session's process exits (it stays listed as dead until stopped). */
  kill(name: string, exitCode = 1): void {
    const s = this.sessions.get(name);
    if (s) {
      s.alive = false;
      s.exitCode = exitCode;
    }
  }

  /** The session looks running, but none of its agent processes is alive. */
  zombie(name: string): void {
    const s = this.sessions.get(name);
    if (s) s.zombie = true;
  }

  setAttached(name: string, attached: boolean): void {
    const s = this.sessions.get(name);
    if (s) s.attached = attached;
  }

  /** The session prints `text`. */
  emit(name: string, text: string): void {
    const s = this.sessions.get(name);
    if (!s) return;
    s.output.push(...text.split('\n'));
    s.lastActivity = this.clock.now();
  }

  /** The config a session was started with. */
  configOf(name: string): StartConfig | undefined {
    return this.sessions.get(name)?.config;
  }

  /** Calls of one op, for assertions. */
  callsOf(op: string): FakeCall[] {
    return this.calls.filter((c) => c.op === op);
  }

  private record(op: string, name: string, ...args: unknown[]): void {
    this.calls.push({ op, name, args });
    if (this.failure) throw this.failure;
  }

  // ---- the contract ----

  async start(name: string, config: StartConfig, _options?: StartOptions): Promise<void> {
    validateSessionName(name);
    this.record('start', name, config);
    await (this.held.get(name) ?? Promise.resolve());
    this.startOne(name, config);
  }

  private startOne(name: string, config: StartConfig): void {
    const err = this.startErrors.get(name);
    if (err) throw err;
    if (this.sessions.get(name)?.alive) throw new SessionExistsError(name);
    const s: FakeSession = {
      config,
      alive: true,
      zombie: false,
      attached: false,
      meta: new Map(),
      output: [],
      lastActivity: this.clock.now(),
    };
    this.sessions.set(name, s);
    if (config.ready_prompt_prefix) this.emit(name, config.ready_prompt_prefix);
    if (config.nudge) this.emit(name, validateNudgeText(config.nudge));
    if (this.dieOnStartNames.has(name)) this.kill(name, 1);
  }

  /**
   * One call for a wave of starts (recorded as one `startMany` naming them
   * all): each session as `start` then `setMeta` would leave it. Failure
   * injection (`failNext`) fails the whole call, as a provider's does.
   */
  async startMany(
    requests: readonly StartRequest[],
    onEach?: StartedEach,
  ): Promise<(Error | undefined)[]> {
    for (const r of requests) validateSessionName(r.name);
    this.record('startMany', requests.map((r) => r.name).join(','));
    // Each session as soon as its own start is released (holdStart).
    return Promise.all(
      requests.map(async (r, i) => {
        await (this.held.get(r.name) ?? Promise.resolve());
        let err: Error | undefined;
        try {
          this.startOne(r.name, r.config);
          for (const [k, v] of Object.entries(r.meta ?? {}))
            this.sessions.get(r.name)?.meta.set(k, v);
        } catch (e) {
          err = e as Error;
        }
        onEach?.(i, err);
        return err;
      }),
    );
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async stop(name: string): Promise<void> {
    validateSessionName(name);
    this.record('stop', name);
    this.sessions.delete(name);
  }

  /** One call for a wave of stops (recorded as one `stopMany`). */
  // eslint-disable-next-line @typescript-eslint/require-await
  async stopMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    this.record('stopMany', names.join(','));
    for (const n of names) this.sessions.delete(n);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async interrupt(name: string): Promise<void> {
    validateSessionName(name);
    this.record('interrupt', name);
    if (this.sessions.get(name)?.alive) this.emit(name, '^C');
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async isRunning(name: string): Promise<boolean> {
    validateSessionName(name);
    this.record('is-running', name);
    return this.sessions.get(name)?.alive ?? false;
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async isAttached(name: string): Promise<boolean> {
    validateSessionName(name);
    this.record('is-attached', name);
    return this.sessions.get(name)?.attached ?? false;
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async attach(name: string): Promise<void> {
    validateSessionName(name);
    this.record('attach', name);
    if (!this.sessions.has(name)) throw new NotFoundError('session', name);
    throw new UnsupportedError('the fake provider has no terminal to attach to');
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async processAlive(name: string, names: readonly string[]): Promise<boolean> {
    validateSessionName(name);
    this.record('process-alive', name, names);
    if (names.length === 0) return true;
    const s = this.sessions.get(name);
    return s !== undefined && s.alive && !s.zombie;
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async nudge(name: string, text: string): Promise<void> {
    validateSessionName(name);
    const clean = validateNudgeText(text);
    this.record('nudge', name, text);
    if (this.sessions.get(name)?.alive) this.emit(name, clean);
  }

  /** One call for a fan-out of one nudge (recorded as one `nudgeMany`). */
  // eslint-disable-next-line @typescript-eslint/require-await
  async nudgeMany(names: readonly string[], text: string): Promise<void> {
    for (const n of names) validateSessionName(n);
    const clean = validateNudgeText(text);
    this.record('nudgeMany', names.join(','), text);
    for (const n of names) if (this.sessions.get(n)?.alive) this.emit(n, clean);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async setMeta(name: string, key: string, value: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    this.record('set-meta', name, key, value);
    const s = this.sessions.get(name);
    if (!s) throw new NotFoundError('session', name);
    s.meta.set(key, value);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async getMeta(name: string, key: string): Promise<string> {
    validateSessionName(name);
    validateMetaKey(key);
    this.record('get-meta', name, key);
    return this.sessions.get(name)?.meta.get(key) ?? '';
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async removeMeta(name: string, key: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    this.record('remove-meta', name, key);
    this.sessions.get(name)?.meta.delete(key);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async peek(name: string, lines: number): Promise<string> {
    validateSessionName(name);
    this.record('peek', name, lines);
    const out = this.sessions.get(name)?.output ?? [];
    return (lines > 0 ? out.slice(-lines) : out).join('\n');
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async listRunning(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    this.record('list-running', '', prefix);
    return [...this.sessions]
      .filter(([n, s]) => s.alive && n.startsWith(prefix))
      .map(([n]) => n)
      .sort();
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async snapshot(prefix: string): Promise<SessionSnapshot[]> {
    validatePrefix(prefix);
    this.record('snapshot', '', prefix);
    return [...this.sessions]
      .filter(([n]) => n.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([n, s]) => ({
        name: n,
        alive: s.alive,
        lastActivity: s.lastActivity,
        attached: s.attached,
        ...(s.exitCode === undefined || s.alive ? {} : { exitCode: s.exitCode }),
      }));
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async getLastActivity(name: string): Promise<number> {
    validateSessionName(name);
    this.record('get-last-activity', name);
    return this.sessions.get(name)?.lastActivity ?? 0;
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async clearScrollback(name: string): Promise<void> {
    validateSessionName(name);
    this.record('clear-scrollback', name);
    const s = this.sessions.get(name);
    if (s) s.output = [];
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async copyTo(name: string, src: string, relDst: string): Promise<void> {
    validateSessionName(name);
    resolveInside('/session-work-dir', relDst);
    this.record('copy-to', name, src, relDst);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async sendKeys(name: string, keys: readonly string[]): Promise<void> {
    validateSessionName(name);
    validateKeys(keys);
    this.record('send-keys', name, [...keys]);
  }

  async close(): Promise<void> {
    // nothing held
  }
}
