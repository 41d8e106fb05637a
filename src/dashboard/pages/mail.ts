/** Mail (operators): an agent's mailbox, and a thread. */
import { ago, badge, html, nothing, qs, seg, table } from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { param, sessionRows } from './common.js';

export async function mailPage(ctx: PageCtx): Promise<Page> {
  const { host } = ctx;
  const names = [
    ...new Set([
      ...host.spec.agents.map((a) => a.name),
      ...sessionRows(ctx).map((s) => s.name),
      'human',
    ]),
  ].sort();
  const agent = param(ctx, 'agent') || names[0] || 'human';
  const [box, count] = await Promise.all([
    host.mail.all(agent, { limit: 100 }),
    host.mail.count(agent),
  ]);
  const picker = html`<form class="filters" method="get" action="/ui/mail" role="search">
    <label
      >Mailbox
      <select name="agent">
        ${names.map((n) => html`<option ${n === agent ? html`selected` : nothing}>${n}</option>`)}
      </select></label
    >
    <button type="submit">Show</button>
  </form>`;
  const list = table(
    `Mail to ${agent}: ${count.total} in all, ${count.unread} unread`,
    ['From', 'Subject', 'Sent', 'Read'],
    box.items,
    (m) =>
      html`<tr>
        <td>${m.from}</td>
        <td><a href="/ui/mail/${seg(m.id)}">${m.subject || '(no subject)'}</a></td>
        <td>${ago(m.created_at, ctx.now)}</td>
        <td>${m.read ? 'read' : badge('unread')}</td>
      </tr>`,
    'No mail.',
  );
  return { title: 'Mail', nav: 'mail', main: html`${picker}${ctx.part('box', 'mail.*', list)}` };
}

export async function threadPage(ctx: PageCtx): Promise<Page> {
  const id = ctx.params[0]!;
  const first = await ctx.host.mail.get(id);
  const thread = await ctx.host.mail.thread(id);
  const items = thread.map(
    (m) =>
      html`<article class="message" aria-labelledby="m-${m.id}">
        <h2 id="m-${m.id}">${m.subject || '(no subject)'}</h2>
        <p class="muted">
          ${m.from} → ${m.to}${m.cc.length ? html` (cc ${m.cc.join(', ')})` : nothing} ·
          ${ago(m.created_at, ctx.now)} · P${m.priority}
        </p>
        <pre class="text">${m.body}</pre>
      </article>`,
  );
  return {
    title: `Thread: ${first.subject || id}`,
    nav: 'mail',
    main: html`<p><a href="/ui/mail${qs({ agent: first.to })}">Back to ${first.to}'s mail</a></p>
      ${ctx.part('thread', 'mail.*', html`${items}`)}`,
  };
}
