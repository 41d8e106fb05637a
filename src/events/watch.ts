/**
 * The watch algorithm shared by backends: subscribe first, then replay what
 * is stored, then stream live events, skipping any seq already yielded. A
 * subscriber that overflowed (or was poked) re-reads from the log.
 */
import type { Hub } from './subscription.js';
import { eventMatcher } from './filter.js';
import type { EventListQuery, EventPage, GcEvent, WatchOptions } from './types.js';

export async function* watchLog(
  hub: Hub,
  list: (q: EventListQuery) => Promise<EventPage>,
  afterSeq: number,
  options: WatchOptions,
): AsyncGenerator<GcEvent> {
  const signal = options.signal;
  const filter = options.filter ?? {};
  const matches = eventMatcher(filter);
  const sub = hub.subscribe();
  let last = afterSeq;
  try {
    let catchUp = true;
    while (!signal?.aborted && !sub.closed) {
      if (catchUp) {
        sub.overflowed = false;
        for (;;) {
          const page = await list({ ...filter, afterSeq: last, limit: 1000 });
          for (const e of page.items) {
            if (signal?.aborted) return;
            yield e;
          }
          if (page.next_after_seq !== null) last = Math.max(last, page.next_after_seq);
          const tail = page.items[page.items.length - 1];
          if (tail) last = Math.max(last, tail.seq);
          if (page.next_after_seq === null || page.items.length === 0) break;
        }
        catchUp = false;
      }
      const batch = await sub.take(signal);
      if (sub.overflowed) {
        catchUp = true;
        continue;
      }
      for (const e of batch) {
        if (e.seq <= last) continue;
        last = e.seq;
        if (!matches(e)) continue;
        if (signal?.aborted) return;
        yield e;
      }
    }
  } finally {
    hub.unsubscribe(sub);
  }
}
