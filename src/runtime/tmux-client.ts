/**
 * Running tmux on a city's own server (`tmux -L <socket> -f /dev/null`):
 * one process per call, each with a time limit, never a shell. The tmux
 * provider's calls all go through here, batched ones too.
 */
import { runFile, type RunFileResult } from '../core/index.js';
import { ProviderUnavailableError } from './errors.js';
import { CONTROL_SESSION, TmuxControl } from './tmux-control.js';

/** Time limit of one tmux call; a wedged server must not wedge the city. */
const TMUX_CALL_TIMEOUT_MS = 30_000;
/** Most sessions per tmux call in a command sequence (startMany, stopMany, interruptMany). */
const CHAIN = 100;
/**
 * Most argv bytes per tmux call: the client hands its whole command line to
 * the server in one message of at most 16 KiB ("command too long" past it).
 */
const SEQUENCE_BYTES = 12_000;

/** One tmux call's share of a batch: its items and its argv. */
export interface Sequence<T> {
  items: T[];
  args: string[];
}

/**
 * Pack one command (or a few, `;`-separated) per item into command
 * sequences: each at most CHAIN items and SEQUENCE_BYTES of argv, after
 * `prefix` (commands run first in every sequence). An item too big for a
 * sequence of its own still gets one (tmux then says why it fails).
 */
export function sequences<T>(
  items: readonly T[],
  commands: (item: T) => readonly string[],
  prefix: readonly string[] = [],
): Sequence<T>[] {
  const bytes = (args: readonly string[]) => args.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
  const base = bytes(prefix);
  const out: Sequence<T>[] = [];
  let cur: Sequence<T> | undefined;
  let size = 0;
  for (const item of items) {
    const cmd = commands(item);
    const more = bytes(cmd) + 2;
    if (!cur || cur.items.length >= CHAIN || size + more > SEQUENCE_BYTES) {
      cur = { items: [], args: [...prefix] };
      out.push(cur);
      size = base;
    }
    if (cur.args.length) cur.args.push(';');
    cur.args.push(...cmd);
    cur.items.push(item);
    size += more;
  }
  return out;
}
export const GONE =
  /no server running|error connecting to|can't find (session|pane|window)|no such (session|file)/i;

export class TmuxClient {
  /** Number of tmux processes spawned, for benchmarks and tests. */
  subprocesses = 0;
  private versionChecked: Promise<void> | undefined;
  private readonly control: TmuxControl;
  private controlUp = false;

  constructor(
    readonly socket: string,
    readonly bin: string,
  ) {
    this.control = new TmuxControl([bin, '-L', socket, '-f', '/dev/null'], async () => {
      // A hidden session for the control client; "duplicate session" is fine.
      await this.run([
        'new-session',
        '-d',
        '-s',
        CONTROL_SESSION,
        '-x',
        '10',
        '-y',
        '5',
        'exec sleep 2147483647',
      ]);
    });
  }

  /**
   * A call made every tick (the listing): over the control client once it
   * is up. It is brought up only once a plain call found the server
   * running with sessions: a city without sessions starts no tmux server.
   */
  async query(args: readonly string[]): Promise<RunFileResult> {
    const a = this.controlUp ? await this.control.run(args) : undefined;
    if (a) {
      const text = a.lines.map((l) => `${l}\n`).join('');
      return {
        code: a.ok ? 0 : 1,
        signal: null,
        stdout: a.ok ? text : '',
        stderr: a.ok ? '' : text,
        timedOut: false,
        truncated: false,
      };
    }
    const r = await this.run(args);
    this.controlUp = r.code === 0 && r.stdout.trim() !== '';
    return r;
  }

  /**
   * Only the control session is left: end the client and its session, so
   * the tmux server of a city without sessions exits as it would without it.
   */
  async dropControl(): Promise<void> {
    this.controlUp = false;
    this.control.reset();
    await this.run(['kill-session', '-t', `=${CONTROL_SESSION}`]);
  }

  /** End the control client (sessions and the tmux server are left alone). */
  closeControl(): void {
    this.controlUp = false;
    this.control.close();
  }

  /** Run tmux on the city's server. Never throws for tmux's own errors. */
  async run(
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

  checkVersion(): Promise<void> {
    this.versionChecked ??= (async () => {
      const r = await this.run(['-V']);
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

  /** One format string for one session; "" when the session is absent. */
  async display(name: string, format: string): Promise<string> {
    const r = await this.run(['display-message', '-p', '-t', `=${name}:`, format]);
    return r.code === 0 ? r.stdout.replace(/\n$/, '') : '';
  }

  /** Pane pids of the named sessions that exist (one tmux call). */
  async panePids(names: readonly string[]): Promise<Map<string, number>> {
    const wanted = new Set(names);
    const r = await this.run(['list-panes', '-a', '-F', '#{session_name}\t#{pane_pid}']);
    const out = new Map<string, number>();
    if (r.code !== 0) return out;
    for (const line of r.stdout.split('\n')) {
      const [name, pid] = line.split('\t');
      if (name && wanted.has(name)) out.set(name, Number(pid));
    }
    return out;
  }

  /**
   * One tmux command per session, sent as command sequences (see
   * `sequences`). tmux stops a sequence at its first failing command (a
   * session that went away meanwhile): those left are sent again.
   */
  async chain(names: readonly string[], cmd: (name: string) => string[]): Promise<void> {
    let left = [...names];
    for (let round = 0; left.length && round < 3; round++) {
      for (const seq of sequences(left, cmd)) await this.run(seq.args);
      const still = await this.panePids(left);
      left = left.filter((n) => still.has(n));
    }
  }
}
