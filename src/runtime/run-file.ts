/**
 * Run a program without a shell and collect its output. Arguments go to the
 * program as argv entries, so nothing in them is ever interpreted. On timeout
 * the program's whole process group is killed, so a hung script cannot leave
 * children behind.
 */
import { spawn } from 'node:child_process';

export interface RunFileOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
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

/** Resolves with the result; rejects only when the program cannot be spawned. */
export function runFile(
  file: string,
  args: readonly string[],
  options: RunFileOptions = {},
): Promise<RunFileResult> {
  const max = options.maxOutputBytes ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group, so a timeout can kill the program and its children.
      detached: options.timeoutMs !== undefined,
    });
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
    child.stdout.on('data', take(out));
    child.stderr.on('data', take(err));
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid, 'SIGKILL');
      }, options.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        truncated,
      });
    });
    // A program that does not read stdin closes it early; that is not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
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
