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
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  GcError,
  NotFoundError,
  SerialBatcher,
  killPoint,
  mapLimit,
  startProcess,
} from '../core/index.js';
import { ProviderUnavailableError, SessionExistsError } from './errors.js';
import { tailLines } from './log-file.js';
import { nudgeMany, nudgeOne } from './tmux-nudge.js';
import { killTree, treeHasName } from './proc.js';
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
  PRELUDE,
  createCommands,
  envDir,
  metaCommands,
  tmuxArg,
  writeEnvFile,
} from './tmux-args.js';
import { GONE, TmuxClient, sequences } from './tmux-client.js';
import { CONTROL_SESSION } from './tmux-control.js';
import {
  awaitReady,
  checkCommand,
  copyInto,
  prepareWorkDir,
  repeatedNames,
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

/** Sessions prepared (and set up after creation) at once in a wave. */
const PREPARE_CONCURRENCY = 8;

/** Sessions per slice of a wave: one slice is prepared while the last is created. */
const SLICE = 50;

/** How long a snapshot waits for tmux to learn a dead pane's exit status. */
const SETTLE_MS = 5000;

/** What the sessions of one startMany share. */
interface Wave {
  /** Command lookups by [command, PATH, work dir]. */
  checks: Map<string, Promise<void>>;
  envDir: Promise<string>;
}

/** A session ready for its tmux call. */
interface Prepared {
  name: string;
  envFile: string;
  /** The commands that create it (see createCommands). */
  commands: string[];
  /** The tmux client's environment, when the session wants its own PATH. */
  clientEnv: NodeJS.ProcessEnv | undefined;
}
/** The socket name for a city: readable, and unique per city directory. */
export function tmuxSocketFor(cityRoot: string): string {
  const base = path
    .basename(path.resolve(cityRoot))
    .replace(/[^A-Za-z0-9_-]/g, '')
    .slice(0, 24);
  const hash = createHash('sha256').update(path.resolve(cityRoot)).digest('hex').slice(0, 8);
  return `gc-${base || 'city'}-${hash}`;
}

export class TmuxProvider implements Provider {
  readonly name = 'tmux';
  readonly capabilities: ProviderCapabilities = {
    reportsActivity: true,
    reportsAttachment: true,
    canAttach: true,
    runsProcesses: true,
  };
  readonly socket: string;
  private readonly client: TmuxClient;
  private readonly logsDir: string;
  private readonly stateDir: string;
  private readonly graceMs: number;
  private readonly startTimeoutMs: number;

  constructor(options: TmuxProviderOptions) {
    this.socket = options.socket;
    this.client = new TmuxClient(this.socket, options.tmux ?? 'tmux');
    this.logsDir = path.join(options.stateDir, 'logs');
    this.stateDir = options.stateDir;
    this.graceMs = options.stopGraceMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    validateSessionName(this.socket, 'tmux socket');
  }

  /** Number of tmux processes spawned, for benchmarks and tests. */
  get subprocesses(): number {
    return this.client.subprocesses;
  }

  private logFile(name: string): string {
    return path.join(this.logsDir, `${name}.log`);
  }

  async start(name: string, config: StartConfig, options: StartOptions = {}): Promise<void> {
    validateSessionName(name);
    const deadline = options.deadline ?? Date.now() + this.startTimeoutMs;
    await this.client.checkVersion();
    await this.create(await this.prepare({ name, config }));
    await this.settle(name, config, deadline);
  }

  /**
   * A wave of starts: each session prepared as `start` prepares it, then
   * created by command sequences (new-session and pipe-pane for each, many
   * sessions per tmux call), then set up and awaited as `start`
   * does. A session that already exists, or that a sequence did not reach
   * (tmux ends a sequence at its first failing command), is created alone.
   */
  async startMany(
    requests: readonly StartRequest[],
    onEach?: StartedEach,
  ): Promise<(Error | undefined)[]> {
    const out: (Error | undefined)[] = requests.map(() => undefined);
    const fail = (i: number, e: unknown) =>
      (out[i] = e instanceof Error ? e : new Error(String(e)));
    try {
      for (const r of requests) validateSessionName(r.name);
      await this.client.checkVersion();
    } catch (e) {
      return requests.map(() => (e instanceof Error ? e : new Error(String(e))));
    }
    const deadlines = requests.map((r) => r.options?.deadline ?? Date.now() + this.startTimeoutMs);
    const existing = await this.client.panePids(requests.map((r) => r.name));
    const wave: Wave = { checks: new Map(), envDir: envDir(this.stateDir) };
    const prepared: (Prepared | undefined)[] = [];
    for (const i of repeatedNames(requests)) fail(i, new SessionExistsError(requests[i]!.name));
    const prepareSlice = (slice: readonly number[]) =>
      mapLimit(slice, PREPARE_CONCURRENCY, async (i) => {
        if (out[i]) return;
        try {
          prepared[i] = await this.prepare(requests[i]!, wave);
        } catch (e) {
          fail(i, e);
        }
      });
    const alone: number[] = [];
    const createSlice = async (slice: readonly number[]) => {
      // Sessions share a client only when they want the same PATH (see create).
      const byPath = new Map<string, number[]>();
      for (const i of slice) {
        if (!prepared[i]) continue;
        if (existing.has(requests[i]!.name)) alone.push(i);
        else {
          const key = requests[i]!.config.env?.PATH ?? '';
          byPath.set(key, [...(byPath.get(key) ?? []), i]);
        }
      }
      for (const group of byPath.values()) {
        for (const seq of sequences(group, (i) => prepared[i]!.commands, PRELUDE)) {
          const r = await this.client.run(seq.args, undefined, prepared[seq.items[0]!]!.clientEnv);
          if (r.code === 0) continue; // every command of the sequence ran
          const made = await this.client.panePids(seq.items.map((i) => prepared[i]!.name));
          alone.push(...seq.items.filter((i) => !made.has(prepared[i]!.name)));
        }
      }
    };
    // Preparing the next slice (files, here) overlaps creating this one (forks, in tmux).
    const slices: number[][] = [];
    for (let k = 0; k < requests.length; k += SLICE) {
      slices.push(requests.slice(k, k + SLICE).map((_, j) => k + j));
    }
    let next = prepareSlice(slices[0] ?? []);
    for (const [k, slice] of slices.entries()) {
      await next;
      next = prepareSlice(slices[k + 1] ?? []);
      await createSlice(slice);
    }
    await next;
    await mapLimit(alone, PREPARE_CONCURRENCY, async (i) => {
      try {
        await this.create(prepared[i]!);
      } catch (e) {
        fail(i, e);
      }
    });
    // Meta last: a session with it has finished its start (see StartRequest).
    // Sessions ready together get theirs in one sequence; one ready early
    // does not wait for the rest of the wave.
    const withMeta = new SerialBatcher<number>(async (ready) => {
      try {
        const metaOf = (i: number) => metaCommands(requests[i]!.name, requests[i]!.meta!);
        for (const seq of sequences(ready, metaOf)) await this.client.run(seq.args);
        // A session that vanished meanwhile misses its meta: that is its error.
        const have = await this.client.panePids(ready.map((i) => requests[i]!.name));
        for (const i of ready) {
          if (have.has(requests[i]!.name)) onEach?.(i, undefined);
          else fail(i, new NotFoundError('session', requests[i]!.name));
        }
      } catch (e) {
        for (const i of ready) fail(i, e);
      }
    });
    await mapLimit(requests, PREPARE_CONCURRENCY, async (r, i) => {
      if (out[i]) return;
      try {
        await this.settle(r.name, r.config, deadlines[i]!);
        killPoint('session.started');
        if (Object.keys(r.meta ?? {}).length) withMeta.add(i);
        else onEach?.(i, undefined);
      } catch (e) {
        fail(i, e);
      }
    });
    await withMeta.idle();
    for (const [i, err] of out.entries()) if (err) onEach?.(i, err);
    return out;
  }

  /**
   * Everything before a session's tmux call: checks, hooks, its log and env
   * file. Within a wave, one command lookup per distinct command, PATH and
   * work dir, and one env directory.
   */
  private async prepare(r: StartRequest, wave?: Wave): Promise<Prepared> {
    const { name, config } = r;
    if (wave) {
      const key = JSON.stringify([config.command, config.env?.PATH, config.work_dir]);
      if (!wave.checks.has(key)) wave.checks.set(key, checkCommand(config));
      await wave.checks.get(key);
    } else {
      await checkCommand(config);
    }
    await prepareWorkDir(config);
    await runPreStart(config);
    await mkdir(this.logsDir, { recursive: true });
    await writeFile(this.logFile(name), '');
    const dir = await (wave?.envDir ?? envDir(this.stateDir));
    const envFile = await writeEnvFile(dir, name, config.env ?? {});
    return {
      name,
      envFile,
      commands: createCommands(name, config, envFile, this.logFile(name)),
      // tmux gives a new session the PATH of the client that creates it, not
      // the one passed with -e: so the client runs with the session's PATH.
      clientEnv: config.env?.PATH ? { ...process.env, PATH: config.env.PATH } : undefined,
    };
  }

  /** Create one prepared session; a dead session under its name is replaced. */
  private async create(p: Prepared): Promise<void> {
    const args = [...PRELUDE, ';', ...p.commands];
    let r = await this.client.run(args, undefined, p.clientEnv);
    if (r.code !== 0 && /duplicate session/.test(r.stderr)) {
      if ((await this.client.display(p.name, '#{pane_dead}')) !== '1') {
        await rm(p.envFile, { force: true });
        throw new SessionExistsError(p.name);
      }
      await this.client.run(['kill-session', '-t', `=${p.name}`]);
      r = await this.client.run(args, undefined, p.clientEnv);
      if (r.code !== 0 && /duplicate session/.test(r.stderr)) {
        await rm(p.envFile, { force: true });
        throw new SessionExistsError(p.name);
      }
    }
    if (r.code !== 0) {
      await rm(p.envFile, { force: true });
      throw new GcError('unavailable', `tmux new-session ${p.name}: ${r.stderr.trim()}`, {
        details: { session: p.name },
      });
    }
  }

  /** After creation: session_setup hooks, readiness, the first nudge. */
  private async settle(name: string, config: StartConfig, deadline: number): Promise<void> {
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

  async stop(name: string): Promise<void> {
    validateSessionName(name);
    const pid = Number(await this.client.display(name, '#{pane_pid}'));
    await this.client.run(['kill-session', '-t', `=${name}`]);
    // tmux sent SIGHUP; anything that ignored it is stopped here.
    if (pid > 0) await killTree(pid, this.graceMs);
  }

  async interrupt(name: string): Promise<void> {
    validateSessionName(name);
    await this.client.run(['send-keys', '-t', `=${name}:`, 'C-c']);
  }

  async stopMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    const pids = await this.client.panePids(names);
    const live = [...pids.keys()];
    await this.client.chain(live, (n) => ['kill-session', '-t', `=${n}`]);
    // tmux sent SIGHUP to every pane; what ignored it goes here, all in one grace window.
    await Promise.all(
      [...pids.values()].filter((p) => p > 0).map((p) => killTree(p, this.graceMs)),
    );
  }

  async interruptMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    const live = [...(await this.client.panePids(names)).keys()];
    // A failed send-keys (session gone) ends a sequence: chain() sends the rest again,
    // so only sessions still present get one more C-c; harmless for an interrupt.
    for (const seq of sequences(live, (n) => ['send-keys', '-t', `=${n}:`, 'C-c'])) {
      await this.client.run(seq.args);
    }
  }

  async isRunning(name: string): Promise<boolean> {
    validateSessionName(name);
    return (await this.client.display(name, '#{pane_dead}')) === '0';
  }

  async isAttached(name: string): Promise<boolean> {
    validateSessionName(name);
    return Number((await this.client.display(name, '#{session_attached}')) || '0') > 0;
  }

  async attach(name: string): Promise<void> {
    validateSessionName(name);
    if ((await this.client.display(name, '#{session_name}')) !== name) {
      throw new NotFoundError('session', name);
    }
    const p = startProcess(
      this.client.bin,
      ['-L', this.socket, '-f', '/dev/null', 'attach-session', '-t', `=${name}`],
      { stdio: 'inherit' },
    );
    const exit = await p.exited;
    if (exit.error) throw exit.error;
  }

  async processAlive(name: string, names: readonly string[]): Promise<boolean> {
    validateSessionName(name);
    if (names.length === 0) return true;
    const [dead, pid] = (await this.client.display(name, '#{pane_dead} #{pane_pid}')).split(' ');
    if (dead !== '0' || !pid) return false;
    return treeHasName(Number(pid), names);
  }

  async nudge(name: string, text: string): Promise<void> {
    validateSessionName(name);
    await nudgeOne(this.client, name, validateNudgeText(text));
  }

  async nudgeMany(names: readonly string[], text: string): Promise<void> {
    for (const n of names) validateSessionName(n);
    await nudgeMany(this.client, names, validateNudgeText(text));
  }

  async setMeta(name: string, key: string, value: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    const r = await this.client.run(['set-environment', '-t', `=${name}`, key, tmuxArg(value)]);
    if (r.code !== 0) {
      if (GONE.test(r.stderr)) throw new NotFoundError('session', name);
      throw new GcError('unavailable', `tmux set-environment: ${r.stderr.trim()}`);
    }
  }

  async getMeta(name: string, key: string): Promise<string> {
    validateSessionName(name);
    validateMetaKey(key);
    const r = await this.client.run(['show-environment', '-t', `=${name}`, key]);
    if (r.code !== 0) return '';
    const line = r.stdout.replace(/\n$/, '');
    return line.startsWith(`${key}=`) ? line.slice(key.length + 1) : '';
  }

  async removeMeta(name: string, key: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.client.run(['set-environment', '-t', `=${name}`, '-u', key]);
  }

  async peek(name: string, lines: number): Promise<string> {
    validateSessionName(name);
    const r = await this.client.run([
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
    // status when it reaps the process, a moment later (longer on a loaded
    // machine): a pane dead with neither status nor signal yet is asked
    // about again, for up to five seconds (tmux handles SIGCHLD in its own
    // event loop, which a busy machine can hold up for over a second).
    const deadline = Date.now() + SETTLE_MS;
    for (let attempt = 0; ; attempt++) {
      const snap = await this.snapshotOnce(prefix);
      if (snap.settled || Date.now() >= deadline) return snap.sessions;
      await new Promise((r) => setTimeout(r, Math.min(200, 10 * 2 ** attempt)));
    }
  }

  private async snapshotOnce(
    prefix: string,
  ): Promise<{ sessions: SessionSnapshot[]; settled: boolean }> {
    const r = await this.client.query([
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
    const lines = r.stdout.split('\n').filter(Boolean);
    if (lines.length === 1 && lines[0]!.startsWith(`${CONTROL_SESSION}\t`)) {
      await this.client.dropControl();
      return { sessions: [], settled: true };
    }
    for (const line of lines) {
      const [name, dead, activity, attached, status, signal] = line.split('\t');
      if (!name || !name.startsWith(prefix) || name === CONTROL_SESSION) continue;
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
    return Number(await this.client.display(name, '#{session_activity}')) * 1000 || 0;
  }

  async clearScrollback(name: string): Promise<void> {
    validateSessionName(name);
    await this.client.run(['clear-history', '-t', `=${name}:`]);
  }

  async copyTo(name: string, src: string, relDst: string): Promise<void> {
    validateSessionName(name);
    const dir = await this.client.display(name, '#{session_path}');
    if (!dir) return;
    await copyInto(dir, src, relDst);
  }

  async sendKeys(name: string, keys: readonly string[]): Promise<void> {
    validateSessionName(name);
    validateKeys(keys);
    if (keys.length === 0) return;
    await this.client.run(['send-keys', '-t', `=${name}:`, '--', ...keys.map(tmuxArg)]);
  }

  /** Stop every session of this city's tmux server and the server itself. */
  async killServer(): Promise<void> {
    const sessions = await this.snapshot('');
    await Promise.all(sessions.map((s) => this.stop(s.name)));
    this.client.closeControl();
    await this.client.run(['kill-server']);
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
    // Only the control client is held open. With no session left (the
    // city stopped them all), the server is gone or idle: end it and
    // remove its socket. Live sessions are left alone for the next server
    // to adopt (the control session too, for the next control client).
    const left = await this.snapshot('').catch(() => [{}]);
    this.client.closeControl();
    if (left.length === 0) {
      await this.client.run(['kill-server']).catch(() => undefined);
      await this.removeSocket();
    }
  }
}
