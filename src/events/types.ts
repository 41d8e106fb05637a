/** Event types: the append-only record of every state change in a city. */

export interface GcEvent {
  /** Gap-free, increasing, assigned by the log. */
  seq: number;
  type: string;
  /** RFC 3339; filled in by the log when the caller gives none. */
  ts: string;
  actor: string;
  subject?: string;
  message?: string;
  payload?: unknown;
}

export interface EventInput {
  type: string;
  actor?: string;
  subject?: string;
  message?: string;
  payload?: unknown;
  ts?: string;
}

export interface EventFilter {
  /** Exact type, a list of types, or a prefix ending in `*` (e.g. `bead.*`). */
  type?: string | string[];
  actor?: string;
  subject?: string;
  /** Only events at or after this time (epoch ms or RFC 3339). */
  since?: number | string;
  /** Only events with seq > afterSeq. */
  afterSeq?: number;
}

export interface EventListQuery extends EventFilter {
  /** Page size; default 1000, at most 10000. */
  limit?: number;
}

export interface EventPage {
  items: GcEvent[];
  /** Pass as `afterSeq` to get the next page; null when no more events exist now. */
  next_after_seq: number | null;
  /** Damaged lines met (and skipped) while reading this page; absent when none. */
  corrupt?: CorruptLine[];
}

/** A line of the log that is not an event: where it is and between which events. */
export interface CorruptLine {
  file: string;
  /** Byte offset of the line in `file`. */
  offset: number;
  /** The last good seq before it (0: none in this read). */
  after_seq: number;
  /** The first good seq after it in this page, when there is one. */
  before_seq?: number | undefined;
  error: string;
}

export interface WatchOptions {
  signal?: AbortSignal;
  filter?: Omit<EventFilter, 'afterSeq'>;
}

/** Largest serialized event accepted. */
export const MAX_EVENT_BYTES = 1024 * 1024;
