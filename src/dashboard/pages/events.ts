/** Events: the latest, filtered by type and actor, and new ones as they come (resumable). */
import type { GcEvent } from '../../events/index.js';
import { ValidationError } from '../../core/index.js';
import { html } from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { param } from './common.js';

const SHOWN = 100;
/** How far back the page looks for matching events. */
const WINDOW = 5000;

export async function eventsPage(ctx: PageCtx): Promise<Page> {
  const type = param(ctx, 'type');
  const actor = param(ctx, 'actor');
  if (type && !/^[A-Za-z0-9_.:-]+\*?$/.test(type)) {
    throw new ValidationError('a type is letters, digits and . _ : - (a prefix ends in *)', {
      where: 'type',
    });
  }
  const events = ctx.host.ops.events;
  await ctx.host.ops.published();
  const latest = await events.latestSeq();
  const page = await events.list({
    afterSeq: Math.max(0, latest - WINDOW),
    limit: WINDOW,
    ...(type ? { type } : {}),
    ...(actor ? { actor } : {}),
  });
  const rows: GcEvent[] = page.items.slice(-SHOWN).reverse();
  const main = html`<form class="filters" method="get" action="/ui/events" role="search">
      <label
        >Type (prefix ends in *) <input name="type" value="${type}" placeholder="bead.*"
      /></label>
      <label>Actor <input name="actor" value="${actor}" /></label>
      <button type="submit">Filter</button>
    </form>
    <table>
      <caption>
        Newest first: the last ${rows.length} matching of the latest ${WINDOW} events; new ones
        appear at the top
      </caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Time</th>
          <th scope="col">Type</th>
          <th scope="col">Actor</th>
          <th scope="col">Subject</th>
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody data-tail data-type="${type}" data-actor="${actor}">
        ${rows.map(
          (e) =>
            html`<tr>
              <td>${e.seq}</td>
              <td><time datetime="${e.ts}">${e.ts.slice(11, 19)}</time></td>
              <td>${e.type}</td>
              <td>${e.actor}</td>
              <td>${e.subject ?? ''}</td>
              <td>${e.message ?? ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
  return { title: 'Events', nav: 'events', main };
}
