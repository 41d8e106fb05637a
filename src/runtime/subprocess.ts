/**
 * Subprocess provider: each session is a detached process group (its own
 * session id) running `sh -c <command>`, with no terminal.
 *
 * State lives in files, so a restarted city server adopts running sessions:
 *   <stateDir>/sessions/<name>/state.json  pid, process start time, work dir
 *   <stateDir>/sessions/<name>/stdin       FIFO the session reads (nudges)
 *   <stateDir>/sessions/<name>/exit        exit status, once it exited
 *   <stateDir>/sessions/<name>/meta/<KEY>  one file per meta key
 *   <stateDir>/logs/<name>.log             stdout+stderr; survives stop
 *
 * The session opens its FIFO read-write, so it never sees end-of-file and a
 * nudge can be written by any process at any time. `snapshot` reads these
 * files and the process table; it starts no subprocess at all.
 */
import { constants, readFileSync } from 'node:fs';
import {
  mkdir,
  open,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError, UnsupportedError, killPoint, mapLimit, runFile } from '../core/index.js';
import { SessionExistsError } from './errors.js';
import { keyBytes } from './keys.js';
import { tailLines } from './log-file.js';
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
import { shellQuote } from './presets.js';
import { launch, launchMode, type LaunchMode } from './subprocess-launch.js';
import {
  awaitReady,
  checkCommand,
  copyInto,
  prepareWorkDir,
  repeatedNames,
  runPreStart,
  runSessionSetup,
} from './startup.js';
import {
  validateKeys,
  validateMetaKey,
  validateNudgeText,
  validatePrefix,
  validateSessionName,
} from './validate.js';

export interface SubprocessProviderOptions {
  /** Directory for session state and logs (the city's `.gc/sessions`). */
  stateDir: string;
  /** SIGTERM-to-SIGKILL grace period of `stop`. Default 5 s. */
  stopGraceMs?: number;
  /** Default start deadline when the caller gives none. Default 60 s. */
  startTimeoutMs?: number;
  /** How sessions are launched (see subprocess-launch.ts). Default: detected. */
  launchMode?: LaunchMode;
}

interface SessionState {
  pid: number;
  /** Kernel start time of `pid` (Linux), to tell it from a reused pid. */
  proc_start: string;
  work_dir: string;
  started_at: number;
}

/** Most sessions, and most argv bytes, per launcher shell (commands can be long). */
const LAUNCH_CHUNK = 100;
const LAUNCH_BYTES = 256 * 1024;
/** Sessions prepared (and set up after launch) at once in a wave. */
const PREPARE_CONCURRENCY = 8;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process with this pid exists (where there is no procfs to ask). */
function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function procStart(pid: number): Promise<string> {
  if (process.platform !== 'linux') return '';
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

export class SubprocessProvider implements Provider {
  readonly name = 'subprocess';
  readonly capabilities: ProviderCapabilities = {
    reportsActivity: true,
    reportsAttachment: false,
    canAttach: false,
    runsProcesses: true,
  };
  private readonly sessionsDir: string;
  private readonly logsDir: string;
  private readonly graceMs: number;
  private readonly startTimeoutMs: number;
  private readonly launchMode: LaunchMode | undefined;

  constructor(options: SubprocessProviderOptions) {
    this.sessionsDir = path.join(options.stateDir, 'sessions');
    this.logsDir = path.join(options.stateDir, 'logs');
    this.graceMs = options.stopGraceMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    this.launchMode = options.launchMode;
  }

  private dir(name: string): string {
    return path.join(this.sessionsDir, name);
  }

  private logFile(name: string): string {
    return path.join(this.logsDir, `${name}.log`);
  }

  /**
   * A session's state file. Parsed once per version of the file: a tick
   * over a thousand sessions then costs one stat each, not a read and a
   * parse (the file is written once per start, atomically).
   */
  private async state(name: string): Promise<SessionState | undefined> {
    const file = path.join(this.dir(name), 'state.json');
    try {
      const s = await stat(file);
      const known = this.states.get(name);
      if (known && known.mtimeMs === s.mtimeMs && known.ino === s.ino) return known.st;
      const st = JSON.parse(await readFile(file, 'utf8')) as SessionState;
      this.states.set(name, { st, mtimeMs: s.mtimeMs, ino: s.ino });
      return st;
    } catch {
      this.states.delete(name);
      return undefined;
    }
  }

  private readonly states = new Map<string, { st: SessionState; mtimeMs: number; ino: number }>();

  /** The session's process runs (not a zombie) and is the one it started (not a reused pid). */
  private alive(st: SessionState | undefined): boolean {
    if (!st) return false;
    if (process.platform !== 'linux') return pidRuns(st.pid);
    let text: string;
    try {
      // procfs answers from memory: one synchronous read beats four thread-pool hops.
      text = readFileSync(`/proc/${st.pid}/stat`, 'utf8');
    } catch {
      return false;
    }
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z' || f[0] === 'X') return false;
    return st.proc_start === '' || f[19] === st.proc_start;
  }

  async start(name: string, config: StartConfig, options: StartOptions = {}): Promise<void> {
    const [err] = await this.startMany([{ name, config, options }]);
    if (err) throw err;
  }

  /**
   * A wave of starts: each session prepared (checks, work dir, pre_start,
   * its directory and env file), then launched by one small shell per
   * LAUNCH_CHUNK sessions (the shell forks the sessions, not this process),
   * then set up and awaited, then given its meta.
   */
  async startMany(
    requests: readonly StartRequest[],
    onEach?: StartedEach,
  ): Promise<(Error | undefined)[]> {
    const out: (Error | undefined)[] = requests.map(() => undefined);
    const fail = (i: number, e: unknown) =>
      (out[i] = e instanceof Error ? e : new Error(String(e)));
    const deadlines = requests.map((r) => r.options?.deadline ?? Date.now() + this.startTimeoutMs);
    await mkdir(this.sessionsDir, { recursive: true });
    await mkdir(this.logsDir, { recursive: true });
    const envFiles: string[] = [];
    const checks = new Map<string, Promise<void>>();
    for (const i of repeatedNames(requests)) fail(i, new SessionExistsError(requests[i]!.name));
    await mapLimit(requests, PREPARE_CONCURRENCY, async (r, i) => {
      if (out[i]) return;
      try {
        envFiles[i] = await this.prepare(r, checks);
      } catch (e) {
        fail(i, e);
      }
    });
    const parts: number[][] = [];
    let bytes = 0;
    for (const [i, r] of requests.entries()) {
      if (out[i]) continue;
      const size = Buffer.byteLength(r.config.command ?? '') + 1024;
      const last = parts.at(-1);
      if (!last || last.length >= LAUNCH_CHUNK || bytes + size > LAUNCH_BYTES) {
        parts.push([i]);
        bytes = size;
      } else {
        last.push(i);
        bytes += size;
      }
    }
    for (const part of parts) {
      try {
        await this.launch(part.map((i) => ({ ...requests[i]!, envFile: envFiles[i]! })));
      } catch (e) {
        for (const i of part) fail(i, e);
      }
    }
    await mapLimit(requests, PREPARE_CONCURRENCY, async (r, i) => {
      if (out[i]) return;
      try {
        await runSessionSetup(r.config);
        await awaitReady(this, r.name, r.config, deadlines[i]!);
        // Meta last: a session with it has finished its start (see StartRequest).
        killPoint('session.started');
        for (const [k, v] of Object.entries(r.meta ?? {})) await this.setMeta(r.name, k, v);
        onEach?.(i, undefined);
      } catch (e) {
        fail(i, e);
      }
    });
    // What failed after its directory was made is stopped (removed) again,
    // and only then reported: a retry must not meet the cleanup.
    await mapLimit(requests, PREPARE_CONCURRENCY, async (r, i) => {
      if (out[i] && !(out[i] instanceof SessionExistsError) && envFiles[i]) {
        await this.stop(r.name).catch(() => undefined);
      }
    });
    for (const [i, err] of out.entries()) if (err) onEach?.(i, err);
    return out;
  }

  /**
   * A session's directory (claimed: a live one is SessionExistsError), env
   * file and pre_start. Within a wave, one command lookup per distinct
   * command, PATH and work dir (`checks`).
   */
  private async prepare(r: StartRequest, checks: Map<string, Promise<void>>): Promise<string> {
    const { name, config } = r;
    validateSessionName(name);
    const key = JSON.stringify([config.command, config.env?.PATH, config.work_dir]);
    if (!checks.has(key)) checks.set(key, checkCommand(config));
    await checks.get(key);
    await prepareWorkDir(config);
    const dir = this.dir(name);
    try {
      await mkdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await this.state(name);
      // A session dir without state is a start in progress elsewhere.
      if (!st || this.alive(st)) throw new SessionExistsError(name);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
    }
    try {
      await mkdir(path.join(dir, 'meta'));
      await runPreStart(config);
      // The session's environment (its token among it) goes through a 0600
      // file it reads and empties, never through an argv.
      const envFile = path.join(dir, 'env');
      await writeFile(
        envFile,
        Object.entries(config.env ?? {})
          .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
          .join(''),
        { mode: 0o600, flag: 'wx' },
      );
      return envFile;
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Launch prepared sessions with one shell: for each, its FIFO, then the
   * session in its own session id (setsid) with the FIFO as stdin and its
   * log as stdout and stderr; the shell prints each pid. Then each
   * session's state file.
   */
  private async launch(part: (StartRequest & { envFile: string })[]): Promise<void> {
    // Every FIFO of the part with one mkfifo; one it could not make fails its session alone.
    await runFile('mkfifo', [
      '-m',
      '600',
      ...part.map((r) => path.join(this.dir(r.name), 'stdin')),
    ]);
    const pids = await launch(
      part.map((r) => ({
        dir: this.dir(r.name),
        workDir: r.config.work_dir ?? process.cwd(),
        log: this.logFile(r.name),
        command: r.config.command?.trim() || 'exec /bin/sh',
        envFile: r.envFile,
      })),
      await (this.launchMode ?? launchMode()),
    );
    await mapLimit(part, PREPARE_CONCURRENCY, async (r, i) => {
      const pid = pids[i]!;
      if (pid instanceof Error) throw new Error(`starting session ${r.name}: ${pid.message}`);
      const st: SessionState = {
        pid,
        proc_start: await procStart(pid),
        work_dir: r.config.work_dir ?? process.cwd(),
        started_at: Date.now(),
      };
      await writeAtomic(path.join(this.dir(r.name), 'state.json'), JSON.stringify(st));
    });
  }

  async stop(name: string): Promise<void> {
    validateSessionName(name);
    const st = await this.state(name);
    if (st && this.alive(st)) await killTree(st.pid, this.graceMs);
    await rm(this.dir(name), { recursive: true, force: true });
  }

  /** No subprocess per session here: every stop at once, sharing the reaper's scans. */
  async stopMany(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((n) => this.stop(n)));
  }

  async interrupt(name: string): Promise<void> {
    validateSessionName(name);
    const st = await this.state(name);
    if (!st || !this.alive(st)) return;
    try {
      process.kill(-st.pid, 'SIGINT');
    } catch {
      // exited meanwhile
    }
  }

  async isRunning(name: string): Promise<boolean> {
    validateSessionName(name);
    return this.alive(await this.state(name));
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async isAttached(name: string): Promise<boolean> {
    validateSessionName(name);
    return false;
  }

  attach(name: string): Promise<void> {
    validateSessionName(name);
    // Whether or not the session exists, this provider cannot attach: say so first.
    return Promise.reject(
      new UnsupportedError('the subprocess provider cannot attach: its sessions have no terminal', {
        fix: `follow the output with gc session logs -f ${name} (or gc session peek ${name}); attach needs [session] provider = "tmux"`,
      }),
    );
  }

  async processAlive(name: string, names: readonly string[]): Promise<boolean> {
    validateSessionName(name);
    if (names.length === 0) return true;
    const st = await this.state(name);
    if (!st || !this.alive(st)) return false;
    return treeHasName(st.pid, names);
  }

  async nudge(name: string, text: string): Promise<void> {
    validateSessionName(name);
    const clean = validateNudgeText(text);
    await this.writeStdin(name, clean + '\n');
  }

  /** Write to the session's FIFO; a missing or dead session is a no-op. */
  private async writeStdin(name: string, text: string): Promise<void> {
    if (!(await this.isRunning(name))) return;
    let fh;
    try {
      fh = await open(
        path.join(this.dir(name), 'stdin'),
        constants.O_WRONLY | constants.O_NONBLOCK,
      );
    } catch {
      return; // no reader: the session is gone
    }
    try {
      let buf = Buffer.from(text);
      const until = Date.now() + 10_000;
      while (buf.length) {
        try {
          const { bytesWritten } = await fh.write(buf);
          buf = buf.subarray(bytesWritten);
        } catch (e) {
          // A full pipe: the session is not reading. Wait a little, then give up.
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > until) throw e;
          await sleep(20);
        }
      }
    } finally {
      await fh.close();
    }
  }

  async setMeta(name: string, key: string, value: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    if (!(await this.state(name))) throw new NotFoundError('session', name);
    await writeAtomic(path.join(this.dir(name), 'meta', key), value);
  }

  async getMeta(name: string, key: string): Promise<string> {
    validateSessionName(name);
    validateMetaKey(key);
    return readFile(path.join(this.dir(name), 'meta', key), 'utf8').catch(() => '');
  }

  async removeMeta(name: string, key: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await rm(path.join(this.dir(name), 'meta', key), { force: true });
  }

  async peek(name: string, lines: number): Promise<string> {
    validateSessionName(name);
    return tailLines(this.logFile(name), lines);
  }

  async listRunning(prefix: string): Promise<string[]> {
    return (await this.snapshot(prefix)).filter((s) => s.alive).map((s) => s.name);
  }

  async snapshot(prefix: string): Promise<SessionSnapshot[]> {
    validatePrefix(prefix);
    let names: string[];
    try {
      names = (await readdir(this.sessionsDir)).filter((n) => n.startsWith(prefix)).sort();
    } catch {
      return [];
    }
    const out = await Promise.all(
      names.map(async (name): Promise<SessionSnapshot | undefined> => {
        const st = await this.state(name);
        if (!st) return undefined; // being started or stopped right now
        const alive = this.alive(st);
        const mtime = await stat(this.logFile(name)).then(
          (s) => s.mtimeMs,
          () => 0,
        );
        const snap: SessionSnapshot = {
          name,
          alive,
          lastActivity: Math.floor(mtime),
          attached: false,
        };
        if (!alive) {
          const code = await readFile(path.join(this.dir(name), 'exit'), 'utf8').catch(() => '');
          if (/^\d+$/.test(code)) snap.exitCode = Number(code);
        }
        return snap;
      }),
    );
    return out.filter((s): s is SessionSnapshot => s !== undefined);
  }

  async getLastActivity(name: string): Promise<number> {
    validateSessionName(name);
    if (!(await this.state(name))) return 0;
    return stat(this.logFile(name)).then(
      (s) => Math.floor(s.mtimeMs),
      () => 0,
    );
  }

  async clearScrollback(name: string): Promise<void> {
    validateSessionName(name);
    if (!(await this.state(name))) return;
    await truncate(this.logFile(name), 0).catch(() => undefined);
  }

  async copyTo(name: string, src: string, relDst: string): Promise<void> {
    validateSessionName(name);
    const st = await this.state(name);
    if (!st) return;
    await copyInto(st.work_dir, src, relDst);
  }

  async sendKeys(name: string, keys: readonly string[]): Promise<void> {
    validateSessionName(name);
    validateKeys(keys);
    for (const key of keys) {
      const k = keyBytes(key);
      if ('interrupt' in k) await this.interrupt(name);
      else await this.writeStdin(name, k.bytes);
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

async function writeAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, file);
}
