/** The overview: what needs a human, what is working, idle, done; the city's pulse. */
import { badge, bars, html, nothing, pct, qs, seg, stat, usd } from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { sessionRows } from './common.js';

export async function overviewPage(ctx: PageCtx): Promise<Page> {
  const { host } = ctx;
  const status = host.controller.status();
  const rows = sessionRows(ctx);
  const store = host.ops.store;
  // Who holds work: one count per holder, however many claims there are.
  const { claims } = await store.workload();
  const holders = new Set(claims.filter((c) => c.in_progress > 0).map((c) => c.assignee));
  const running = rows.filter((s) => s.state === 'running');
  const working = running.filter((s) => holders.has(s.name)).length;
  const quarantined = rows.filter((s) => s.state === 'quarantined').length;
  const crashed = rows.filter((s) => s.state === 'dead').length + status.failing.length;
  const findings = host.patrol.report().findings;
  const stalled = findings.filter((f) => f.kind === 'stalled').length;
  const tripped = host.budgets.view().filter((b) => b.tripped).length;
  const firing = host.alerts.active().filter((a) => a.state === 'firing').length;
  const conflicts = await host.refinery.list({
    states: ['needs-rebase', 'needs-fix'],
    limit: 1000,
  });
  const stats = await host.refinery.stats();
  const depth = stats.reduce((n, s) => n + s.depth, 0);
  const attempts = stats.reduce((n, s) => n + s.merged_total, 0);
  const conflictRate = stats.length
    ? stats.reduce((n, s) => n + s.conflict_rate * Math.max(1, s.merged_total), 0) /
      Math.max(1, attempts || stats.length)
    : 0;
  const day = new Date(ctx.now);
  day.setUTCHours(0, 0, 0, 0);
  const [today] = await host.usage.totals({ since: day.getTime() });
  const counts = await store.counts();
  const perHour = ctx.activity.perHour();
  const closedDay = perHour.reduce((n, h) => n + h.closed, 0);

  const human = [
    stat(
      'quarantined',
      quarantined,
      `/ui/sessions${qs({ state: 'quarantined' })}`,
      quarantined ? 'bad' : '',
    ),
    stat('stalled', stalled, '/ui/alerts', stalled ? 'bad' : ''),
    stat(
      'crashed or failing',
      crashed,
      `/ui/sessions${qs({ state: 'dead' })}`,
      crashed ? 'bad' : '',
    ),
    stat('budgets tripped', tripped, '/ui/costs', tripped ? 'bad' : ''),
    stat(
      'conflicts and gate failures waiting',
      conflicts.items.length,
      '/ui/mq',
      conflicts.items.length ? 'bad' : '',
    ),
    stat('alerts firing', firing, '/ui/alerts', firing ? 'bad' : ''),
  ];
  // What went wrong, in words: start failures with their fix, patrol
  // findings, firing alerts (the first few of each; their pages have all).
  const problems = [
    ...status.failing
      .slice(0, 5)
      .map(
        (f) =>
          html`<li>
            ${badge('failing')} agent <strong>${f.agent}</strong> (${f.session}): ${f.error}
            ${f.fix ? html`<span class="muted">Fix: ${f.fix}</span>` : nothing}
          </li>`,
      ),
    ...findings
      .slice(0, 5)
      .map(
        (f) =>
          html`<li>
            ${badge(f.kind)}
            ${f.rig || 'city'}${f.session ? html` · <a href="/ui/sessions/${seg(f.session)}">${f.session}</a>` : nothing}:
            ${f.detail} <span class="muted">(step: ${f.step || 'none yet'})</span>
          </li>`,
      ),
    ...host.alerts
      .active()
      .filter((a) => a.state === 'firing')
      .slice(0, 5)
      .map(
        (a) =>
          html`<li>
            ${badge('firing')} ${a.alert}${a.rig ? ` (${a.rig})` : ''}: ${a.metric} at
            ${Number(a.value.toFixed(3))}, over ${a.above}
          </li>`,
      ),
    ...(status.config_error
      ? [html`<li>${badge('config error')} ${status.config_error}</li>`]
      : []),
    ...(status.provider_stale
      ? [
          html`<li>
            ${badge('stale')} the session provider's view is stale: ${status.provider_stale.reason}
          </li>`,
        ]
      : []),
  ];
  const fleet = [
    stat('working', working, `/ui/sessions${qs({ state: 'running' })}`),
    stat('idle', running.length - working, `/ui/sessions${qs({ state: 'running' })}`),
    stat('starting', rows.filter((s) => s.state === 'starting').length),
    stat('sessions', rows.length, '/ui/sessions'),
    stat('closed in 24 h', closedDay, `/ui/beads${qs({ status: 'closed' })}`),
  ];
  const work = [
    stat('open beads', counts.open, `/ui/beads`),
    stat('in progress', counts.in_progress, `/ui/beads`),
    stat('ready', counts.ready),
    stat('merge queue depth', depth, '/ui/mq'),
    stat('conflict rate', pct(conflictRate), '/ui/mq'),
    stat('cost today', usd(today?.cost_usd ?? 0), '/ui/costs'),
  ];
  const chart = bars(
    'Beads closed per hour, last 24 hours',
    perHour.map((h) => ({
      label: `${String(new Date(h.hour).getUTCHours()).padStart(2, '0')}h`,
      value: h.closed,
    })),
  );
  const main = html`
    ${ctx.part(
      'human',
      'session.* controller.* patrol.* alert.* mq.* budget.* cost.*',
      html`<section aria-labelledby="h-human">
        <h2 id="h-human">Needs a human</h2>
        <div class="stats">${human}</div>
        ${
          problems.length
            ? html`<ul class="problems" aria-label="Problems">
                ${problems}
              </ul>`
            : nothing
        }
      </section>`,
    )}
    ${ctx.part(
      'fleet',
      'session.* bead.* controller.*',
      html`<section aria-labelledby="h-fleet">
          <h2 id="h-fleet">Fleet</h2>
          <div class="stats">${fleet}</div>
        </section>
        <section aria-labelledby="h-work">
          <h2 id="h-work">Work</h2>
          <div class="stats">${work}</div>
        </section>`,
    )}
    ${ctx.part(
      'chart',
      'bead.closed',
      html`<section aria-labelledby="h-thr">
        <h2 id="h-thr">Throughput</h2>
        ${chart}
      </section>`,
    )}
  `;
  return { title: 'Overview', nav: 'overview', main };
}
