/**
 * Waiting in tests: for a condition, never for a fixed time. Each wait has a
 * generous deadline (20 s by default, under the 30 s test timeout so the
 * wait's own message is what a failure shows) and fails with what it waited
 * for and the last value seen: a slow machine makes a test slower, not red.
 */

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Probe until `ok(value)` holds; returns that value. Fails after `ms` with
 * `what` and the last value.
 *
 * @example await until('two sessions', () => p.listRunning(''), (v) => v.length === 2);
 */
export async function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  ok: (v: T) => boolean,
  ms = 20_000,
  intervalMs = 50,
): Promise<T> {
  const end = Date.now() + ms;
  let last = await probe();
  while (!ok(last)) {
    if (Date.now() > end) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}; last value ${String(JSON.stringify(last)).slice(0, 800)}`,
      );
    }
    await pause(intervalMs);
    last = await probe();
  }
  return last;
}

/** Wait until `cond()` is true. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 20_000,
): Promise<void> {
  await until(what, cond, (v) => v, ms);
}
