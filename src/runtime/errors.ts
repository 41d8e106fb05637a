/** Typed errors of the runtime seam. */
import { GcError, type GcErrorOptions } from '../core/index.js';

/** `start` of a name that already has a live session. */
export class SessionExistsError extends GcError {
  constructor(name: string, options: GcErrorOptions = {}) {
    super('already_exists', `session already exists: ${name}`, {
      ...options,
      details: { kind: 'session', id: name, ...options.details },
      fix: options.fix ?? `stop it first (gc session stop ${name}) or pick another name`,
    });
  }
}

/**
 * The session's process exited before it became ready. `output` holds the
 * tail of what it printed, which usually says why.
 */
export class SessionDiedDuringStartupError extends GcError {
  readonly output: string;
  constructor(name: string, output: string, exitCode?: number) {
    const code = exitCode === undefined ? '' : ` (exit status ${exitCode})`;
    const tail = output.trim() ? `; last output:\n${output.trimEnd()}` : '';
    super('conflict', `session ${name} died during startup${code}${tail}`, {
      details: { session: name, ...(exitCode === undefined ? {} : { exit_code: exitCode }) },
      fix: 'check the agent command and its environment; the output above is from the session',
    });
    this.output = output;
  }
}

/** The tool behind the provider (tmux, the exec script) is missing or broken. */
export class ProviderUnavailableError extends GcError {
  constructor(provider: string, reason: string, options: GcErrorOptions = {}) {
    super('unavailable', `session provider ${provider} unavailable: ${reason}`, {
      ...options,
      details: { provider, ...options.details },
    });
  }
}

/** A provider operation ran past its time limit and was killed. */
export class ProviderTimeoutError extends GcError {
  constructor(provider: string, op: string, ms: number) {
    super(
      'unavailable',
      `session provider ${provider}: ${op} timed out after ${ms} ms and was killed`,
      {
        details: { provider, op, timeout_ms: ms },
      },
    );
  }
}
