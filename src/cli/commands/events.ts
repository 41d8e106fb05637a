/** `gc events`: list and follow the event log. */
import { ValidationError } from '../../core/index.js';
import type { CityClient } from '../../client/index.js';
import type { EventListQuery, GcEvent } from '../../events/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { clip, printJson, printLine, table, writeOut } from '../output.js';
import { parseLimit, splitList } from './beads.js';

export interface EventsArgs {
  type?: string[];
  actor?: string;
  since?: string;
  after?: string;
  last?: string;
  limit?: string;
  follow?: boolean;
  /** false with --no-reconnect. */
  reconnect?: boolean;
}

/** An absolute time for --since (durations are handled by the caller). */
function parseSince(value: string): number {
  const t = Date.parse(value);
  if (!Number.isNaN(t)) return t;
  throw new ValidationError(
    `expected an RFC 3339 time or a duration like 10m, got ${JSON.stringify(value)}`,
    { where: '--since' },
  );
}

const row = (e: GcEvent): string[] => [
  String(e.seq),
  e.ts.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
  e.type,
  e.actor || '-',
  e.subject ?? '-',
  clip(e.message ?? '', 50),
];
const HEAD = ['SEQ', 'TIME', 'TYPE', 'ACTOR', 'SUBJECT', 'MESSAGE'];

export async function events(g: GlobalOptions, a: EventsArgs): Promise<void> {
  const { parseDuration } = await import('../../core/index.js');
  let since: number | undefined;
  if (a.since) {
    try {
      since = Date.now() - parseDuration(a.since);
    } catch {
      since = parseSince(a.since);
    }
  }
  const types = splitList(a.type);
  const filter: EventListQuery = {
    ...(types ? { type: types } : {}),
    ...(a.actor ? { actor: a.actor } : {}),
    ...(since !== undefined ? { since } : {}),
  };
  const after = a.after !== undefined ? Number(a.after) : undefined;
  if (after !== undefined && (!Number.isInteger(after) || after < 0)) {
    throw new ValidationError(`expected a non-negative integer, got ${JSON.stringify(a.after)}`, {
      where: '--after',
    });
  }
  const last = parseLimit(a.last, '--last');
  const limit = parseLimit(a.limit) ?? 1000;
  await withCity(
    g,
    'events',
    async (city) => {
      let start = after ?? 0;
      if (after === undefined && last !== undefined) {
        const filtered = Object.keys(filter).length > 0;
        // Without a filter the last n are the last n seqs; with one, the
        // last n that match (a scan of the log, as any filtered listing is).
        start = filtered
          ? await startOfLastMatching(city, filter, last)
          : Math.max(0, (await city.latestEventSeq()) - last);
      }
      if (a.follow) {
        if (after === undefined && last === undefined) start = await city.latestEventSeq();
        const ac = new AbortController();
        const stop = (): void => ac.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        // Streams cannot be column-aligned ahead of time: fixed separators instead.
        const follow = city.watchEvents(start, {
          signal: ac.signal,
          filter,
          reconnect: a.reconnect !== false,
          onStatus: (m) => process.stderr.write(`gc: ${m}\n`),
        });
        for await (const e of follow) {
          await writeOut((g.json ? JSON.stringify(e) : row(e).join('  ')) + '\n', !g.json);
        }
        return;
      }
      const page = await city.listEvents({ ...filter, afterSeq: start, limit });
      if (g.json) printJson(page.items);
      else {
        printLine(page.items.length ? table(HEAD, page.items.map(row)) : 'no events');
        if (page.next_after_seq !== null) printLine(`more: --after ${page.next_after_seq}`);
      }
    },
    { readonly: true },
  );
}

/** The seq just before the first of the last `n` events matching `filter`. */
async function startOfLastMatching(
  city: CityClient,
  filter: EventListQuery,
  n: number,
): Promise<number> {
  const seqs: number[] = [];
  let after = 0;
  for (;;) {
    const page = await city.listEvents({ ...filter, afterSeq: after, limit: 10_000 });
    for (const e of page.items) {
      seqs.push(e.seq);
      if (seqs.length >= 2 * n + 1024) seqs.splice(0, seqs.length - n);
    }
    if (page.next_after_seq === null) break;
    after = page.next_after_seq;
  }
  const kept = seqs.slice(-n);
  return kept.length ? kept[0]! - 1 : after;
}

export interface EmitArgs {
  subject?: string;
  message?: string;
  payload?: string;
}

/** `gc event emit TYPE`: record an event as the caller. */
export async function emit(g: GlobalOptions, type: string, o: EmitArgs): Promise<void> {
  let payload: unknown;
  if (o.payload !== undefined) {
    try {
      payload = JSON.parse(o.payload);
    } catch (e) {
      throw new ValidationError(`not JSON: ${(e as Error).message}`, {
        where: '--payload',
        fix: `quote it for the shell: --payload '{"key": "value"}'`,
      });
    }
  }
  await withCity(g, 'event emit', async (city) => {
    const e = await city.emitEvent({
      type,
      ...(o.subject !== undefined ? { subject: o.subject } : {}),
      ...(o.message !== undefined ? { message: o.message } : {}),
      ...(payload !== undefined ? { payload } : {}),
    });
    if (g.json) printJson(e);
    else printLine(`recorded ${e.type} as event ${e.seq}`);
  });
}
