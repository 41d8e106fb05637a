/**
 * The event log seam: append-only, sequenced. One writer per log (the city
 * server, or a CLI holding the city lock); any number of readers.
 */
import type { EventInput, EventListQuery, EventPage, GcEvent, WatchOptions } from './types.js';

export interface EventLog {
  readonly backend: string;

  /**
   * Append an event. Resolves with the stored event (seq and ts filled) only
   * after it is durable. Concurrent calls get distinct, gap-free seqs in the
   * order they were called. Rejects (and assigns no seq) on bad input or I/O
   * failure.
   */
  record(input: EventInput): Promise<GcEvent>;

  /** Events in seq order matching every given filter, one page at a time. */
  list(query?: EventListQuery): Promise<EventPage>;

  /** Highest durable seq; 0 for an empty log. */
  latestSeq(): Promise<number>;

  /**
   * Events with seq > afterSeq: first those already recorded, then new ones
   * as they become durable, with no gap and no duplicate. Ends when the
   * signal aborts (or the log closes).
   */
  watch(afterSeq: number, options?: WatchOptions): AsyncIterable<GcEvent>;

  /** Flush pending records and release files. Idempotent. */
  close(): Promise<void>;
}
