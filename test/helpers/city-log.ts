/**
 * A city's whole event log and store read through its API, and the check
 * crash tests share: the log has no gap, and replaying it gives the store's
 * beads (every committed change has its event, none is doubled).
 *
 * @example
 *   const get = (url: string) => apiCall({ socketPath }, 'GET', url, { token });
 *   await checkLogAgainstStore(get);
 */
import { expect } from 'vitest';
import { replayBeads } from '../../src/city/index.js';
import type { GcEvent } from '../../src/events/index.js';
import type { Bead } from '../../src/store/index.js';
import type { Reply } from './http.js';

/** GET a path of the city's API. */
export type CityGet = (url: string) => Promise<Reply>;

export async function allEvents(get: CityGet): Promise<GcEvent[]> {
  const out: GcEvent[] = [];
  let after = 0;
  for (;;) {
    const r = await get(`/v0/events?after_seq=${after}&limit=10000`);
    expect(r.status, r.text).toBe(200);
    const page = r.body as unknown as { items: GcEvent[]; next_after_seq: number | null };
    out.push(...page.items);
    if (page.next_after_seq === null || page.items.length === 0) return out;
    after = page.next_after_seq;
  }
}

export async function allBeads(get: CityGet): Promise<Bead[]> {
  const out: Bead[] = [];
  let cursor = '';
  for (;;) {
    const r = await get(
      `/v0/beads?scan=true&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(r.status, r.text).toBe(200);
    const page = r.body as unknown as { items: Bead[]; next_cursor: string | null };
    out.push(...page.items);
    if (!page.next_cursor) return out;
    cursor = page.next_cursor;
  }
}

/** The log is gap-free and replays to the store's beads (messages are mail: no bead.* events). */
export async function checkLogAgainstStore(get: CityGet): Promise<GcEvent[]> {
  const events = await allEvents(get);
  events.forEach((e, i) => expect(e.seq, 'gap-free log').toBe(i + 1));
  const replayed = replayBeads(events);
  const beads = (await allBeads(get)).filter((b) => b.issue_type !== 'message');
  expect(replayed.size).toBe(beads.length);
  for (const b of beads) {
    const r = replayed.get(b.id);
    expect(r, `bead ${b.id} has its events`).toBeDefined();
    expect({ status: r!.status, assignee: r!.assignee, attempt: r!.attempt }).toEqual({
      status: b.status,
      assignee: b.assignee,
      attempt: b.attempt,
    });
  }
  return events;
}
