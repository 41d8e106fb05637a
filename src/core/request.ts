/**
 * The API request a piece of work belongs to, when it carries an
 * Idempotency-Key. The router opens the scope around a request's handler;
 * the city's operations number their writes within it (0, 1, ...) so each
 * write's result is kept under (key, n) in the same transaction as the
 * write, and a retried request gets its writes' first results instead of
 * acting twice.
 *
 * The scope ends when the handler does: work the request merely set going
 * (a controller poke, a merge queue run) and that writes later does not
 * count as the request's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestScope {
  scope: string;
  key: string;
  fp: string;
}

interface Live extends RequestScope {
  next: number;
  open: boolean;
}

const current = new AsyncLocalStorage<Live>();

/** Run `fn` as the request `r`; its writes are numbered from 0. */
export async function inRequest<T>(r: RequestScope, fn: () => Promise<T>): Promise<T> {
  const live: Live = { ...r, next: 0, open: true };
  try {
    return await current.run(live, fn);
  } finally {
    live.open = false;
  }
}

/** The next write's place in the current request, if a request is under way. */
export function nextRequestWrite(): (RequestScope & { n: number }) | undefined {
  const live = current.getStore();
  if (!live?.open) return undefined;
  return { scope: live.scope, key: live.key, fp: live.fp, n: live.next++ };
}

/**
 * A write that kept nothing under its number (a claim that found no work,
 * which a long poll repeats): the next write takes the number instead, so a
 * retry numbers its writes the same way.
 */
export function unusedRequestWrite(ref: { n: number } | undefined): void {
  const live = current.getStore();
  if (ref && live?.open && live.next === ref.n + 1) live.next = ref.n;
}

/** Run `fn` outside any request (work the request starts but does not own). */
export function outsideRequest<T>(fn: () => T): T {
  return current.exit(fn);
}
