/** Pure helpers shared by event log backends: validation and filtering. */
import { TooLargeError, ValidationError } from '../core/index.js';
import { MAX_EVENT_BYTES, type EventFilter, type EventInput, type GcEvent } from './types.js';

const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

export function checkEventInput(input: EventInput): void {
  if (typeof input !== 'object' || input === null)
    throw new ValidationError('event must be an object');
  if (typeof input.type !== 'string' || !TYPE_RE.test(input.type) || input.type.length > 128) {
    throw new ValidationError(
      `must be a dotted word like "bead.created", got ${JSON.stringify(input.type)}`,
      { where: 'event.type' },
    );
  }
  if (input.actor !== undefined && typeof input.actor !== 'string') {
    throw new ValidationError('must be a string', { where: 'event.actor' });
  }
  if (input.ts !== undefined && Number.isNaN(Date.parse(input.ts))) {
    throw new ValidationError(`not an RFC 3339 time: ${JSON.stringify(input.ts)}`, {
      where: 'event.ts',
    });
  }
}

/**
 * First segments of the event types gc itself records. An event emitted by
 * a person or an agent (POST /v0/events, gc event emit) may not use them:
 * nobody can forge a `bead.closed` or a `session.crashed`.
 */
export const RESERVED_EVENT_PREFIXES: readonly string[] = [
  'agent',
  'alert',
  'auth',
  'bead',
  'city',
  'controller',
  'convoy',
  'db',
  'key',
  'mail',
  'merge',
  'mq',
  'order',
  'rig',
  'run',
  'runtime',
  'server',
  'session',
  'webhook',
];

/** An emitted event's type: well formed and not one of gc's own. */
export function checkEmittedType(type: unknown): string {
  checkEventInput({ type } as EventInput);
  const first = (type as string).split(/[.:]/)[0]!;
  if (RESERVED_EVENT_PREFIXES.includes(first)) {
    throw new ValidationError(`"${first}." events are gc's own and cannot be emitted`, {
      where: 'event.type',
      fix: 'use a type of your own, such as "deploy.finished" or "custom.note"',
    });
  }
  return type as string;
}

/** The stored event without its seq (assigned by the log at write time). */
let lastTsMs = -1;
let lastTs = '';
/** RFC 3339 for an epoch-ms time; bursts share the formatting work of one millisecond. */
function isoTime(ms: number): string {
  if (ms !== lastTsMs) {
    lastTsMs = ms;
    lastTs = new Date(ms).toISOString();
  }
  return lastTs;
}

export function eventBody(input: EventInput, now: number): Omit<GcEvent, 'seq'> {
  const event: Omit<GcEvent, 'seq'> = {
    type: input.type,
    ts: input.ts ?? isoTime(now),
    actor: input.actor ?? '',
  };
  if (input.subject !== undefined) event.subject = input.subject;
  if (input.message !== undefined) event.message = input.message;
  if (input.payload !== undefined) event.payload = input.payload;
  return event;
}

/** Build the stored event; throws TooLargeError when its line would be too long. */
export function materialize(
  input: EventInput,
  seq: number,
  now: number,
): { event: GcEvent; line: string } {
  const event: GcEvent = { seq, ...eventBody(input, now) };
  const line = JSON.stringify(event) + '\n';
  if (line.length > MAX_EVENT_BYTES / 4 && Buffer.byteLength(line) > MAX_EVENT_BYTES) {
    throw new TooLargeError('event', Buffer.byteLength(line), MAX_EVENT_BYTES);
  }
  return { event, line };
}

/**
 * A `since` bound in epoch ms: a number, a string of digits (epoch ms, as a
 * query string carries a number) or an RFC 3339 time.
 */
export function sinceMs(since: number | string | undefined): number | undefined {
  if (since === undefined) return undefined;
  if (typeof since === 'number') return since;
  const t = /^\d{1,16}$/.test(since) ? Number(since) : Date.parse(since);
  if (Number.isNaN(t)) {
    throw new ValidationError(
      `expected an RFC 3339 time or epoch milliseconds, got ${JSON.stringify(since)}`,
      { where: 'since' },
    );
  }
  return t;
}

/** A predicate for a filter (afterSeq is handled by the caller's seek). */
export function eventMatcher(filter: EventFilter): (e: GcEvent) => boolean {
  const types =
    filter.type === undefined
      ? undefined
      : Array.isArray(filter.type)
        ? filter.type
        : [filter.type];
  const exact = new Set(types?.filter((t) => !t.endsWith('*')));
  const prefixes = types?.filter((t) => t.endsWith('*')).map((t) => t.slice(0, -1)) ?? [];
  const since = sinceMs(filter.since);
  return (e) => {
    if (types && !exact.has(e.type) && !prefixes.some((p) => e.type.startsWith(p))) return false;
    if (filter.actor !== undefined && e.actor !== filter.actor) return false;
    if (filter.subject !== undefined && e.subject !== filter.subject) return false;
    if (since !== undefined && Date.parse(e.ts) < since) return false;
    return true;
  };
}

export const DEFAULT_EVENT_PAGE = 1000;
export const MAX_EVENT_PAGE = 10_000;

export function eventPageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_EVENT_PAGE;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new ValidationError(`must be a positive integer, got ${String(limit)}`, {
      where: 'limit',
    });
  }
  return Math.min(limit, MAX_EVENT_PAGE);
}

export function checkAfterSeq(afterSeq: number | undefined): number {
  if (afterSeq === undefined) return 0;
  if (!Number.isInteger(afterSeq) || afterSeq < 0) {
    throw new ValidationError(`must be a non-negative integer, got ${String(afterSeq)}`, {
      where: 'after_seq',
    });
  }
  return afterSeq;
}
