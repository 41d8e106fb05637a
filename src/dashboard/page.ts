/** What a page is given and gives back, and the frame every page sits in. */
import type { ApiHost } from '../api/index.js';
import type { UiSession } from './auth.js';
import type { Activity } from './activity.js';
import { Html, html, nothing } from './html.js';

export interface PageCtx {
  host: ApiHost;
  session: UiSession;
  url: URL;
  /** Path parameters, decoded. */
  params: string[];
  now: number;
  activity: Activity;
  /**
   * A live region: the page script fetches it again (`?part=<id>`) when an
   * event whose type matches `on` (space-separated; `bead.*` prefixes) arrives.
   */
  part(id: string, on: string, body: Html): Html;
}

export interface Page {
  title: string;
  nav: string;
  main: Html;
}

export type PageFn = (ctx: PageCtx) => Promise<Page>;

const NAV: [key: string, href: string, label: string, operatorOnly?: boolean][] = [
  ['overview', '/ui/', 'Overview'],
  ['sessions', '/ui/sessions', 'Sessions'],
  ['beads', '/ui/beads', 'Beads'],
  ['convoys', '/ui/convoys', 'Convoys'],
  ['mq', '/ui/mq', 'Merge queue'],
  ['events', '/ui/events', 'Events'],
  ['mail', '/ui/mail', 'Mail', true],
  ['alerts', '/ui/alerts', 'Alerts'],
  ['costs', '/ui/costs', 'Costs'],
];

/** The whole document around a page. */
export function layout(
  page: Page,
  o: { session: UiSession; after: number; city: string; assets: string },
): string {
  const role = o.session.role;
  const links = NAV.filter(([, , , op]) => !op || role === 'operator').map(
    ([key, href, label]) =>
      html`<li>
        <a href="${href}" ${key === page.nav ? html`aria-current="page"` : nothing}>${label}</a>
      </li>`,
  );
  const doc = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="gc-csrf" content="${o.session.csrf}" />
        <title>${page.title} · ${o.city} · gc</title>
        <link rel="stylesheet" href="/ui/assets/ui.css?v=${o.assets}" />
        <script src="/ui/assets/ui.js?v=${o.assets}" defer></script>
      </head>
      <body data-after="${o.after}">
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <span class="brand">gc · ${o.city}</span>
          <nav aria-label="Dashboard">
            <ul>
              ${links}
            </ul>
          </nav>
          <span class="who">
            ${o.session.principal.name} (${role})
            <form method="post" action="/ui/logout">
              <input type="hidden" name="csrf" value="${o.session.csrf}" />
              <button type="submit">Log out</button>
            </form>
          </span>
        </header>
        <main id="main" tabindex="-1">
          <h1>${page.title}</h1>
          ${page.main}
        </main>
        <div id="gc-status" role="status" aria-live="polite"></div>
        <footer>
          <span id="gc-live" class="muted">live updates: connecting</span>
        </footer>
      </body>
    </html>`;
  return doc.text;
}

/** A page with only a message (errors, logged out). */
export function bare(title: string, body: Html): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · gc</title>
        <link rel="stylesheet" href="/ui/assets/ui.css" />
      </head>
      <body>
        <main id="main">
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html>`.text;
}

export { Html };
