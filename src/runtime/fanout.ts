/**
 * One operation for many sessions: the provider's batch call (one wave, a
 * constant number of provider subprocesses) when it has one, else the
 * single call per session, bounded-parallel. A failed stop or interrupt
 * batch falls back to the single calls (both are safe to repeat), so
 * every session still gets it. A nudge must not arrive twice: a failed
 * nudge batch is logged, not repeated.
 */
import { errorMessage, mapLimit } from '../core/index.js';
import type { Provider } from './provider.js';

/** Single calls at once when a provider has no batch call. */
const FALLBACK_CONCURRENCY = 32;

type Log = (line: string) => void;

async function fanOut(
  names: readonly string[],
  what: string,
  many: ((names: readonly string[]) => Promise<void>) | undefined,
  one: (name: string) => Promise<void>,
  log: Log,
  retryOneByOne = true,
): Promise<string[]> {
  if (!names.length) return [];
  if (many) {
    try {
      await many(names);
      return [];
    } catch (e) {
      log(
        `${what} ${names.length} session(s) at once: ${errorMessage(e)}${retryOneByOne ? '; one by one' : ''}`,
      );
      if (!retryOneByOne) return [...names];
    }
  }
  const failed: string[] = [];
  await mapLimit([...names], FALLBACK_CONCURRENCY, (n) =>
    one(n).catch((e: unknown) => {
      failed.push(n);
      log(`${what} ${n}: ${errorMessage(e)}`);
    }),
  );
  return failed;
}

/** Stop `names` (stopMany, else stop each); failures are logged. */
export async function stopSessions(
  provider: Provider,
  names: readonly string[],
  log: Log,
): Promise<void> {
  await fanOut(names, 'stopping', provider.stopMany?.bind(provider), (n) => provider.stop(n), log);
}

/** Interrupt `names` (interruptMany, else interrupt each); failures are logged. */
export async function interruptSessions(
  provider: Provider,
  names: readonly string[],
  log: Log,
): Promise<void> {
  await fanOut(
    names,
    'interrupting',
    provider.interruptMany?.bind(provider),
    (n) => provider.interrupt(n),
    log,
  );
}

/**
 * Nudge `names` with one `text` (nudgeMany, else nudge each). Best effort
 * like `nudge`: a session that is gone is skipped. A failed batch is not
 * sent again one by one (some sessions may have had it already). The
 * sessions whose nudge failed (logged) are returned.
 */
export function nudgeSessions(
  provider: Provider,
  names: readonly string[],
  text: string,
  log: Log,
): Promise<string[]> {
  return fanOut(
    names,
    'nudging',
    provider.nudgeMany ? (ns) => provider.nudgeMany!(ns, text) : undefined,
    (n) => provider.nudge(n, text),
    log,
    false,
  );
}
