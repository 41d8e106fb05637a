/**
 * One long-lived tmux control-mode client per city, for the calls made
 * every tick. A new tmux client costs the tmux server work in proportion
 * to its sessions (about 35 ms a call at 1,000 sessions, 3 ms at one), so
 * the per-tick listing goes through one client that stays connected.
 *
 * The client is attached to a small hidden session of its own
 * (CONTROL_SESSION: its leading "_" is no valid city session name),
 * read-only, ignoring sizes, without pane output; the provider leaves that
 * session out of every listing. Commands are written one per line and
 * answered in order, each between `%begin` and `%end` (or `%error`) lines
 * flagged as this client's. Anything amiss (the client exits, an answer
 * takes too long, an argument tmux's parser would need escapes for) makes
 * `run` answer undefined, and the caller runs tmux as a plain process.
 */
import type { Readable, Writable } from 'node:stream';
import { startProcess, type StartedProcess } from '../core/index.js';

/** The control client's own session. */
export const CONTROL_SESSION = '_gc-control';

/** How long an answer may take before the client is dropped. */
const ANSWER_TIMEOUT_MS = 10_000;
/** How long to use plain calls after the client failed. */
const RETRY_AFTER_MS = 5_000;

export interface ControlAnswer {
  ok: boolean;
  lines: string[];
}

interface Waiter {
  resolve: (a: ControlAnswer | undefined) => void;
  timer: NodeJS.Timeout;
}

export class TmuxControl {
  private proc: StartedProcess | undefined;
  private ready: Promise<void> | undefined;
  private readonly waiting: Waiter[] = [];
  private block: { mine: boolean; lines: string[] } | undefined;
  private partial = '';
  private retryAt = 0;
  private closed = false;

  /**
   * @param argv0 tmux and its socket arguments (`tmux -L <socket> -f /dev/null`)
   * @param ensureSession makes CONTROL_SESSION exist (starting the server if needed)
   */
  constructor(
    private readonly argv0: readonly string[],
    private readonly ensureSession: () => Promise<void>,
  ) {}

  /** Run one command (its words) over the client; undefined to fall back to a plain call. */
  async run(words: readonly string[]): Promise<ControlAnswer | undefined> {
    // Single quotes keep everything literal for tmux's parser, except a quote or a newline.
    if (this.closed || words.some((w) => /['\n\r]/.test(w))) return undefined;
    try {
      await this.connect();
    } catch {
      return undefined;
    }
    const stdin = this.proc?.child?.stdin;
    if (!stdin) return undefined;
    return new Promise<ControlAnswer | undefined>((resolve) => {
      // The timer keeps the process alive while an answer is due (the
      // client's pipes do not: an idle client never holds a process open).
      const timer = setTimeout(() => this.down(), ANSWER_TIMEOUT_MS);
      this.waiting.push({ resolve, timer });
      stdin.write(`${words.map((w) => `'${w}'`).join(' ')}\n`);
    });
  }

  /** End the client (the city server is stopping). */
  close(): void {
    this.closed = true;
    this.down();
  }

  /** End the client for now; the next `run` may start a new one. */
  reset(): void {
    this.down();
    this.retryAt = 0;
  }

  private connect(): Promise<void> {
    if (this.ready) return this.ready;
    if (Date.now() < this.retryAt) return Promise.reject(new Error('tmux control client is down'));
    const ready = (async () => {
      await this.ensureSession();
      const [bin, ...rest] = this.argv0;
      const p = startProcess(
        bin!,
        [
          ...rest,
          '-C',
          'attach-session',
          '-t',
          `=${CONTROL_SESSION}`,
          '-f',
          'no-output,ignore-size,read-only',
        ],
        { stdio: ['pipe', 'pipe', 'ignore'] },
      );
      await p.started;
      const child = p.child!;
      const out = child.stdout as Readable & { unref?: () => void };
      out.setEncoding('utf8');
      out.on('data', (d: string) => this.onData(d));
      child.stdin!.on('error', () => this.down());
      // Never what keeps the city server's process alive.
      child.unref();
      out.unref?.();
      (child.stdin as Writable & { unref?: () => void }).unref?.();
      p.exited.then(
        () => {
          if (this.proc === p) this.down();
        },
        () => undefined,
      );
      this.proc = p;
    })();
    this.ready = ready;
    ready.catch(() => {
      this.ready = undefined;
      this.retryAt = Date.now() + RETRY_AFTER_MS;
    });
    return ready;
  }

  private onData(data: string): void {
    const lines = (this.partial + data).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (this.block) {
        const end = /^%(end|error) \d+ \d+ \d+$/.exec(line);
        if (!end) {
          this.block.lines.push(line);
          continue;
        }
        const { mine, lines: body } = this.block;
        this.block = undefined;
        if (!mine) continue; // the attach itself, not one of ours
        const w = this.waiting.shift();
        if (w) {
          clearTimeout(w.timer);
          w.resolve({ ok: end[1] === 'end', lines: body });
        }
      } else if (line.startsWith('%begin ')) {
        this.block = { mine: line.split(' ')[3] === '1', lines: [] };
      } else if (line === '%exit' || line.startsWith('%exit ')) {
        this.down();
      }
      // Other notifications (%session-changed, ...) are not answers.
    }
  }

  /** Drop the client: whatever waits falls back to plain calls. */
  private down(): void {
    const p = this.proc;
    this.proc = undefined;
    this.ready = undefined;
    this.block = undefined;
    this.partial = '';
    if (!this.closed) this.retryAt = Date.now() + RETRY_AFTER_MS;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    if (p?.child) {
      p.child.stdin?.end();
      p.child.kill('SIGTERM');
    }
  }
}
