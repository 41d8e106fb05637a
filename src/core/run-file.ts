/**
 * Run a program without a shell and collect its output. Arguments go to the
 * program as argv entries, so nothing in them is ever interpreted. On timeout
 * (or abort) the program's whole process group is killed, so a hung script
 * cannot leave children behind.
 */
import { killGroup, startProcess } from './spawn.js';

export interface RunFileOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Kill the program (and its group) when this aborts; the promise rejects with the abort reason. */
  signal?: AbortSignal;
  /** Cap on captured stdout+stderr; the rest is discarded and `truncated` set. */
  maxOutputBytes?: number;
}

export interface RunFileResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
}

/** Resolves with the result; rejects only when the program cannot be spawned (or was aborted). */
export async function runFile(
  file: string,
  args: readonly string[],
  options: RunFileOptions = {},
): Promise<RunFileResult> {
  const max = options.maxOutputBytes ?? 16 * 1024 * 1024;
  if (options.signal?.aborted) throw abortError(options.signal);
  const p = startProcess(file, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Own process group, so a timeout can kill the program and its children.
    detached: options.timeoutMs !== undefined || options.signal !== undefined,
  });
  const child = p.child;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let size = 0;
  let truncated = false;
  let timedOut = false;
  const take = (into: Buffer[]) => (chunk: Buffer) => {
    if (size + chunk.length > max) {
      truncated = true;
      chunk = chunk.subarray(0, Math.max(0, max - size));
    }
    size += chunk.length;
    if (chunk.length) into.push(chunk);
  };
  child?.stdout?.on('data', take(out));
  child?.stderr?.on('data', take(err));
  child?.stdin?.end(options.input ?? '');
  let timer: NodeJS.Timeout | undefined;
  if (options.timeoutMs !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      killGroup(child?.pid, 'SIGKILL');
    }, options.timeoutMs);
  }
  const onAbort = () => killGroup(child?.pid, 'SIGKILL');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const exit = await p.exited;
    if (exit.error && child?.pid === undefined) throw exit.error;
    if (options.signal?.aborted) throw abortError(options.signal);
    return {
      code: exit.code,
      signal: exit.signal,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      timedOut,
      truncated,
    };
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : Object.assign(new Error('aborted'), { name: 'AbortError' });
}
