/**
 * `exec:<script>` provider: the Gas City exec session protocol. The script is
 * executed directly (never through a shell) as `script <op> <name> [args]`.
 *
 * - exit 0: success; exit 1: failure, message on stderr (for `start`, a
 *   message containing "already exists" means the session exists); exit 2:
 *   unknown op, treated as success (forward compatibility).
 * - Payloads on stdin: start config JSON (`start`), names one per line
 *   (`process-alive`), text (`nudge`), value (`set-meta`).
 * - 30 s per op, 120 s for `start`; a script past its limit is killed with
 *   its process group and the op fails with `ProviderTimeoutError`.
 *
 * Our extension: `snapshot PREFIX` printing one JSON object per line
 * (`{"name","alive","last_activity","attached","exit_code"?}`). A script that
 * answers exit 2 gets the fallback: `list-running` plus one
 * `get-last-activity` and `is-attached` per session (N+1 calls, live
 * sessions only). The reference script in examples/providers implements it.
 */
import { GcError, NotFoundError, runFile, startProcess } from '../core/index.js';
import { ProviderTimeoutError, ProviderUnavailableError, SessionExistsError } from './errors.js';
import type {
  Provider,
  ProviderCapabilities,
  SessionSnapshot,
  StartConfig,
  StartOptions,
} from './provider.js';
import {
  resolveInside,
  validateKeys,
  validateMetaKey,
  validateNudgeText,
  validatePrefix,
  validateSessionName,
} from './validate.js';

export interface ExecProviderOptions {
  /** Extra environment for the script (on top of this process's). */
  env?: Record<string, string>;
  /** Per-op time limit. Default 30 s (protocol). */
  opTimeoutMs?: number;
  /** Time limit of `start`. Default 120 s (protocol). */
  startTimeoutMs?: number;
}

interface OpResult {
  stdout: string;
  /** The script answered exit 2 (does not know the op). */
  unknown: boolean;
}

export class ExecProvider implements Provider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities = {
    reportsActivity: true,
    reportsAttachment: true,
    canAttach: false,
    runsProcesses: true,
  };
  /** Number of script runs, for benchmarks and tests. */
  subprocesses = 0;
  private readonly opTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly env: NodeJS.ProcessEnv;
  private snapshotUnsupported = false;

  constructor(
    readonly script: string,
    options: ExecProviderOptions = {},
  ) {
    this.name = `exec:${script}`;
    this.opTimeoutMs = options.opTimeoutMs ?? 30_000;
    this.startTimeoutMs = options.startTimeoutMs ?? 120_000;
    this.env = { ...process.env, ...options.env };
  }

  private async op(
    op: string,
    args: readonly string[],
    input?: string,
    timeoutMs = this.opTimeoutMs,
  ): Promise<OpResult> {
    this.subprocesses++;
    let r;
    try {
      r = await runFile(this.script, [op, ...args], {
        env: this.env,
        timeoutMs,
        ...(input === undefined ? {} : { input }),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ProviderUnavailableError(
        this.name,
        code === 'ENOENT'
          ? `script ${this.script} does not exist`
          : code === 'EACCES'
            ? `script ${this.script} is not executable (chmod +x)`
            : String(e),
      );
    }
    if (r.timedOut) throw new ProviderTimeoutError(this.name, op, timeoutMs);
    if (r.code === 0) return { stdout: r.stdout, unknown: false };
    if (r.code === 2) return { stdout: '', unknown: true };
    const message = r.stderr.trim() || `exit ${r.code ?? r.signal}`;
    if (op === 'start' && /already exists/i.test(message)) {
      throw new SessionExistsError(args[0] ?? '');
    }
    if (op === 'set-meta' && /not found|no such session|does not exist/i.test(message)) {
      throw new NotFoundError('session', args[0] ?? '', { details: { provider: this.name } });
    }
    throw new GcError('unavailable', `${this.name} ${op} ${args[0] ?? ''}: ${message}`, {
      details: { provider: this.name, op, exit_code: r.code },
    });
  }

  private bool(op: string, out: OpResult, fallback: boolean): boolean {
    if (out.unknown) return fallback;
    const v = out.stdout.trim();
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw new GcError(
      'unavailable',
      `${this.name} ${op} printed ${JSON.stringify(v.slice(0, 80))}; expected true or false`,
      { details: { provider: this.name, op } },
    );
  }

  async start(name: string, config: StartConfig, options: StartOptions = {}): Promise<void> {
    validateSessionName(name);
    const left =
      options.deadline === undefined ? this.startTimeoutMs : options.deadline - Date.now();
    const timeout = Math.max(1, Math.min(this.startTimeoutMs, left));
    await this.op('start', [name], JSON.stringify(config), timeout);
  }

  async stop(name: string): Promise<void> {
    validateSessionName(name);
    await this.op('stop', [name]);
  }

  async interrupt(name: string): Promise<void> {
    validateSessionName(name);
    await this.op('interrupt', [name]);
  }

  async isRunning(name: string): Promise<boolean> {
    validateSessionName(name);
    return this.bool('is-running', await this.op('is-running', [name]), false);
  }

  async isAttached(name: string): Promise<boolean> {
    validateSessionName(name);
    return this.bool('is-attached', await this.op('is-attached', [name]), false);
  }

  async attach(name: string): Promise<void> {
    validateSessionName(name);
    if (!(await this.isRunning(name))) throw new NotFoundError('session', name);
    // Interactive: the script gets the terminal.
    const exit = await startProcess(this.script, ['attach', name], {
      stdio: 'inherit',
      env: this.env,
    }).exited;
    if (exit.error) throw exit.error;
  }

  async processAlive(name: string, names: readonly string[]): Promise<boolean> {
    validateSessionName(name);
    if (names.length === 0) return true;
    // Unknown op: cannot tell, so do not report the agent dead.
    const out = await this.op('process-alive', [name], names.join('\n') + '\n');
    return this.bool('process-alive', out, true);
  }

  async nudge(name: string, text: string): Promise<void> {
    validateSessionName(name);
    await this.op('nudge', [name], validateNudgeText(text));
  }

  async setMeta(name: string, key: string, value: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.op('set-meta', [name, key], value);
  }

  async getMeta(name: string, key: string): Promise<string> {
    validateSessionName(name);
    validateMetaKey(key);
    return (await this.op('get-meta', [name, key])).stdout.replace(/\r?\n$/, '');
  }

  async removeMeta(name: string, key: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.op('remove-meta', [name, key]);
  }

  async peek(name: string, lines: number): Promise<string> {
    validateSessionName(name);
    return (await this.op('peek', [name, String(Math.trunc(lines))])).stdout.replace(/\n$/, '');
  }

  async listRunning(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const out = await this.op('list-running', [prefix]);
    const names = out.stdout.split('\n').filter((l) => l.trim() !== '');
    for (const n of names) {
      try {
        validateSessionName(n);
      } catch {
        throw new GcError(
          'unavailable',
          `${this.name} list-running printed ${JSON.stringify(n.slice(0, 80))}, which is not a session name`,
          { details: { provider: this.name, op: 'list-running' } },
        );
      }
    }
    return names.filter((n) => n.startsWith(prefix)).sort();
  }

  async snapshot(prefix: string): Promise<SessionSnapshot[]> {
    validatePrefix(prefix);
    if (!this.snapshotUnsupported) {
      const out = await this.op('snapshot', [prefix]);
      if (!out.unknown) return this.parseSnapshot(out.stdout, prefix);
      this.snapshotUnsupported = true;
    }
    const names = await this.listRunning(prefix);
    return Promise.all(
      names.map(async (name) => ({
        name,
        alive: true,
        lastActivity: await this.getLastActivity(name),
        attached: await this.isAttached(name),
      })),
    );
  }

  private parseSnapshot(stdout: string, prefix: string): SessionSnapshot[] {
    const out: SessionSnapshot[] = [];
    for (const [i, line] of stdout.split('\n').entries()) {
      if (!line.trim()) continue;
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(line) as Record<string, unknown>;
        if (typeof row.name !== 'string' || typeof row.alive !== 'boolean') throw new Error();
        validateSessionName(row.name);
      } catch {
        throw new GcError(
          'unavailable',
          `${this.name} snapshot line ${i + 1} is not {"name","alive",...}: ${JSON.stringify(line.slice(0, 80))}`,
          { details: { provider: this.name, op: 'snapshot' } },
        );
      }
      if (!row.name.startsWith(prefix)) continue;
      const snap: SessionSnapshot = {
        name: row.name,
        alive: row.alive,
        lastActivity: parseTime(row.last_activity),
        attached: row.attached === true,
      };
      if (typeof row.exit_code === 'number' && !row.alive) snap.exitCode = row.exit_code;
      out.push(snap);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async getLastActivity(name: string): Promise<number> {
    validateSessionName(name);
    return parseTime((await this.op('get-last-activity', [name])).stdout.trim());
  }

  async clearScrollback(name: string): Promise<void> {
    validateSessionName(name);
    await this.op('clear-scrollback', [name]);
  }

  async copyTo(name: string, src: string, relDst: string): Promise<void> {
    validateSessionName(name);
    resolveInside('/session-work-dir', relDst);
    await this.op('copy-to', [name, src, relDst]);
  }

  async sendKeys(name: string, keys: readonly string[]): Promise<void> {
    validateSessionName(name);
    validateKeys(keys);
    if (keys.length) await this.op('send-keys', [name, ...keys]);
  }

  async close(): Promise<void> {
    // Every op is its own process; nothing held.
  }
}

/** RFC 3339 time -> epoch ms; empty or malformed is 0 (protocol). */
function parseTime(value: unknown): number {
  if (typeof value !== 'string' || value === '') return 0;
  const t = Date.parse(value);
  return Number.isNaN(t) ? 0 : t;
}
