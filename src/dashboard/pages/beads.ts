/** Beads: a board by status with filters, and one bead with its dependencies and history. */
import type { Bead, BeadStatus, ListQuery } from '../../store/index.js';
import { ago, badge, html, nothing, qs, seg, table } from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { param } from './common.js';

const COLUMN = 50;
const COLUMNS: [BeadStatus, string][] = [
  ['open', 'Open'],
  ['in_progress', 'In progress'],
  ['closed', 'Closed'],
];

function card(b: Bead): ReturnType<typeof html> {
  return html`<li class="card">
    <a href="/ui/beads/${seg(b.id)}">${b.id}</a> ${b.title}
    <span class="muted"
      >${b.issue_type}${b.assignee ? html` · ${b.assignee}` : nothing} · P${b.priority}</span
    >
  </li>`;
}

export async function beadsPage(ctx: PageCtx): Promise<Page> {
  const store = ctx.host.ops.store;
  const type = param(ctx, 'type');
  const assignee = param(ctx, 'assignee');
  const label = param(ctx, 'label');
  const only = param(ctx, 'status');
  const filter: ListQuery = {
    work: true,
    ...(type ? { type } : {}),
    ...(assignee ? { assignee } : {}),
    ...(label ? { label } : {}),
  };
  const columns = await Promise.all(
    COLUMNS.filter(([s]) => !only || s === only).map(async ([status, title]) => {
      const [page, count] = await Promise.all([
        store.list({ ...filter, status, limit: COLUMN }),
        store.count({ ...filter, status }),
      ]);
      return html`<section class="column" aria-labelledby="col-${status}">
        <h2 id="col-${status}">${title} <span class="count">${count}</span></h2>
        ${
          page.items.length
            ? html`<ul class="cards">
                ${page.items.map(card)}
              </ul>`
            : html`<p class="empty">None.</p>`
        }
        ${
          count > page.items.length
            ? html`<p class="muted">
                Showing ${page.items.length} of ${count}: narrow the filter.
              </p>`
            : nothing
        }
      </section>`;
    }),
  );
  const filters = html`<form class="filters" method="get" action="/ui/beads" role="search">
    <label>Type <input name="type" value="${type}" /></label>
    <label>Assignee <input name="assignee" value="${assignee}" /></label>
    <label>Label <input name="label" value="${label}" /></label>
    <label
      >Status
      <select name="status">
        <option value="">any</option>
        ${COLUMNS.map(
          ([s, t]) =>
            html`<option value="${s}" ${s === only ? html`selected` : nothing}>${t}</option>`,
        )}
      </select></label
    >
    <button type="submit">Filter</button>
  </form>`;
  return {
    title: 'Beads',
    nav: 'beads',
    main: html`${filters}${ctx.part('board', 'bead.*', html`<div class="board">${columns}</div>`)}`,
  };
}

export async function beadPage(ctx: PageCtx): Promise<Page> {
  const id = ctx.params[0]!;
  const { host } = ctx;
  const store = host.ops.store;
  const bead = await store.get(id);
  if (bead.issue_type === 'message' && ctx.session.role !== 'operator') {
    return {
      title: id,
      nav: 'beads',
      main: html`<p>This bead is mail: operators read it on the mail page.</p>`,
    };
  }
  const [down, up, kids] = await Promise.all([
    store.listDependencies(id, 'down'),
    store.listDependencies(id, 'up'),
    store.children(id, { limit: 100 }),
  ]);
  // From a minute before the bead (its event's time and its own are taken
  // apart, and clocks of several servers differ a little).
  const since = Date.parse(bead.created_at) - 60_000;
  const history = await host.ops.events.list({ subject: id, since, limit: 200 });
  const requests = await host.refinery.queue.forBead(id, 10);
  const facts = html`<dl class="facts">
    <dt>Title</dt>
    <dd>${bead.title}</dd>
    <dt>Status</dt>
    <dd>
      ${badge(bead.status)}
      ${bead.close_reason ? html`<span class="muted">${bead.close_reason}</span>` : nothing}
    </dd>
    <dt>Type</dt>
    <dd>${bead.issue_type}</dd>
    <dt>Priority</dt>
    <dd>P${bead.priority}</dd>
    <dt>Assignee</dt>
    <dd>
      ${bead.assignee ? html`<a href="/ui/sessions/${seg(bead.assignee)}">${bead.assignee}</a>` : '-'}
    </dd>
    <dt>Parent</dt>
    <dd>${bead.parent ? html`<a href="/ui/beads/${seg(bead.parent)}">${bead.parent}</a>` : '-'}</dd>
    <dt>Labels</dt>
    <dd>${bead.labels.join(', ') || '-'}</dd>
    <dt>Created</dt>
    <dd>${ago(bead.created_at, ctx.now)}</dd>
    ${
      bead.closed_at
        ? html`<dt>Closed</dt>
            <dd>${ago(bead.closed_at, ctx.now)}</dd>`
        : nothing
    }
  </dl>`;
  const deps = (title: string, rows: typeof down, key: 'depends_on_id' | 'issue_id') =>
    table(
      title,
      ['Bead', 'Type'],
      rows,
      (d) =>
        html`<tr>
          <td><a href="/ui/beads/${seg(d[key])}">${d[key]}</a></td>
          <td>${d.type}</td>
        </tr>`,
      `${title}: none.`,
    );
  const main = html`
    ${ctx.part('facts', 'bead.*', facts)}
    ${
      bead.description
        ? html`<section aria-labelledby="h-desc">
            <h2 id="h-desc">Description</h2>
            <pre class="text">${bead.description}</pre>
          </section>`
        : nothing
    }
    <section aria-labelledby="h-deps">
      <h2 id="h-deps">Dependencies</h2>
      ${deps('It waits for', down, 'depends_on_id')} ${deps('Waiting on it', up, 'issue_id')}
      ${
        kids.items.length
          ? table(
              'Children',
              ['Bead', 'Title', 'Status'],
              kids.items,
              (k) =>
                html`<tr>
                  <td><a href="/ui/beads/${seg(k.id)}">${k.id}</a></td>
                  <td>${k.title}</td>
                  <td>${badge(k.status)}</td>
                </tr>`,
            )
          : nothing
      }
    </section>
    <section aria-labelledby="h-mr">
      <h2 id="h-mr">Merge requests</h2>
      ${table(
        'Merge requests for this bead',
        ['Request', 'Rig', 'State', 'Merged as'],
        requests,
        (m) =>
          html`<tr>
            <td><a href="/ui/mq${qs({ rig: m.rig })}#${m.id}">${m.id}</a></td>
            <td>${m.rig}</td>
            <td>${badge(m.state)}</td>
            <td><code>${m.merged_sha.slice(0, 12) || '-'}</code></td>
          </tr>`,
        'No merge request names this bead.',
      )}
    </section>
    ${ctx.part(
      'history',
      'bead.* mq.*',
      html`<section aria-labelledby="h-hist">
        <h2 id="h-hist">History</h2>
        ${table(
          'Events about this bead',
          ['#', 'When', 'Type', 'Actor', 'Message'],
          history.items,
          (e) =>
            html`<tr>
              <td>${e.seq}</td>
              <td>${ago(e.ts, ctx.now)}</td>
              <td>${e.type}</td>
              <td>${e.actor}</td>
              <td>${e.message ?? ''}</td>
            </tr>`,
          'No events.',
        )}
      </section>`,
    )}
  `;
  return { title: `Bead ${id}`, nav: 'beads', main };
}
