/**
 * Typed errors shared by every module. Each carries a stable `code` (used by
 * the CLI for exit codes and, later, by the API for status codes), structured
 * `details`, and where possible a `fix` telling the user what to do.
 */

export type ErrorCode =
  | 'not_found'
  | 'already_exists'
  | 'already_claimed'
  | 'conflict'
  | 'invalid'
  | 'too_large'
  | 'locked'
  | 'config'
  | 'unsupported'
  | 'unavailable'
  | 'unauthenticated'
  | 'forbidden'
  | 'rate_limited'
  | 'internal';

export interface GcErrorOptions {
  details?: Record<string, unknown>;
  fix?: string;
  cause?: unknown;
}

export class GcError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly fix: string | undefined;

  constructor(code: ErrorCode, message: string, options: GcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
    this.fix = options.fix;
  }
}

/** Thrown when a named thing (bead, event, session, key) does not exist. */
export class NotFoundError extends GcError {
  constructor(kind: string, id: string, options: GcErrorOptions = {}) {
    super('not_found', `${kind} not found: ${id}`, {
      ...options,
      details: { kind, id, ...options.details },
    });
  }
}

/** Thrown when creating something whose name or key is taken. */
export class AlreadyExistsError extends GcError {
  constructor(kind: string, id: string, options: GcErrorOptions = {}) {
    super('already_exists', `${kind} already exists: ${id}`, {
      ...options,
      details: { kind, id, ...options.details },
    });
  }
}

/** A claim lost its compare-and-set: another actor holds the bead. */
export class AlreadyClaimedError extends GcError {
  constructor(id: string, holder: string, status: string) {
    super(
      'already_claimed',
      `bead ${id} already claimed by ${holder || '(nobody)'} (status ${status})`,
      {
        details: { id, holder, status },
        fix: 'pick another bead (gc bead ready) or ask the holder to unclaim it',
      },
    );
  }
}

/** A state precondition failed (wrong status, stale fencing attempt, ...). */
export class ConflictError extends GcError {
  constructor(message: string, options: GcErrorOptions = {}) {
    super('conflict', message, options);
  }
}

/** Input that fails validation. `where` names the field or argument. */
export class ValidationError extends GcError {
  constructor(message: string, options: GcErrorOptions & { where?: string } = {}) {
    const where = options.where;
    super('invalid', where ? `${where}: ${message}` : message, {
      ...options,
      details: { ...(where ? { where } : {}), ...options.details },
    });
  }
}

/** Input over a documented size limit. */
export class TooLargeError extends GcError {
  constructor(what: string, size: number, limit: number) {
    super('too_large', `${what} is ${size} bytes; the limit is ${limit} bytes`, {
      details: { what, size, limit },
      fix: `shorten ${what}, or store large content in a file and reference it`,
    });
  }
}

/** The city lock is held by another process. */
export class LockedError extends GcError {
  constructor(message: string, options: GcErrorOptions = {}) {
    super('locked', message, options);
  }
}

/** A feature or backend this build does not provide. */
export class UnsupportedError extends GcError {
  constructor(message: string, options: GcErrorOptions = {}) {
    super('unsupported', message, options);
  }
}

/** No valid API key came with the request. */
export class UnauthenticatedError extends GcError {
  constructor(message: string, options: GcErrorOptions = {}) {
    super('unauthenticated', message, {
      ...options,
      fix:
        options.fix ??
        'send Authorization: Bearer <key>; the CLI reads GC_TOKEN, or the admin key written by gc init',
    });
  }
}

/** The caller is known but may not do this. */
export class ForbiddenError extends GcError {
  constructor(message: string, options: GcErrorOptions = {}) {
    super('forbidden', message, options);
  }
}

/** Too many requests from one principal; retry after `retryAfterMs`. */
export class RateLimitedError extends GcError {
  readonly retryAfterMs: number;
  constructor(principal: string, retryAfterMs: number, message?: string) {
    super(
      'rate_limited',
      message ??
        `rate limit exceeded for ${principal}; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
      {
        details: { principal, retry_after_ms: retryAfterMs },
      },
    );
    this.retryAfterMs = retryAfterMs;
  }
}

export function isGcError(err: unknown): err is GcError {
  return err instanceof GcError;
}

/** Message of any thrown value, for logs and CLI output. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
