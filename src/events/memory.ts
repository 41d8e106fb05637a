/** In-memory event log: the reference implementation, for tests and throwaway cities. */
import { ConflictError, systemClock, type Clock } from '../core/index.js';
import type { EventLog } from './event-log.js';
import {
  checkAfterSeq,
  checkEventInput,
  eventMatcher,
  eventPageSize,
  materialize,
} from './filter.js';
import { Hub } from './subscription.js';
import type { EventInput, EventListQuery, EventPage, GcEvent, WatchOptions } from './types.js';
import { watchLog } from './watch.js';

export class MemoryEventLog implements EventLog {
  readonly backend = 'memory';
  private readonly events: GcEvent[] = [];
  private readonly hub = new Hub();
  private closed = false;

  constructor(private readonly clock: Clock = systemClock) {}

  record(input: EventInput): Promise<GcEvent> {
    try {
      if (this.closed) throw new ConflictError('event log is closed');
      checkEventInput(input);
      const { event } = materialize(input, this.events.length + 1, this.clock.now());
      this.events.push(event);
      // Publish asynchronously, as a durable backend would.
      queueMicrotask(() => this.hub.publish([event]));
      return Promise.resolve(event);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  list(query: EventListQuery = {}): Promise<EventPage> {
    try {
      const limit = eventPageSize(query.limit);
      const after = checkAfterSeq(query.afterSeq);
      const matches = eventMatcher(query);
      const items: GcEvent[] = [];
      let scanned = after;
      for (let i = after; i < this.events.length; i++) {
        const e = this.events[i] as GcEvent;
        scanned = e.seq;
        if (!matches(e)) continue;
        items.push(e);
        if (items.length === limit) break;
      }
      const more = scanned < this.events.length;
      return Promise.resolve({ items, next_after_seq: more ? scanned : null });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  latestSeq(): Promise<number> {
    return Promise.resolve(this.events.length);
  }

  watch(afterSeq: number, options: WatchOptions = {}): AsyncIterable<GcEvent> {
    return watchLog(this.hub, (q) => this.list(q), afterSeq, options);
  }

  close(): Promise<void> {
    this.closed = true;
    this.hub.closeAll();
    return Promise.resolve();
  }
}
