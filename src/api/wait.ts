/**
 * Long polls: a route that may hold a request until something changes waits
 * on the event log (every state change is recorded there), never on a
 * timer loop. At most MAX_WAIT_MS per request; the client asks again.
 */
import type { EventLog, GcEvent } from '../events/index.js';
import type { RequestContext } from './http.js';

/** The longest a request is held (clients re-ask; proxies drop idle requests). */
export const MAX_WAIT_MS = 30_000;

/**
 * Resolve when an event after `afterSeq` matches, after `ms`, or when the
 * caller goes away. Events recorded between the caller's read and this call
 * are seen: the watch starts from `afterSeq`, taken before that read.
 */
export async function nextEvent(
  events: EventLog,
  afterSeq: number,
  match: (e: GcEvent) => boolean,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const onAbort = () => ac.abort();
  signal.addEventListener('abort', onAbort);
  try {
    for await (const e of events.watch(afterSeq, { signal: ac.signal })) {
      if (match(e)) return;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/** Aborted when the client closes the connection. */
export function closedSignal(ctx: RequestContext<unknown>): AbortSignal {
  const ac = new AbortController();
  ctx.res.on('close', () => ac.abort());
  return ac.signal;
}

/**
 * Repeat `read` until `done` says so or `waitMs` (capped) passes, waking on
 * events that `match`. Returns the last value read.
 */
export async function longPoll<T>(
  ctx: RequestContext<unknown>,
  events: EventLog,
  waitMs: number,
  read: () => Promise<T>,
  done: (v: T) => boolean,
  match: (e: GcEvent) => boolean,
): Promise<T> {
  const deadline = Date.now() + Math.min(Math.max(waitMs, 0), MAX_WAIT_MS);
  const signal = closedSignal(ctx);
  for (;;) {
    const after = await events.latestSeq();
    const value = await read();
    const left = deadline - Date.now();
    if (done(value) || left <= 0 || signal.aborted) return value;
    await nextEvent(events, after, match, left, signal);
  }
}
