/**
 * The session runtime seam: how agents run. A session is a named, long-lived
 * process (an agent CLI in a terminal, a script, a pod) that the controller
 * starts, watches, talks to and stops.
 *
 * Operation names and semantics follow the Gas City provider contract (see
 * docs/runtime.md). Every method is async. Session names are validated with
 * `validateSessionName` before any provider call; a bad name is a
 * `ValidationError`, never something a shell or tmux could mangle.
 *
 * Contract vocabulary used below:
 * - idempotent: calling twice has the effect of calling once, no error.
 * - best-effort: failures of the underlying tool are swallowed; a missing
 *   session is not an error.
 * - must-succeed: throws on failure.
 */
import type { StartConfig } from './start-config.js';

export type { StartConfig } from './start-config.js';

/** What the controller sees of one session, from one batched call. */
export interface SessionSnapshot {
  name: string;
  /** The session exists and its main process is alive. */
  alive: boolean;
  /** Time of last output in epoch ms; 0 when unknown. */
  lastActivity: number;
  /** A human terminal is attached (false when the provider cannot tell). */
  attached: boolean;
  /** Exit status of the session's main process when it is dead and known. */
  exitCode?: number;
}

/** What a provider can report or do; callers adapt instead of guessing. */
export interface ProviderCapabilities {
  /** `getLastActivity` and `snapshot().lastActivity` are meaningful. */
  reportsActivity: boolean;
  /** `isAttached` and `snapshot().attached` are meaningful. */
  reportsAttachment: boolean;
  /** `attach` gives an interactive terminal. */
  canAttach: boolean;
  /** Sessions run real OS processes (false only for the fake). */
  runsProcesses: boolean;
}

/** What a provider knows of its own state, asked once per tick (no I/O). */
export interface ProviderHealth {
  /** Its view of the sessions may be behind (the backing API is unreachable). */
  stale?: { since: number; reason: string };
  /** Things an operator should know, each reported once. */
  warnings: string[];
}

export interface StartOptions {
  /**
   * Absolute deadline (epoch ms) for the whole start, including readiness
   * waiting. Past it the session is stopped and the start fails.
   */
  deadline?: number;
}

/** Told one session's start outcome in a `startMany` wave: undefined when it started. */
export type StartedEach = (index: number, err: Error | undefined) => void;

/** One session of a `startMany` wave. */
export interface StartRequest {
  name: string;
  config: StartConfig;
  options?: StartOptions;
  /**
   * Meta set on the session once it is up (set up, ready), as `setMeta`
   * after `start` would: a session found without it was interrupted
   * mid-start.
   */
  meta?: Readonly<Record<string, string>>;
}

export interface Provider {
  /** Provider name: `fake`, `subprocess`, `tmux`, `exec:<script>`. */
  readonly name: string;
  readonly capabilities: ProviderCapabilities;

  /**
   * Create the session and run `config.command` in it. Must-succeed: throws
   * `SessionExistsError` if a live session has this name (a dead one is
   * replaced), `ValidationError` for a command that cannot be found,
   * `SessionDiedDuringStartupError` when the process exits while readiness is
   * awaited, and `ProviderUnavailableError` when the backing tool is missing.
   * Honours `options.deadline`. Not idempotent.
   */
  start(name: string, config: StartConfig, options?: StartOptions): Promise<void>;

  /**
   * `start`, then `setMeta` of each `meta` entry, for a wave of sessions:
   * for each session the outcome of those single calls, with a constant
   * number of provider subprocesses for the wave (not one or more per
   * session). Resolves with one entry per request, in order: undefined
   * when that session started, its error otherwise; one session's failure
   * never fails the others. `onEach(index, err)`, when given, is called
   * once per request as soon as that session's outcome is known (before
   * the call resolves): a session that is ready early is not held back by
   * a slow one of the same wave. Optional: callers fall back to the single
   * calls (startSessions).
   */
  startMany?(
    requests: readonly StartRequest[],
    onEach?: StartedEach,
  ): Promise<(Error | undefined)[]>;

  /**
   * Destroy the session and its whole process tree (no orphans). Idempotent:
   * succeeds when the session is absent or already stopped.
   */
  stop(name: string): Promise<void>;

  /** Soft interrupt (Ctrl-C). Best-effort; succeeds when absent. */
  interrupt(name: string): Promise<void>;

  /**
   * `stop` for many sessions as one wave: the same outcome for each name,
   * with a constant number of provider subprocesses and one grace window
   * for all. Optional: callers fall back to `stop` per name (stopSessions).
   */
  stopMany?(names: readonly string[]): Promise<void>;

  /** `interrupt` for many sessions at once. Optional, like `stopMany`. */
  interruptMany?(names: readonly string[]): Promise<void>;

  /**
   * `nudge` for many sessions with one text, each exactly once; a session
   * that is gone is skipped, as `nudge` does. Optional: callers fall back
   * to `nudge` per name (nudgeSessions).
   */
  nudgeMany?(names: readonly string[], text: string): Promise<void>;

  /** The session exists and its main process is alive. False when unknown. */
  isRunning(name: string): Promise<boolean>;

  /** A human terminal is attached. False when unknown or unsupported. */
  isAttached(name: string): Promise<boolean>;

  /**
   * Interactive attach on the caller's terminal; resolves on detach. Throws
   * `UnsupportedError` when `capabilities.canAttach` is false and
   * `NotFoundError` when the session does not exist.
   */
  attach(name: string): Promise<void>;

  /**
   * Whether a process with one of `names` runs in the session's process tree.
   * True when `names` is empty (nothing to check); false when the session is
   * absent.
   */
  processAlive(name: string, names: readonly string[]): Promise<boolean>;

  /**
   * Type `text` into the session literally, then Enter. Multi-line text is
   * delivered as one paste. Nothing in the text is interpreted by a shell or
   * as a key name. Best-effort on a missing session (no error); text with
   * control characters other than tab and newline is a `ValidationError`.
   */
  nudge(name: string, text: string): Promise<void>;

  /**
   * Per-session key/value. `setMeta` must succeed on a live session and is a
   * `NotFoundError` on a missing one; `getMeta` of an unset key (or missing
   * session) is ""; `removeMeta` is idempotent.
   */
  setMeta(name: string, key: string, value: string): Promise<void>;
  getMeta(name: string, key: string): Promise<string>;
  removeMeta(name: string, key: string): Promise<void>;

  /**
   * The last `lines` lines of output (`lines <= 0`: all scrollback). Works
   * after the session died when the provider keeps a log. "" when absent.
   */
  peek(name: string, lines: number): Promise<string>;

  /** Names of live sessions starting with `prefix` ("" = all), sorted. */
  listRunning(prefix: string): Promise<string[]>;

  /**
   * One provider round trip returning every session whose name starts with
   * `prefix`, live or dead (dead ones with `alive: false`), sorted by name.
   * This is what the controller calls once per tick.
   */
  snapshot(prefix: string): Promise<SessionSnapshot[]>;

  /** Time of last output in epoch ms; 0 when unknown or absent. */
  getLastActivity(name: string): Promise<number>;

  /** Forget scrollback. Best-effort. */
  clearScrollback(name: string): Promise<void>;

  /**
   * Copy file or directory `src` to `relDst` inside the session's work dir.
   * Succeeds (doing nothing) when `src` does not exist or the session is
   * absent. `relDst` must stay inside the work dir (`ValidationError`).
   */
  copyTo(name: string, src: string, relDst: string): Promise<void>;

  /**
   * Send raw keys without Enter (`Enter`, `Down`, `C-c`, `Escape`, ...).
   * Best-effort on a missing session.
   */
  sendKeys(name: string, keys: readonly string[]): Promise<void>;

  /**
   * Optional: whether the provider's view is current, and warnings it has
   * gathered since the last call. Never does I/O. When `stale` is set the
   * controller neither starts nor stops anything.
   */
  health?(): ProviderHealth;

  /**
   * Release what the provider holds open (file handles, idle servers). Does
   * not stop sessions: they outlive the city server and are adopted by the
   * next one.
   */
  close(): Promise<void>;
}
