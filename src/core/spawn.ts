/**
 * The one way gc starts a child process. A spawn can fail at any time (no
 * file descriptors left, no memory, a missing program); Node then emits
 * `'error'` on the child, and with no listener that kills the whole server.
 * It may also leave the child's stdio streams undefined. `startProcess`
 * attaches the error listener before anything else, never throws, and turns
 * every failure into a settled promise, so no caller can get this wrong.
 *
 * Every spawn in src goes through here (a test checks).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started (or its pipes failed). */
  error?: Error;
}

export interface StartedProcess {
  /** Undefined only when `spawn` itself threw. */
  readonly child: ChildProcess | undefined;
  /** Resolves with the pid once the program runs; rejects when it could not be started. */
  readonly started: Promise<number>;
  /** Resolves once the program exited and its streams closed, or it failed to start. Never rejects. */
  readonly exited: Promise<Exit>;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export function startProcess(
  file: string,
  args: readonly string[],
  options: SpawnOptions = {},
): StartedProcess {
  let child: ChildProcess;
  try {
    child = spawn(file, [...args], options);
  } catch (e) {
    const error = asError(e);
    const started = Promise.reject(error);
    started.catch(() => undefined);
    return {
      child: undefined,
      started,
      exited: Promise.resolve({ code: null, signal: null, error }),
    };
  }
  let firstError: Error | undefined;
  let resolveExit!: (e: Exit) => void;
  const exited = new Promise<Exit>((r) => (resolveExit = r));
  const started = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => {
      // 'error' may come instead of 'spawn', or later (a failed kill): keep the first.
      firstError ??= e;
      reject(e);
      // When the program never ran, 'close' may never come.
      if (child.pid === undefined) resolveExit({ code: null, signal: null, error: e });
    });
    child.once('spawn', () => resolve(child.pid!));
  });
  started.catch(() => undefined);
  child.once('close', (code, signal) =>
    resolveExit({ code, signal, ...(firstError ? { error: firstError } : {}) }),
  );
  // A pipe can fail on its own (EPIPE on stdin when the program exits early).
  for (const s of [child.stdin, child.stdout, child.stderr]) s?.on('error', () => undefined);
  return { child, started, exited };
}

/** Signal a process group (a child started with `detached: true`), else the process itself. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Whether process `pid` exists (EPERM: it does, and is someone else's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
