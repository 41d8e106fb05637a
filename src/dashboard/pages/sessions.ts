/** Sessions: a paged, filtered list (fast at thousands), and one session's page. */
import { validateSessionName } from '../../runtime/index.js';
import { NotFoundError } from '../../core/index.js';
import { action, ago, badge, html, nothing, qs, seg, table } from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { param, sessionRows } from './common.js';

const PAGE = 100;
const STATES = ['starting', 'running', 'draining', 'dead', 'waiting', 'quarantined', 'stopped'];

export function sessionsPage(ctx: PageCtx): Promise<Page> {
  const agent = param(ctx, 'agent');
  const rig = param(ctx, 'rig');
  const state = param(ctx, 'state');
  const after = param(ctx, 'after');
  const all = sessionRows(ctx);
  const matching = all.filter(
    (s) =>
      (!agent || s.agent === agent || s.name.includes(agent)) &&
      (!rig || s.rig === rig) &&
      (!state || s.state === state),
  );
  const from = after ? matching.findIndex((s) => s.name > after) : 0;
  const shown = from < 0 ? [] : matching.slice(from, from + PAGE);
  const more = from >= 0 && matching.length > from + PAGE;
  const rigs = [...new Set(all.map((s) => s.rig).filter(Boolean))].sort();
  const filters = html`<form class="filters" method="get" action="/ui/sessions" role="search">
    <label>Agent or name <input name="agent" value="${agent}" /></label>
    <label
      >Rig
      <select name="rig">
        <option value="">any</option>
        ${rigs.map((r) => html`<option ${r === rig ? html`selected` : nothing}>${r}</option>`)}
      </select></label
    >
    <label
      >State
      <select name="state">
        <option value="">any</option>
        ${STATES.map((s) => html`<option ${s === state ? html`selected` : nothing}>${s}</option>`)}
      </select></label
    >
    <button type="submit">Filter</button>
  </form>`;
  const list = table(
    `Sessions ${shown.length ? `${from + 1}-${from + shown.length}` : '0'} of ${matching.length}`,
    ['Session', 'Agent', 'Rig', 'State', 'Last activity', 'Restarts'],
    shown,
    (s) =>
      html`<tr>
        <td><a href="/ui/sessions/${seg(s.name)}">${s.name}</a></td>
        <td>${s.agent ?? '-'}</td>
        <td>${s.rig || '-'}</td>
        <td>
          ${badge(s.state)} ${s.reason ? html`<span class="muted">${s.reason}</span>` : nothing}
        </td>
        <td>${ago(s.last_activity, ctx.now)}</td>
        <td>${s.restarts_in_window}</td>
      </tr>`,
    'No session matches.',
  );
  const pager = html`<nav class="pager" aria-label="Pages">
    ${after ? html`<a href="/ui/sessions${qs({ agent, rig, state })}">First page</a>` : nothing}
    ${more ? html`<a href="/ui/sessions${qs({ agent, rig, state, after: shown.at(-1)!.name })}">Next page</a>` : nothing}
  </nav>`;
  return Promise.resolve({
    title: 'Sessions',
    nav: 'sessions',
    main: html`${filters}${ctx.part('list', 'session.* controller.*', html`${list}${pager}`)}`,
  });
}

export async function sessionPage(ctx: PageCtx): Promise<Page> {
  const name = validateSessionName(ctx.params[0]!);
  const s = sessionRows(ctx).find((x) => x.name === name);
  if (!s) throw new NotFoundError('session', name);
  const { host } = ctx;
  const claims = await host.ops.store.list({ assignee: name, status: 'in_progress', limit: 50 });
  const operator = ctx.session.role === 'operator';
  const mail = operator ? await host.mail.inbox(name, { limit: 20 }) : undefined;
  const api = `/v0/sessions/${seg(name)}`;
  const actions = operator
    ? html`<section aria-labelledby="h-act">
        <h2 id="h-act">Act</h2>
        <div class="actions">
          ${action(`${api}/nudge`, 'Nudge', {
            fields: html`<label
              >Text to type <input name="text" required value="Please report your progress."
            /></label>`,
          })}
          ${action(`${api}/kill`, 'Restart', { confirm: `Stop ${name}? The controller starts it again.`, danger: true })}
          ${action(`${api}/drain`, 'Drain', { confirm: `Drain ${name}?` })}
          ${s.state === 'quarantined' ? action(`${api}/reset`, 'Clear quarantine') : nothing}
        </div>
      </section>`
    : nothing;
  const main = html`
    ${ctx.part(
      'state',
      'session.* controller.*',
      html`<dl class="facts">
        <dt>Agent</dt>
        <dd>${s.agent ?? '-'}</dd>
        <dt>Rig</dt>
        <dd>${s.rig || '-'}</dd>
        <dt>State</dt>
        <dd>${badge(s.state)} ${s.reason ?? ''}</dd>
        <dt>Last activity</dt>
        <dd>${ago(s.last_activity, ctx.now)}</dd>
        <dt>Restarts (window)</dt>
        <dd>${s.restarts_in_window}</dd>
        ${
          s.start_error
            ? html`<dt>Start error</dt>
                <dd class="bad">${s.start_error}</dd>`
            : nothing
        }
      </dl>`,
    )}
    ${actions}
    <section aria-labelledby="h-out">
      <h2 id="h-out">Output</h2>
      <pre
        class="output"
        data-peek="/ui/sessions/${seg(name)}/peek"
        tabindex="0"
        aria-label="Live output of ${name}"
      >
(connecting)</pre>
    </section>
    ${ctx.part(
      'claims',
      'bead.*',
      html`<section aria-labelledby="h-claims">
        <h2 id="h-claims">Claims</h2>
        ${table(
          'Beads this session holds',
          ['Bead', 'Title', 'Claimed'],
          claims.items,
          (b) =>
            html`<tr>
              <td><a href="/ui/beads/${seg(b.id)}">${b.id}</a></td>
              <td>${b.title}</td>
              <td>${ago(b.claimed_at, ctx.now)}</td>
            </tr>`,
          'It holds no bead.',
        )}
      </section>`,
    )}
    ${
      mail
        ? ctx.part(
            'mail',
            'mail.*',
            html`<section aria-labelledby="h-mail">
              <h2 id="h-mail">Unread mail</h2>
              ${table(
                'Unread messages to this session',
                ['From', 'Subject', 'Sent'],
                mail.items,
                (m) =>
                  html`<tr>
                    <td>${m.from}</td>
                    <td><a href="/ui/mail/${seg(m.id)}">${m.subject || '(no subject)'}</a></td>
                    <td>${ago(m.created_at, ctx.now)}</td>
                  </tr>`,
                'No unread mail.',
              )}
            </section>`,
          )
        : nothing
    }
  `;
  return { title: `Session ${name}`, nav: 'sessions', main };
}
