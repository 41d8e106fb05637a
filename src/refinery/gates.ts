/**
 * Gate commands (setup, typecheck, lint, test), run in a scratch worktree.
 * A gate is a command line from city.toml (the operator's own config, run
 * by `sh -c` as any CI step is); nothing from a merge request is put into
 * it: the request's id, branch and commits reach it as environment
 * variables. Each gate has a timeout; the whole process group is killed on
 * timeout or when the candidate is cancelled.
 */
import { killGroup, startProcess } from '../core/index.js';

export const GATE_NAMES = ['setup', 'typecheck', 'lint', 'test'] as const;
export type GateName = (typeof GATE_NAMES)[number];

export interface GateSpec {
  name: GateName;
  command: string;
  timeoutMs: number;
}

export interface GateRun {
  ok: boolean;
  /** Exit code, or null when killed. */
  code: number | null;
  timedOut: boolean;
  cancelled: boolean;
  /** The last 4 KiB of stdout and stderr, interleaved. */
  tail: string;
  ms: number;
}

const TAIL_BYTES = 4096;

export async function runGate(
  gate: GateSpec,
  cwd: string,
  env: Record<string, string>,
  signal: AbortSignal,
  /** Told the gate's process group id once it runs (to record it for crash recovery). */
  onStart?: (pgid: number) => void,
): Promise<GateRun> {
  const t0 = Date.now();
  if (signal.aborted) {
    return { ok: false, code: null, timedOut: false, cancelled: true, tail: '', ms: 0 };
  }
  const p = startProcess('sh', ['-c', gate.command], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const child = p.child;
  let tail = Buffer.alloc(0);
  const keep = (d: Buffer) => {
    tail = Buffer.concat([tail, d]);
    if (tail.length > TAIL_BYTES * 2) tail = tail.subarray(tail.length - TAIL_BYTES);
  };
  child?.stdout?.on('data', keep);
  child?.stderr?.on('data', keep);
  let timedOut = false;
  let cancelled = false;
  const kill = () => killGroup(child?.pid, 'SIGKILL');
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, gate.timeoutMs);
  const onAbort = () => {
    cancelled = true;
    kill();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  // Recorded at once, not when 'spawn' is emitted: a busy event loop could
  // otherwise let the gate run (and the server die) before it is recorded.
  if (child?.pid) onStart?.(child.pid);
  const exit = await p.exited;
  if (exit.error) keep(Buffer.from(`\n${exit.error.message}\n`));
  clearTimeout(timer);
  signal.removeEventListener('abort', onAbort);
  const code = exit.code;
  const text = tail.subarray(Math.max(0, tail.length - TAIL_BYTES)).toString('utf8');
  return {
    ok: code === 0 && !timedOut && !cancelled,
    code,
    timedOut,
    cancelled,
    tail: timedOut ? `${text}\n[gate ${gate.name} timed out after ${gate.timeoutMs} ms]` : text,
    ms: Date.now() - t0,
  };
}
