/**
 * HTML for the dashboard: a tagged template that escapes every value it is
 * given (only `Html` made by this module goes in as is), and the small
 * pieces every page shares (tables, badges, charts as inline SVG).
 */

/** Markup that is already safe to put in a page. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function piece(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return (v as readonly Value[]).map(piece).join('');
  return escapeHtml(String(v));
}

/** `html\`<p>${text}</p>\``: values escaped, nested Html kept. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new Html(out);
}

export const nothing = new Html('');

/** A query string from the entries that have a value. */
export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** A path segment, encoded. */
export const seg = (s: string): string => encodeURIComponent(s);

/** A state word as a coloured badge (the colour is never the only signal: the word is there). */
export function badge(state: string): Html {
  const tone = /quarantined|dead|failed|needs-|rejected|firing|tripped|crash|stalled|conflict/.test(
    state,
  )
    ? 'bad'
    : /pending|starting|draining|waiting|testing|merging|queued|in_progress|warm/.test(state)
      ? 'warn'
      : /running|merged|closed|ok|hot|open/.test(state)
        ? 'good'
        : 'plain';
  return html`<span class="badge ${tone}">${state}</span>`;
}

/** "3m ago" style age of an epoch-ms or RFC 3339 time. */
export function ago(at: number | string | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined || at === '' || at === 0) return '-';
  const t = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Milliseconds as a short duration. */
export function dur(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export const usd = (n: number): string => `$${n.toFixed(2)}`;
export const pct = (n: number): string => `${Math.round(n * 100)}%`;

/** A table with a caption (screen readers announce it) and a row per item. */
export function table<T>(
  caption: string,
  head: readonly string[],
  rows: readonly T[],
  row: (item: T) => Html,
  empty = 'Nothing here.',
): Html {
  if (!rows.length) return html`<p class="empty">${empty}</p>`;
  return html`<table>
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        ${head.map((h) => html`<th scope="col">${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(row)}
    </tbody>
  </table>`;
}

/** One figure with its label. */
export function stat(label: string, value: string | number, href?: string, tone = ''): Html {
  const inner = html`<span class="n">${value}</span><span class="l">${label}</span>`;
  return href
    ? html`<a class="stat ${tone}" href="${href}">${inner}</a>`
    : html`<div class="stat ${tone}">${inner}</div>`;
}

/**
 * A bar chart as inline SVG: one bar per point, each with a <title> (the
 * value on hover and for assistive technology), the whole labelled.
 */
export function bars(
  label: string,
  points: readonly { label: string; value: number }[],
  format: (n: number) => string = String,
): Html {
  if (!points.length) return html`<p class="empty">No data yet for ${label.toLowerCase()}.</p>`;
  const w = 640;
  const h = 140;
  const pad = 18;
  const max = Math.max(1, ...points.map((p) => p.value));
  const bw = Math.min(48, (w - pad) / points.length);
  const every = Math.max(1, Math.ceil(points.length / 8));
  const drawn = points.map((p, i) => {
    const bh = Math.round(((h - pad * 2) * p.value) / max);
    const x = Math.round(pad + i * bw);
    const y = h - pad - bh;
    return html`<g>
      <title>${p.label}: ${format(p.value)}</title>
      <rect x="${x}" y="${y}" width="${Math.max(1, Math.floor(bw - 2))}" height="${bh}"></rect>
      ${i % every === 0 ? html`<text x="${x}" y="${h - 4}">${p.label}</text>` : nothing}
    </g>`;
  });
  return html`<figure class="chart">
    <svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${label}, highest ${format(max)}">
      <text x="${pad}" y="12">${format(max)}</text>
      ${drawn}
    </svg>
    <figcaption>${label}</figcaption>
  </figure>`;
}

/** A labelled progress bar. */
export function progress(label: string, done: number, total: number): Html {
  const max = Math.max(1, total);
  return html`<progress max="${max}" value="${Math.min(done, max)}" aria-label="${label}">
      ${done}/${total}</progress
    ><span class="muted"> ${done}/${total}</span>`;
}

/**
 * A form whose submit the page script sends to the API (`api` path, JSON
 * of its fields) with the session's CSRF token. `fields` are extra inputs.
 */
export function action(
  api: string,
  label: string,
  o: { fields?: Html; confirm?: string; danger?: boolean; method?: string } = {},
): Html {
  return html`<form
    class="act"
    data-api="${api}"
    data-method="${o.method ?? 'POST'}"
    ${o.confirm ? html`data-confirm="${o.confirm}"` : nothing}
  >
    ${o.fields ?? nothing}
    <button type="submit" class="${o.danger ? 'danger' : ''}">${label}</button>
  </form>`;
}
