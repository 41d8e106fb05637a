/** Convoys: their progress, and one convoy's waves as a dependency graph. */
import { convoyStatus, listConvoys } from '../../dispatch/index.js';
import { badge, html, nothing, progress, seg, table, type Html } from '../html.js';
import type { Page, PageCtx } from '../page.js';

export async function convoysPage(ctx: PageCtx): Promise<Page> {
  const all = ctx.url.searchParams.get('all') === 'true';
  const list = await listConvoys(ctx.host.ops, { all, limit: 200 });
  const body = table(
    all ? 'Convoys' : 'Open convoys',
    ['Convoy', 'Title', 'Status', 'Owner', 'Progress', 'Waves released'],
    list.items,
    (c) =>
      html`<tr>
        <td><a href="/ui/convoys/${seg(c.id)}">${c.id}</a></td>
        <td>${c.title}</td>
        <td>${badge(c.status)}</td>
        <td>${c.owner || '-'}</td>
        <td>${progress(`${c.id} closed beads`, c.closed, c.total)}</td>
        <td>${c.waves_released ?? '-'}</td>
      </tr>`,
    'No open convoy.',
  );
  return {
    title: 'Convoys',
    nav: 'convoys',
    main: html`<p>
        ${
          all
            ? html`<a href="/ui/convoys">Only open convoys</a>`
            : html`<a href="/ui/convoys?all=true">Closed convoys too</a>`
        }
      </p>
      ${ctx.part('list', 'bead.* convoy.*', body)}`,
  };
}

/** The waves left to right, each bead a box, lines for dependencies between the convoy's beads. */
function graph(
  waves: { wave: number; beads: { id: string; status: string }[] }[],
  deps: Map<string, string[]>,
): Html {
  const colW = 170;
  const rowH = 34;
  const shown = waves.map((w) => w.beads.slice(0, 40));
  const height = Math.max(1, ...shown.map((b) => b.length)) * rowH + 30;
  const width = Math.max(1, shown.length) * colW;
  const at = new Map<string, { x: number; y: number }>();
  shown.forEach((beads, i) =>
    beads.forEach((b, j) => at.set(b.id, { x: i * colW + 10, y: j * rowH + 28 })),
  );
  const lines: Html[] = [];
  for (const [from, tos] of deps) {
    const a = at.get(from);
    if (!a) continue;
    for (const to of tos) {
      const b = at.get(to);
      if (b)
        lines.push(
          html`<line x1="${b.x + 140}" y1="${b.y + 11}" x2="${a.x}" y2="${a.y + 11}"></line>`,
        );
    }
  }
  const boxes = shown.flatMap((beads, i) => [
    html`<text x="${i * colW + 10}" y="16" class="head">wave ${waves[i]!.wave}</text>`,
    ...beads.map((b) => {
      const p = at.get(b.id)!;
      // No links inside the picture (it is one image to assistive
      // technology); the tables below link each bead.
      return html`<g class="node ${b.status}">
        <title>${b.id}: ${b.status}</title>
        <rect x="${p.x}" y="${p.y}" width="140" height="22" rx="4"></rect>
        <text x="${p.x + 6}" y="${p.y + 15}">${b.id}</text>
      </g>`;
    }),
  ]);
  return html`<figure class="graph">
    <svg
      viewBox="0 0 ${width} ${height}"
      width="${width}"
      height="${height}"
      role="img"
      aria-label="Dependency graph of the convoy's beads by wave"
    >
      <g class="edges">${lines}</g>
      ${boxes}
    </svg>
    <figcaption>Beads by wave; a line joins a bead to one it waits for.</figcaption>
  </figure>`;
}

export async function convoyPage(ctx: PageCtx): Promise<Page> {
  const id = ctx.params[0]!;
  const { host } = ctx;
  const st = await convoyStatus(host.ops, id, (bead) => host.refinery.queue.hasPending(bead));
  const ids = st.waves.flatMap((w) => w.beads.map((b) => b.id));
  const beads = ids.length ? await host.ops.store.getMany(ids.slice(0, 2000)) : [];
  const deps = new Map(
    beads.map((b) => [
      b.id,
      b.dependencies.filter((d) => d.type !== 'parent-child').map((d) => d.depends_on_id),
    ]),
  );
  const waves = st.waves.map(
    (w) =>
      html`<section aria-labelledby="w-${w.wave}">
        <h3 id="w-${w.wave}">
          Wave ${w.wave} ${w.released ? badge('released') : badge('waiting')}
        </h3>
        ${table(
          `Wave ${w.wave}`,
          ['Bead', 'Title', 'Status', 'Assignee', 'Landed'],
          w.beads,
          (b) =>
            html`<tr>
              <td><a href="/ui/beads/${seg(b.id)}">${b.id}</a></td>
              <td>${b.title}</td>
              <td>${badge(b.status)}</td>
              <td>${b.assignee || '-'}</td>
              <td>${b.landed ? 'yes' : 'no'}</td>
            </tr>`,
        )}
      </section>`,
  );
  const main = ctx.part(
    'convoy',
    'bead.* convoy.* mq.merged',
    html`<p>${st.convoy.title}</p>
      <p>${progress('closed beads', st.closed, st.total)} closed · ${st.landed} landed</p>
      ${graph(st.waves, deps)} ${waves.length ? waves : nothing}`,
  );
  return { title: `Convoy ${id}`, nav: 'convoys', main };
}
