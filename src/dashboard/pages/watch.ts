/** Alerts (with the health patrol's findings) and costs (per agent and rig, per day, budgets). */
import { ago, badge, bars, html, nothing, pct, table, usd } from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { param } from './common.js';

export function alertsPage(ctx: PageCtx): Promise<Page> {
  const { host } = ctx;
  const active = host.alerts.active();
  const report = host.patrol.report();
  const body = html`<section aria-labelledby="h-al">
      <h2 id="h-al">Alerts pending or firing</h2>
      ${table(
        'Active alerts',
        ['Alert', 'Rig', 'State', 'Severity', 'Value', 'Over', 'Since'],
        active,
        (a) =>
          html`<tr>
            <td>${a.alert}</td>
            <td>${a.rig || 'city'}</td>
            <td>${badge(a.state)}</td>
            <td>${a.severity}</td>
            <td>${Number(a.value.toFixed(3))}</td>
            <td>${a.above}</td>
            <td>${ago(a.since, ctx.now)}</td>
          </tr>`,
        'No alert is pending or firing.',
      )}
    </section>
    <section aria-labelledby="h-pat">
      <h2 id="h-pat">Health patrol findings</h2>
      <p class="muted">
        ${report.enabled ? html`Last pass ${ago(report.last?.at, ctx.now)}, median ${report.ms_p50} ms.` : 'The patrol is off.'}
      </p>
      ${table(
        'Open findings',
        ['Finding', 'Rig', 'Session', 'Detail', 'Step taken', 'Since'],
        report.findings,
        (f) =>
          html`<tr>
            <td>${badge(f.kind)}</td>
            <td>${f.rig || 'city'}</td>
            <td>
              ${f.session ? html`<a href="/ui/sessions/${encodeURIComponent(f.session)}">${f.session}</a>` : '-'}
            </td>
            <td>${f.detail}</td>
            <td>${f.step || '-'}</td>
            <td>${ago(f.since, ctx.now)}</td>
          </tr>`,
        'Nothing found.',
      )}
    </section>`;
  return Promise.resolve({
    title: 'Alerts',
    nav: 'alerts',
    main: ctx.part('alerts', 'alert.* patrol.*', body),
  });
}

const DAY = 86_400_000;

export async function costsPage(ctx: PageCtx): Promise<Page> {
  const { usage, budgets } = ctx.host;
  const agent = param(ctx, 'agent');
  const rig = param(ctx, 'rig');
  const today = Math.floor(ctx.now / DAY) * DAY;
  const since = today - 13 * DAY;
  const only = { ...(agent ? { agent } : {}), ...(rig ? { rig } : {}) };
  const days = await Promise.all(
    Array.from({ length: 14 }, (_, i) => since + i * DAY).map(async (d) => {
      const [t] = await usage.totals({ since: d, until: d + DAY, ...only });
      return { label: new Date(d).toISOString().slice(5, 10), value: t?.cost_usd ?? 0 };
    }),
  );
  const [byAgent, byRig] = await Promise.all([
    usage.totals({ by: 'agent', since }),
    usage.totals({ by: 'rig', since }),
  ]);
  const pick = (name: string, label: string, chosen: string, keys: string[]) =>
    html`<label
      >${label}
      <select name="${name}">
        <option value="">all</option>
        ${keys.map((k) => html`<option ${k === chosen ? html`selected` : nothing}>${k}</option>`)}
      </select></label
    >`;
  const whose =
    agent || rig
      ? ` (${[agent && `agent ${agent}`, rig && `rig ${rig}`].filter(Boolean).join(', ')})`
      : '';
  const filters = html`<form class="filters" method="get" action="/ui/costs" role="search">
    ${pick('agent', 'Agent', agent, byAgent.map((t) => t.key).filter(Boolean))}
    ${pick('rig', 'Rig', rig, byRig.map((t) => t.key).filter(Boolean))}
    <button type="submit">Show</button>
  </form>`;
  const totals = (caption: string, rows: typeof byAgent, what: string) =>
    table(
      caption,
      [what, 'Cost', 'Tokens', 'Records', 'Unpriced'],
      rows.slice(0, 50),
      (t) =>
        html`<tr>
          <td>${t.key || '(none)'}</td>
          <td>${usd(t.cost_usd)}</td>
          <td>${t.tokens.toLocaleString('en')}</td>
          <td>${t.records}</td>
          <td>${t.unpriced}</td>
        </tr>`,
      'No usage recorded.',
    );
  const views = budgets.view();
  const body = html`${bars(`Cost per day, last 14 days (USD)${whose}`, days, usd)}
    <div class="two">
      ${totals('Cost per agent, last 14 days', byAgent, 'Agent')}
      ${totals('Cost per rig, last 14 days', byRig, 'Rig')}
    </div>
    <section aria-labelledby="h-bud">
      <h2 id="h-bud">Budgets</h2>
      ${table(
        'Budgets this window',
        ['Budget', 'Scope', 'Window', 'Spent', 'Of', 'Used', 'State', 'Holding'],
        views,
        (b) =>
          html`<tr>
            <td>${b.name}</td>
            <td>${b.scope}</td>
            <td>${b.window}</td>
            <td>${b.unit === 'usd' ? usd(b.spent) : b.spent}</td>
            <td>${b.unit === 'usd' ? usd(b.amount) : b.amount}</td>
            <td>${pct(b.amount ? b.spent / b.amount : 0)}</td>
            <td>${b.tripped ? badge('tripped') : badge('ok')}</td>
            <td>${b.holding.join(', ') || nothing}</td>
          </tr>`,
        'No budget is set ([[budgets]] in city.toml).',
      )}
    </section>`;
  return {
    title: 'Costs',
    nav: 'costs',
    main: html`${filters}${ctx.part('costs', 'cost.* budget.* usage.*', body)}`,
  };
}
