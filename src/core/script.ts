/**
 * What every exec provider (beads, events, mail) does the same way with its
 * user script: check it can run, and run one operation without a shell,
 * with the provider's environment, working directory and timeout. Exit
 * codes mean different things to each protocol, so they are the caller's.
 */
import { access, constants } from 'node:fs/promises';
import { GcError } from './errors.js';
import { runFile, type RunFileResult } from './run-file.js';

export interface ScriptOptions {
  timeoutMs?: number;
  /** Added to the script's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

/** Exec protocols give each operation 30 s. */
export const SCRIPT_TIMEOUT_MS = 30_000;

/** `what` names the provider, as in `[what] provider = "exec:..."`. */
export async function checkScript(what: string, script: string): Promise<void> {
  try {
    await access(script, constants.X_OK);
  } catch (e) {
    throw new GcError('unavailable', `${what} script ${script} is not executable`, {
      cause: e,
      fix: `check [${what}] provider = "exec:<path>" and chmod +x the script`,
    });
  }
}

/** Run `script op args...` with `input` on stdin; a timeout is an error, any exit code is returned. */
export async function runScript(
  what: string,
  script: string,
  args: readonly string[],
  input: string,
  options: ScriptOptions,
): Promise<RunFileResult> {
  const timeoutMs = options.timeoutMs ?? SCRIPT_TIMEOUT_MS;
  const r = await runFile(script, args, {
    input,
    env: { ...process.env, ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    timeoutMs,
  });
  if (r.timedOut) {
    throw new GcError('unavailable', `${what} script ${args[0]} timed out after ${timeoutMs} ms`);
  }
  return r;
}
