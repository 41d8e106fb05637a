/** The merge queue of one rig: the train in flight, the waiting line in merge order, what finished. */
import { mergeOrder } from '../../refinery/index.js';
import {
  action,
  ago,
  badge,
  bars,
  dur,
  html,
  nothing,
  pct,
  qs,
  seg,
  stat,
  table,
} from '../html.js';
import type { Page, PageCtx } from '../page.js';
import { param } from './common.js';

export async function mqPage(ctx: PageCtx): Promise<Page> {
  const { refinery } = ctx.host;
  const rigs = refinery.rigNames();
  const rig = param(ctx, 'rig') || rigs[0] || '';
  if (!rig) {
    return {
      title: 'Merge queue',
      nav: 'mq',
      main: html`<p class="empty">This city has no rig.</p>`,
    };
  }
  const [stats] = await refinery.stats(rig);
  const [flight, waiting, done] = await Promise.all([
    refinery.list({ rig, states: ['testing', 'merging'], limit: 100 }),
    refinery.list({ rig, states: ['queued'], limit: 200 }),
    refinery.list({ rig, states: ['merged', 'needs-rebase', 'needs-fix', 'rejected'], limit: 40 }),
  ]);
  const operator = ctx.session.role === 'operator';
  const ordered = mergeOrder(waiting.items, ctx.now);
  const picker = html`<nav aria-label="Rigs" class="tabs">
    <ul>
      ${rigs.map(
        (r) =>
          html`<li>
            <a href="/ui/mq${qs({ rig: r })}" ${r === rig ? html`aria-current="page"` : nothing}
              >${r}</a
            >
          </li>`,
      )}
    </ul>
  </nav>`;
  const figures = stats
    ? html`<div class="stats">
        ${stat('waiting', stats.depth)} ${stat('in flight', stats.in_flight)}
        ${stat('merged last hour', stats.merged_last_hour)}
        ${stat('conflict rate', pct(stats.conflict_rate))}
        ${stat('gate failure rate', pct(stats.gate_failure_rate))}
        ${stat('enqueue to merge p50', dur(stats.merge_ms_p50))}
        ${stat('p95', dur(stats.merge_ms_p95))}
      </div>`
    : nothing;
  const latency = bars(
    'Enqueue to merge of recent merges (oldest first)',
    done.items
      .filter((m) => m.state === 'merged' && m.finished_at)
      .reverse()
      .map((m) => ({ label: m.id.slice(-6), value: (m.finished_at ?? 0) - m.submitted_at })),
    dur,
  );
  const main = html`${picker}
  ${ctx.part(
    'queue',
    'mq.*',
    html`${figures}
      <section aria-labelledby="h-flight">
        <h2 id="h-flight">In flight</h2>
        ${table(
          'The train being tested or merged',
          ['Request', 'Branch', 'Bead', 'Author', 'State', 'Started'],
          flight.items,
          (m) =>
            html`<tr id="${m.id}">
              <td>${m.id}</td>
              <td><code>${m.branch}</code></td>
              <td>${m.bead ? html`<a href="/ui/beads/${seg(m.bead)}">${m.bead}</a>` : '-'}</td>
              <td>${m.author}</td>
              <td>${badge(m.state)}</td>
              <td>${ago(m.started_at, ctx.now)}</td>
            </tr>`,
          'Nothing in flight.',
        )}
      </section>
      <section aria-labelledby="h-wait">
        <h2 id="h-wait">Waiting, in merge order</h2>
        ${table(
          'Waiting requests, next first',
          [
            '#',
            'Request',
            'Branch',
            'Bead',
            'Priority',
            'Retries',
            'Waiting',
            ...(operator ? ['Act'] : []),
          ],
          ordered,
          (m) =>
            html`<tr id="${m.id}">
              <td>${ordered.indexOf(m) + 1}</td>
              <td>${m.id}</td>
              <td><code>${m.branch}</code></td>
              <td>${m.bead ? html`<a href="/ui/beads/${seg(m.bead)}">${m.bead}</a>` : '-'}</td>
              <td>P${m.priority}</td>
              <td>${m.retries}</td>
              <td>${ago(m.submitted_at, ctx.now)}</td>
              ${
                operator
                  ? html`<td>
                      ${action(`/v0/mq/${seg(m.id)}/reject`, 'Reject', { confirm: `Take ${m.id} out of the queue?`, danger: true })}
                    </td>`
                  : nothing
              }
            </tr>`,
          'Nothing waiting.',
        )}
      </section>
      <section aria-labelledby="h-done">
        <h2 id="h-done">Recent outcomes</h2>
        ${latency}
        ${table(
          'Recent merges, conflicts and failures',
          ['Request', 'Bead', 'State', 'Why', 'Finished', ...(operator ? ['Act'] : [])],
          done.items,
          (m) =>
            html`<tr id="${m.id}">
              <td>${m.id}</td>
              <td>${m.bead ? html`<a href="/ui/beads/${seg(m.bead)}">${m.bead}</a>` : '-'}</td>
              <td>${badge(m.state)}</td>
              <td>
                ${m.reason || (m.merged_sha ? html`<code>${m.merged_sha.slice(0, 12)}</code>` : '-')}
                ${
                  m.detail
                    ? html`<details>
                        <summary>Output</summary>
                        <pre class="text">${m.detail}</pre>
                      </details>`
                    : nothing
                }
              </td>
              <td>${ago(m.finished_at, ctx.now)}</td>
              ${
                operator
                  ? html`<td>
                      ${
                        m.state === 'needs-rebase' || m.state === 'needs-fix'
                          ? action(`/v0/mq/${seg(m.id)}/retry`, 'Retry')
                          : nothing
                      }
                    </td>`
                  : nothing
              }
            </tr>`,
          'Nothing finished yet.',
        )}
      </section>`,
  )}`;
  return { title: `Merge queue: ${rig}`, nav: 'mq', main };
}
