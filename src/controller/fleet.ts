/**
 * Many sessions at once: the provider's batch calls (one wave, a constant
 * number of provider subprocesses, one grace window) when it has them,
 * else the single calls, bounded-parallel. A failed batch falls back to
 * the single calls, so every session still gets its stop.
 */
import { errorMessage } from '../core/index.js';
import type { Provider } from '../runtime/index.js';
import { mapLimit } from './status.js';

/** Single calls at once when a provider has no batch call. */
const FALLBACK_CONCURRENCY = 32;

export async function stopSessions(
  provider: Provider,
  names: readonly string[],
  log: (line: string) => void,
): Promise<void> {
  if (!names.length) return;
  if (provider.stopMany) {
    try {
      await provider.stopMany(names);
      return;
    } catch (e) {
      log(`stopping ${names.length} session(s) at once: ${errorMessage(e)}; one by one`);
    }
  }
  await mapLimit([...names], FALLBACK_CONCURRENCY, (n) =>
    provider.stop(n).catch((e: unknown) => log(`stop ${n}: ${errorMessage(e)}`)),
  );
}

export async function interruptSessions(
  provider: Provider,
  names: readonly string[],
  log: (line: string) => void,
): Promise<void> {
  if (!names.length) return;
  if (provider.interruptMany) {
    try {
      await provider.interruptMany(names);
      return;
    } catch (e) {
      log(`interrupting ${names.length} session(s) at once: ${errorMessage(e)}; one by one`);
    }
  }
  await mapLimit([...names], FALLBACK_CONCURRENCY, (n) =>
    provider.interrupt(n).catch(() => undefined),
  );
}

/**
 * The tick's stops as one batch call: true when the provider has one and
 * it succeeded (then every session is stopped); false to stop them one by one.
 */
export async function stopWave(
  provider: Provider,
  stops: readonly { session: string }[],
  log: (line: string) => void,
): Promise<boolean> {
  if (!provider.stopMany) return false;
  try {
    await provider.stopMany(stops.map((a) => a.session));
    return true;
  } catch (e) {
    log(`stopping ${stops.length} session(s) at once: ${errorMessage(e)}; one by one`);
    return false;
  }
}
