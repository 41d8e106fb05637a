/**
 * CLI output conventions: human tables by default; `--json` prints data only
 * on stdout; errors go to stderr with a non-zero exit code.
 */
import { GcError, errorMessage, printable } from '../core/index.js';

/** Exit codes: 1 general, 2 usage or invalid input, 3 not found, 4 conflict, 5 locked. */
export const EXIT = {
  error: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  locked: 5,
  denied: 6,
} as const;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof GcError)) return EXIT.error;
  switch (err.code) {
    case 'invalid':
    case 'too_large':
    case 'config':
    case 'unsupported':
      return EXIT.usage;
    case 'not_found':
      return EXIT.notFound;
    case 'already_claimed':
    case 'already_exists':
    case 'conflict':
      return EXIT.conflict;
    case 'locked':
      return EXIT.locked;
    case 'unauthenticated':
    case 'forbidden':
      return EXIT.denied;
    default:
      return EXIT.error;
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A line for a human: control characters in it are made visible (see core/text.ts). */
export function printLine(line = ''): void {
  process.stdout.write(printable(line) + '\n');
}

/**
 * Write to stdout and wait while it is full: a follower piped into a slow
 * reader (`gc events --follow | less`) holds one pipe buffer, not the log.
 */
export function writeOut(text: string, human = false): Promise<void> {
  if (process.stdout.write(human ? printable(text) : text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      process.stdout.off('drain', done);
      process.stdout.off('close', done);
      resolve();
    };
    process.stdout.once('drain', done);
    process.stdout.once('close', done);
  });
}

/** Render rows as an aligned text table; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join('\n');
}

/** Print an error to stderr (JSON when asked) and return the exit code. */
/** `gc ... | head` closes our stdout early: that is not an error. */
export function guardStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

export function reportError(prog: string, err: unknown, json: boolean): number {
  const code = exitCodeFor(err);
  if (json) {
    const e =
      err instanceof GcError
        ? {
            code: err.code,
            message: err.message,
            details: err.details,
            ...(err.fix ? { fix: err.fix } : {}),
          }
        : { code: 'internal', message: errorMessage(err) };
    process.stderr.write(JSON.stringify({ error: e }) + '\n');
  } else {
    // The server names request fields (body.title, query.limit); the CLI
    // speaks of the argument or option itself.
    const message = printable(errorMessage(err).replace(/^(?:body|query)\./, ''));
    process.stderr.write(`${prog}: ${message}\n`);
    if (err instanceof GcError && err.fix) process.stderr.write(`  fix: ${printable(err.fix)}\n`);
    if (!(err instanceof GcError) && err instanceof Error && process.env.GC_DEBUG) {
      process.stderr.write(`${err.stack ?? ''}\n`);
    }
  }
  return code;
}

/** One-line title, clipped for tables. */
export function clip(text: string, max = 60): string {
  const one = text.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/**
 * A session row's REASON column: why it waits, plus its last start error
 * (first line) while it is not running.
 */
export function sessionReason(r: { state: string; reason?: string; start_error?: string }): string {
  const err =
    r.start_error && r.state !== 'running' ? `last start failed: ${clip(r.start_error, 160)}` : '';
  return [r.reason ?? '', err].filter(Boolean).join('; ');
}
