/**
 * tmux provider. Each city has its own tmux server (`tmux -L <socket> -f
 * /dev/null`), never the user's default one, so `gc` cannot touch a human's
 * sessions and the user's tmux.conf cannot change ours.
 *
 * - `remain-on-exit` is on, so a session whose process died stays listed
 *   with `pane_dead=1` and its exit status until it is stopped or replaced.
 * - Output is also appended to `<stateDir>/logs/<name>.log` (pipe-pane), so
 *   `peek` works after the session is gone.
 * - Meta is the tmux session environment.
 * - `snapshot` is one `list-sessions -F` call.
 *
 * Every value is passed to tmux as its own argv entry (no shell), escaped
 * for the two things tmux itself parses in arguments: a trailing `;` (a
 * command separator) and `#` in format-expanded options.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  GcError,
  NotFoundError,
  runFile,
  startProcess,
  type RunFileResult,
} from '../core/index.js';
import { ProviderUnavailableError, SessionExistsError } from './errors.js';
import { tailLines } from './log-file.js';
import { killTree, treeHasName } from './proc.js';
import type {
  Provider,
  ProviderCapabilities,
  SessionSnapshot,
  StartConfig,
  StartOptions,
} from './provider.js';
import {
  awaitReady,
  checkCommand,
  copyInto,
  prepareWorkDir,
  runPreStart,
  runSessionSetup,
  stripAnsi,
} from './startup.js';
import {
  validateKeys,
  validateMetaKey,
  validateNudgeText,
  validatePrefix,
  validateSessionName,
} from './validate.js';

export interface TmuxProviderOptions {
  /** tmux socket name (`-L`); one per city. See `tmuxSocketFor`. */
  socket: string;
  /** Directory for session logs (the city's `.gc/sessions`). */
  stateDir: string;
  /** tmux binary. Default `tmux` on PATH. */
  tmux?: string;
  /** Grace period between SIGTERM and SIGKILL for survivors of `stop`. Default 5 s. */
  stopGraceMs?: number;
  /** Default start deadline when the caller gives none. Default 60 s. */
  startTimeoutMs?: number;
}

/** Time limit of one tmux call; a wedged server must not wedge the city. */
const TMUX_CALL_TIMEOUT_MS = 30_000;
/** Commands per tmux call in a command sequence (stopMany, interruptMany). */
const CHAIN = 100;
/** Pane size: wide enough that agents do not wrap their prompts. */
const PANE_COLUMNS = '220';
const PANE_ROWS = '50';

/** The socket name for a city: readable, and unique per city directory. */
export function tmuxSocketFor(cityRoot: string): string {
  const base = path
    .basename(path.resolve(cityRoot))
    .replace(/[^A-Za-z0-9_-]/g, '')
    .slice(0, 24);
  const hash = createHash('sha256').update(path.resolve(cityRoot)).digest('hex').slice(0, 8);
  return `gc-${base || 'city'}-${hash}`;
}

/**
 * Escape one argv entry for tmux: an argument ending in `;` ends a tmux
 * command, unless the `;` follows a backslash, which tmux then drops. So a
 * backslash before the final `;` makes any text arrive unchanged.
 */
export function tmuxArg(value: string): string {
  return value.endsWith(';') ? `${value.slice(0, -1)}\\;` : value;
}

/** Escape `#` for options tmux expands as formats (`-c`, pipe-pane). */
function formatLiteral(value: string): string {
  return value.replace(/#/g, '##');
}

/**
 * What a tmux session runs: export the assignments in the env file ($0),
 * delete it, then run the session's command ($1) as `sh -c` always did.
 */
const ENV_WRAPPER = 'set -a; . "$0"; set +a; rm -f -- "$0"; exec /bin/sh -c "$1"';

/** Quote a value for a shell (a path for pipe-pane, an env file value). */
function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const GONE =
  /no server running|error connecting to|can't find (session|pane|window)|no such (session|file)/i;

export class TmuxProvider implements Provider {
  readonly name = 'tmux';
  readonly capabilities: ProviderCapabilities = {
    reportsActivity: true,
    reportsAttachment: true,
    canAttach: true,
    runsProcesses: true,
  };
  readonly socket: string;
  /** Number of tmux processes spawned, for benchmarks and tests. */
  subprocesses = 0;
  private readonly bin: string;
  private readonly logsDir: string;
  private readonly stateDir: string;
  private readonly graceMs: number;
  private readonly startTimeoutMs: number;
  private versionChecked: Promise<void> | undefined;

  constructor(options: TmuxProviderOptions) {
    this.socket = options.socket;
    this.bin = options.tmux ?? 'tmux';
    this.logsDir = path.join(options.stateDir, 'logs');
    this.stateDir = options.stateDir;
    this.graceMs = options.stopGraceMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    validateSessionName(this.socket, 'tmux socket');
  }

  /** Run tmux on the city's server. Never throws for tmux's own errors. */
  private async tmux(
    args: readonly string[],
    input?: string,
    env?: NodeJS.ProcessEnv,
  ): Promise<RunFileResult> {
    this.subprocesses++;
    try {
      const r = await runFile(this.bin, ['-L', this.socket, '-f', '/dev/null', ...args], {
        ...(input === undefined ? {} : { input }),
        ...(env === undefined ? {} : { env }),
        timeoutMs: TMUX_CALL_TIMEOUT_MS,
      });
      if (r.timedOut) {
        throw new ProviderUnavailableError(
          'tmux',
          `tmux ${args[0]} hung for ${TMUX_CALL_TIMEOUT_MS} ms`,
        );
      }
      return r;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ProviderUnavailableError('tmux', `${this.bin} not found on PATH`, {
          fix: 'install tmux (apt-get install tmux) or set [session] provider = "subprocess"',
        });
      }
      throw e;
    }
  }

  private checkVersion(): Promise<void> {
    this.versionChecked ??= (async () => {
      const r = await this.tmux(['-V']);
      const m = /tmux (?:next-)?(\d+)\.(\d+)/.exec(r.stdout);
      // -e on new-session (session environment at creation) needs tmux 3.2.
      if (m && (Number(m[1]) < 3 || (Number(m[1]) === 3 && Number(m[2]) < 2))) {
        throw new ProviderUnavailableError(
          'tmux',
          `tmux 3.2 or newer is required, found ${r.stdout.trim()}`,
        );
      }
    })();
    return this.versionChecked;
  }

  private logFile(name: string): string {
    return path.join(this.logsDir, `${name}.log`);
  }

  /** One format string for one session; "" when the session is absent. */
  private async display(name: string, format: string): Promise<string> {
    const r = await this.tmux(['display-message', '-p', '-t', `=${name}:`, format]);
    return r.code === 0 ? r.stdout.replace(/\n$/, '') : '';
  }

  async start(name: string, config: StartConfig, options: StartOptions = {}): Promise<void> {
    validateSessionName(name);
    const deadline = options.deadline ?? Date.now() + this.startTimeoutMs;
    await this.checkVersion();
    await checkCommand(config);
    await prepareWorkDir(config);
    await runPreStart(config);
    await mkdir(this.logsDir, { recursive: true });
    await writeFile(this.logFile(name), '');
    // The session's environment (its token among it) goes through a 0600
    // file the session reads and deletes, never through tmux's argv: the
    // tmux server keeps its first client's argv, readable by every local
    // user in /proc/<pid>/cmdline.
    const envFile = await this.writeEnvFile(name, config.env ?? {});
    const args = [
      'start-server',
      ';',
      'set-option',
      '-g',
      'remain-on-exit',
      'on',
      ';',
      'new-session',
      '-d',
      '-s',
      name,
      '-x',
      PANE_COLUMNS,
      '-y',
      PANE_ROWS,
      ...(config.work_dir ? ['-c', tmuxArg(formatLiteral(config.work_dir))] : []),
      '--',
      '/bin/sh',
      '-c',
      ENV_WRAPPER,
      envFile,
      tmuxArg(config.command?.trim() || 'exec "${SHELL:-/bin/sh}"'),
      ';',
      // Same command queue: attached before tmux reads any output of the pane.
      'pipe-pane',
      '-o',
      '-t',
      `=${name}:`,
      tmuxArg(formatLiteral(`exec cat >> ${shQuote(this.logFile(name))}`)),
    ];
    // tmux gives a new session the PATH of the client that creates it, not
    // the one passed with -e: so the client runs with the session's PATH.
    const clientEnv = config.env?.PATH ? { ...process.env, PATH: config.env.PATH } : undefined;
    let r = await this.tmux(args, undefined, clientEnv);
    if (r.code !== 0 && /duplicate session/.test(r.stderr)) {
      // A dead session (remain-on-exit) under this name is replaced.
      if ((await this.display(name, '#{pane_dead}')) !== '1') throw new SessionExistsError(name);
      await this.tmux(['kill-session', '-t', `=${name}`]);
      r = await this.tmux(args, undefined, clientEnv);
      if (r.code !== 0 && /duplicate session/.test(r.stderr)) throw new SessionExistsError(name);
    }
    if (r.code !== 0) {
      await rm(envFile, { force: true });
      throw new GcError('unavailable', `tmux new-session ${name}: ${r.stderr.trim()}`, {
        details: { session: name },
      });
    }
    try {
      await runSessionSetup({
        ...config,
        env: { ...config.env, GC_SESSION_NAME: name, GC_TMUX_SOCKET: this.socket },
      });
      await awaitReady(this, name, config, deadline);
    } catch (e) {
      await this.stop(name).catch(() => undefined);
      throw e;
    }
  }

  /** Write `env` as shell assignments to a fresh 0600 file (in a 0700 directory). */
  private async writeEnvFile(name: string, env: Record<string, string>): Promise<string> {
    const dir = path.join(this.stateDir, 'env');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const file = path.join(dir, `${name}.${randomBytes(6).toString('hex')}.env`);
    const text = Object.entries(env)
      .map(([k, v]) => `${k}=${shQuote(v)}\n`)
      .join('');
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    return file;
  }

  async stop(name: string): Promise<void> {
    validateSessionName(name);
    const pid = Number(await this.display(name, '#{pane_pid}'));
    await this.tmux(['kill-session', '-t', `=${name}`]);
    // tmux sent SIGHUP; anything that ignored it is stopped here.
    if (pid > 0) await killTree(pid, this.graceMs);
  }

  async interrupt(name: string): Promise<void> {
    validateSessionName(name);
    await this.tmux(['send-keys', '-t', `=${name}:`, 'C-c']);
  }

  /** Pane pids of the named sessions that exist (one tmux call). */
  private async panePids(names: readonly string[]): Promise<Map<string, number>> {
    const wanted = new Set(names);
    const r = await this.tmux(['list-panes', '-a', '-F', '#{session_name}\t#{pane_pid}']);
    const out = new Map<string, number>();
    if (r.code !== 0) return out;
    for (const line of r.stdout.split('\n')) {
      const [name, pid] = line.split('\t');
      if (name && wanted.has(name)) out.set(name, Number(pid));
    }
    return out;
  }

  /**
   * One tmux command per session, sent as command sequences of up to
   * CHAIN per tmux call. tmux stops a sequence at its first failing command
   * (a session that went away meanwhile): those left are sent again.
   */
  private async chain(names: readonly string[], cmd: (name: string) => string[]): Promise<void> {
    let left = [...names];
    for (let round = 0; left.length && round < 3; round++) {
      for (let i = 0; i < left.length; i += CHAIN) {
        const args = left.slice(i, i + CHAIN).flatMap((n, k) => [...(k ? [';'] : []), ...cmd(n)]);
        await this.tmux(args);
      }
      const still = await this.panePids(left);
      left = left.filter((n) => still.has(n));
    }
  }

  async stopMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    const pids = await this.panePids(names);
    const live = [...pids.keys()];
    await this.chain(live, (n) => ['kill-session', '-t', `=${n}`]);
    // tmux sent SIGHUP to every pane; what ignored it goes here, all in one grace window.
    await Promise.all(
      [...pids.values()].filter((p) => p > 0).map((p) => killTree(p, this.graceMs)),
    );
  }

  async interruptMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    const live = [...(await this.panePids(names)).keys()];
    // A failed send-keys (session gone) ends a sequence: chain() sends the rest again,
    // so only sessions still present get one more C-c; harmless for an interrupt.
    for (let i = 0; i < live.length; i += CHAIN) {
      const part = live.slice(i, i + CHAIN);
      await this.tmux(
        part.flatMap((n, k) => [...(k ? [';'] : []), 'send-keys', '-t', `=${n}:`, 'C-c']),
      );
    }
  }

  async isRunning(name: string): Promise<boolean> {
    validateSessionName(name);
    return (await this.display(name, '#{pane_dead}')) === '0';
  }

  async isAttached(name: string): Promise<boolean> {
    validateSessionName(name);
    return Number((await this.display(name, '#{session_attached}')) || '0') > 0;
  }

  async attach(name: string): Promise<void> {
    validateSessionName(name);
    if ((await this.display(name, '#{session_name}')) !== name) {
      throw new NotFoundError('session', name);
    }
    const p = startProcess(
      this.bin,
      ['-L', this.socket, '-f', '/dev/null', 'attach-session', '-t', `=${name}`],
      { stdio: 'inherit' },
    );
    const exit = await p.exited;
    if (exit.error) throw exit.error;
  }

  async processAlive(name: string, names: readonly string[]): Promise<boolean> {
    validateSessionName(name);
    if (names.length === 0) return true;
    const [dead, pid] = (await this.display(name, '#{pane_dead} #{pane_pid}')).split(' ');
    if (dead !== '0' || !pid) return false;
    return treeHasName(Number(pid), names);
  }

  async nudge(name: string, text: string): Promise<void> {
    validateSessionName(name);
    const clean = validateNudgeText(text);
    const target = `=${name}:`;
    if (clean.includes('\n')) {
      // One paste (bracketed when the agent asked for it), then Enter.
      const buffer = `gc-nudge-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
      await this.tmux(
        [
          'load-buffer',
          '-b',
          buffer,
          '-',
          ';',
          'paste-buffer',
          '-d',
          '-p',
          '-b',
          buffer,
          '-t',
          target,
          ';',
          'send-keys',
          '-t',
          target,
          'Enter',
        ],
        clean,
      );
      return;
    }
    await this.tmux([
      'send-keys',
      '-t',
      target,
      '-l',
      '--',
      tmuxArg(clean),
      ';',
      'send-keys',
      '-t',
      target,
      'Enter',
    ]);
  }

  async setMeta(name: string, key: string, value: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    const r = await this.tmux(['set-environment', '-t', `=${name}`, key, tmuxArg(value)]);
    if (r.code !== 0) {
      if (GONE.test(r.stderr)) throw new NotFoundError('session', name);
      throw new GcError('unavailable', `tmux set-environment: ${r.stderr.trim()}`);
    }
  }

  async getMeta(name: string, key: string): Promise<string> {
    validateSessionName(name);
    validateMetaKey(key);
    const r = await this.tmux(['show-environment', '-t', `=${name}`, key]);
    if (r.code !== 0) return '';
    const line = r.stdout.replace(/\n$/, '');
    return line.startsWith(`${key}=`) ? line.slice(key.length + 1) : '';
  }

  async removeMeta(name: string, key: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.tmux(['set-environment', '-t', `=${name}`, '-u', key]);
  }

  async peek(name: string, lines: number): Promise<string> {
    validateSessionName(name);
    const r = await this.tmux([
      'capture-pane',
      '-p',
      '-J',
      '-t',
      `=${name}:`,
      '-S',
      lines > 0 ? `-${lines}` : '-',
    ]);
    let text: string;
    if (r.code === 0) {
      text = r.stdout;
    } else {
      // Gone: the pipe-pane log still has what it printed.
      text = stripAnsi(await tailLines(this.logFile(name), lines > 0 ? lines * 2 : 0)).replace(
        /\r/g,
        '',
      );
    }
    // tmux's own "Pane is dead" notice is not session output.
    const all = text
      .replace(/\s+$/, '')
      .replace(/\n*Pane is dead \([^)]*\)$/, '')
      .split('\n');
    return (lines > 0 ? all.slice(-lines) : all).join('\n');
  }

  async listRunning(prefix: string): Promise<string[]> {
    return (await this.snapshot(prefix)).filter((s) => s.alive).map((s) => s.name);
  }

  async snapshot(prefix: string): Promise<SessionSnapshot[]> {
    validatePrefix(prefix);
    // tmux marks a pane dead when its terminal closes and learns the exit
    // status when it reaps the process, a moment later: a pane dead with
    // neither status nor signal yet is asked about again, briefly.
    for (let attempt = 0; ; attempt++) {
      const snap = await this.snapshotOnce(prefix);
      if (snap.settled || attempt >= 5) return snap.sessions;
      await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
    }
  }

  private async snapshotOnce(
    prefix: string,
  ): Promise<{ sessions: SessionSnapshot[]; settled: boolean }> {
    const r = await this.tmux([
      'list-sessions',
      '-F',
      '#{session_name}\t#{pane_dead}\t#{session_activity}\t#{session_attached}\t#{pane_dead_status}\t#{pane_dead_signal}',
    ]);
    if (r.code !== 0) {
      if (GONE.test(r.stderr) || r.stderr.trim() === '') return { sessions: [], settled: true };
      throw new ProviderUnavailableError('tmux', `list-sessions: ${r.stderr.trim()}`);
    }
    const out: SessionSnapshot[] = [];
    let settled = true;
    for (const line of r.stdout.split('\n')) {
      const [name, dead, activity, attached, status, signal] = line.split('\t');
      if (!name || !name.startsWith(prefix)) continue;
      const snap: SessionSnapshot = {
        name,
        alive: dead === '0',
        lastActivity: Number(activity) * 1000 || 0,
        attached: Number(attached) > 0,
      };
      if (dead === '1' && status && /^\d+$/.test(status)) snap.exitCode = Number(status);
      else if (dead === '1' && !signal) settled = false;
      out.push(snap);
    }
    return {
      sessions: out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      settled,
    };
  }

  async getLastActivity(name: string): Promise<number> {
    validateSessionName(name);
    return Number(await this.display(name, '#{session_activity}')) * 1000 || 0;
  }

  async clearScrollback(name: string): Promise<void> {
    validateSessionName(name);
    await this.tmux(['clear-history', '-t', `=${name}:`]);
  }

  async copyTo(name: string, src: string, relDst: string): Promise<void> {
    validateSessionName(name);
    const dir = await this.display(name, '#{session_path}');
    if (!dir) return;
    await copyInto(dir, src, relDst);
  }

  async sendKeys(name: string, keys: readonly string[]): Promise<void> {
    validateSessionName(name);
    validateKeys(keys);
    if (keys.length === 0) return;
    await this.tmux(['send-keys', '-t', `=${name}:`, '--', ...keys.map(tmuxArg)]);
  }

  /** Stop every session of this city's tmux server and the server itself. */
  async killServer(): Promise<void> {
    const sessions = await this.snapshot('');
    await Promise.all(sessions.map((s) => this.stop(s.name)));
    await this.tmux(['kill-server']);
    await this.removeSocket();
  }

  /**
   * tmux leaves its socket file behind when its server ends (killed, or the
   * last session gone); a city with no sessions should not leave litter in
   * the tmux directory.
   */
  private async removeSocket(): Promise<void> {
    const uid = process.getuid?.() ?? 0;
    const socketDir = path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${uid}`);
    await rm(path.join(socketDir, this.socket), { force: true });
  }

  async close(): Promise<void> {
    // Each call is its own tmux client; nothing is held open. With no
    // session left (the city stopped them all), the server is gone or
    // idle: end it and remove its socket. Live sessions are left alone
    // for the next server to adopt.
    if ((await this.snapshot('').catch(() => [{}])).length === 0) {
      await this.tmux(['kill-server']).catch(() => undefined);
      await this.removeSocket();
    }
  }
}
