/**
 * The dashboard: server-rendered pages under /ui on the city server's TCP
 * listener, live through the API's event stream, acting through the API
 * (so a page can do only what the session's key may). See docs/dashboard.md.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { SseWriter, sseHeaders, type ApiHost, type DashboardLinks } from '../api/index.js';
import type { KeyRing, Principal } from '../city/index.js';
import { GcError, NotFoundError, errorMessage } from '../core/index.js';
import { Activity } from './activity.js';
import { UI_CSS, UI_JS } from './client.js';
import { COOKIE, DashboardAuth, checkSameOrigin, type UiRole, type UiSession } from './auth.js';
import type { Html } from './html.js';
import { escapeHtml, html } from './html.js';
import { bare, layout, type PageCtx, type PageFn } from './page.js';
import { overviewPage } from './pages/overview.js';
import { sessionPage, sessionsPage } from './pages/sessions.js';
import { beadPage, beadsPage } from './pages/beads.js';
import { convoyPage, convoysPage } from './pages/convoys.js';
import { mqPage } from './pages/mq.js';
import { eventsPage } from './pages/events.js';
import { mailPage, threadPage } from './pages/mail.js';
import { alertsPage, costsPage } from './pages/watch.js';

export interface DashboardOptions {
  host: ApiHost;
  keys: KeyRing;
  /** `http://host:port` of this server's TCP listener; undefined when it has none. */
  origin: () => string | undefined;
  log: (line: string) => void;
}

interface Asset {
  type: string;
  body: Buffer;
  gz: Buffer;
}

const ROUTES: [RegExp, PageFn, operatorOnly?: boolean][] = [
  [/^\/ui\/?$/, overviewPage],
  [/^\/ui\/sessions$/, sessionsPage],
  [/^\/ui\/sessions\/([^/]+)$/, sessionPage],
  [/^\/ui\/beads$/, beadsPage],
  [/^\/ui\/beads\/([^/]+)$/, beadPage],
  [/^\/ui\/convoys$/, convoysPage],
  [/^\/ui\/convoys\/([^/]+)$/, convoyPage],
  [/^\/ui\/mq$/, mqPage],
  [/^\/ui\/events$/, eventsPage],
  [/^\/ui\/mail$/, mailPage, true],
  [/^\/ui\/mail\/([^/]+)$/, threadPage, true],
  [/^\/ui\/alerts$/, alertsPage],
  [/^\/ui\/costs$/, costsPage],
];

function asset(text: string, type: string): Asset {
  const body = Buffer.from(text);
  return { type, body, gz: gzipSync(body, { level: 9 }) };
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** A request's URL; one that does not parse reads as a path no page has. */
function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://gc');
  } catch {
    return new URL('http://gc/ui/unreadable');
  }
}

export class Dashboard implements DashboardLinks {
  readonly auth: DashboardAuth;
  private readonly activity: Activity;
  private assets: Map<string, Asset> | undefined;
  private version = '';

  constructor(private readonly o: DashboardOptions) {
    this.auth = new DashboardAuth(o.keys);
    this.activity = new Activity(o.host.ops.events, o.log);
  }

  /** The page script's size, gzipped (the bench's js_kb_gz). */
  scriptBytesGz(): number {
    return this.loaded().get('ui.js')!.gz.length;
  }

  private loaded(): Map<string, Asset> {
    if (!this.assets) {
      const m = new Map<string, Asset>([
        ['ui.js', asset(UI_JS, 'text/javascript; charset=utf-8')],
        ['ui.css', asset(UI_CSS, 'text/css; charset=utf-8')],
      ]);
      const h = createHash('sha256');
      for (const a of m.values()) h.update(a.body);
      this.version = h.digest('hex').slice(0, 12);
      this.assets = m;
    }
    return this.assets;
  }

  link(
    principal: Principal,
    role: UiRole,
    hours: number,
  ): { url: string; role: string; expires_at: string; session_hours: number } {
    const origin = this.o.origin();
    if (!origin) {
      throw new GcError(
        'unavailable',
        'the dashboard is served on the TCP listener, and this city has none',
        {
          fix: 'set [api] port in city.toml (and gc restart), or start with gc start --port N',
        },
      );
    }
    const { token, expires } = this.auth.mint(principal, role, hours);
    return {
      url: `${origin}/ui/login?token=${token}`,
      role,
      expires_at: new Date(expires).toISOString(),
      session_hours: hours,
    };
  }

  /** For API requests: the principal of a dashboard cookie (undefined: none sent). */
  authenticateApi(req: IncomingMessage, path: string): Principal | undefined {
    return this.auth.authenticateApi(req, path);
  }

  close(): void {
    this.activity.close();
  }

  /** The node:http listener for /ui paths. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res).catch((e: unknown) => {
      // The path only: the login's query is a secret.
      this.o.log(`dashboard: ${req.method} ${requestUrl(req).pathname}: ${errorMessage(e)}`);
      if (!res.headersSent)
        this.send(res, 500, bare('Something went wrong', html`<p>${errorMessage(e)}</p>`));
      else res.destroy();
    });
  };

  private send(
    res: ServerResponse,
    status: number,
    body: string,
    extra: Record<string, string> = {},
  ): void {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
      ...extra,
    });
    res.end(body);
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    req.resume();
    if (path.startsWith('/ui/assets/'))
      return this.asset(req, res, path.slice('/ui/assets/'.length));
    if (path === '/ui/login' && method === 'GET') return this.login(res, url);
    const session = this.auth.session(req);
    if (path === '/ui/logout' && method === 'POST') return this.logout(req, res, session);
    if (!session) {
      return this.send(
        res,
        401,
        bare(
          'Log in to the dashboard',
          html`<p>This browser has no dashboard session (or it ended).</p>
            <p>Run <code>gc dashboard</code> in the city for a one-time login link.</p>`,
        ),
      );
    }
    if (method !== 'GET' && method !== 'HEAD') {
      return this.send(res, 405, bare('Not allowed', html`<p>${method} ${path}</p>`));
    }
    this.activity.start();
    const peek = /^\/ui\/sessions\/([^/]+)\/peek$/.exec(path);
    if (peek) return this.peek(res, decodeURIComponent(peek[1]!));
    for (const [re, fn, operatorOnly] of ROUTES) {
      const m = re.exec(path);
      if (!m) continue;
      if (operatorOnly && session.role !== 'operator') {
        return this.send(
          res,
          403,
          bare('For operators', html`<p>A viewer's session does not show this page.</p>`),
        );
      }
      let params: string[];
      try {
        params = m.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        return this.send(res, 400, bare('Bad address', html`<p>${path}</p>`));
      }
      return this.page(res, url, session, fn, params);
    }
    this.send(
      res,
      404,
      bare(
        'No such page',
        html`<p>${path}</p>
          <p><a href="/ui/">Overview</a></p>`,
      ),
    );
  }

  private async page(
    res: ServerResponse,
    url: URL,
    session: UiSession,
    fn: PageFn,
    params: string[],
  ): Promise<void> {
    const parts = new Map<string, Html>();
    const ctx: PageCtx = {
      host: this.o.host,
      session,
      url,
      params,
      now: Date.now(),
      activity: this.activity,
      part: (id, on, body) => {
        parts.set(id, body);
        return html`<div id="part-${id}" data-part="${id}" data-on="${on}">${body}</div>`;
      },
    };
    let page;
    try {
      page = await fn(ctx);
    } catch (e) {
      const status =
        e instanceof NotFoundError ? 404 : e instanceof GcError && e.code === 'invalid' ? 400 : 500;
      if (status === 500) throw e;
      return this.send(
        res,
        status,
        bare(status === 404 ? 'Not found' : 'Bad request', html`<p>${errorMessage(e)}</p>`),
      );
    }
    const part = url.searchParams.get('part');
    if (part) {
      const body = parts.get(part);
      if (!body) return this.send(res, 404, `no part ${escapeHtml(part)}`);
      return this.send(res, 200, body.text);
    }
    this.loaded();
    await this.o.host.ops.published();
    const after = await this.o.host.ops.events.latestSeq();
    this.send(
      res,
      200,
      layout(page, { session, after, city: this.o.host.spec.name || 'city', assets: this.version }),
    );
  }

  private asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const a = this.loaded().get(name);
    if (!a) return this.send(res, 404, 'no such asset');
    const gz = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gz ? a.gz : a.body;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': a.type,
      'content-length': body.length,
      'cache-control': 'public, max-age=86400',
      vary: 'accept-encoding',
      ...(gz ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(body);
  }

  /** Spend the link's token, set the cookie, and leave the token out of the address. */
  private login(res: ServerResponse, url: URL): void {
    let cookie: { cookie: string; maxAgeS: number };
    try {
      cookie = this.auth.redeem(url.searchParams.get('token') ?? '');
    } catch (e) {
      const fix = e instanceof GcError && e.fix ? html`<p>${e.fix}</p>` : html``;
      return this.send(
        res,
        401,
        bare(
          'Login link not valid',
          html`<p>${errorMessage(e)}</p>
            ${fix}`,
        ),
      );
    }
    // A page of our own that moves on (not a redirect): the next request is
    // then same-site, so the SameSite=Strict cookie goes with it.
    this.send(
      res,
      200,
      bare(
        'Logged in',
        html`<meta http-equiv="refresh" content="0; url=/ui/" />
          <p><a href="/ui/">Open the dashboard</a></p>`,
      ),
      {
        'set-cookie': `${COOKIE}=${cookie.cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${cookie.maxAgeS}`,
        'content-security-policy': "default-src 'self'; style-src 'self'; frame-ancestors 'none'",
      },
    );
  }

  private async logout(
    req: IncomingMessage,
    res: ServerResponse,
    session: UiSession | undefined,
  ): Promise<void> {
    if (session) {
      const body = await new Promise<string>((resolve) => {
        let text = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => {
          if (text.length < 4096) text += c;
        });
        req.on('end', () => resolve(text));
        req.on('error', () => resolve(''));
      });
      try {
        checkSameOrigin(req, session, new URLSearchParams(body).get('csrf') ?? '');
      } catch (e) {
        return this.send(res, 403, bare('Not logged out', html`<p>${errorMessage(e)}</p>`));
      }
      this.auth.end(session);
    }
    this.send(
      res,
      200,
      bare('Logged out', html`<p>Run <code>gc dashboard</code> to log in again.</p>`),
      {
        'set-cookie': `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`,
      },
    );
  }

  /** A session's output as it changes (the provider's peek, once a second, sent when it differs). */
  private async peek(res: ServerResponse, name: string): Promise<void> {
    const provider = this.o.host.provider;
    sseHeaders(res);
    const out = new SseWriter(res, { stallMs: this.o.host.sseStallMs });
    let last = '';
    let n = 0;
    while (!out.closed) {
      let text: string;
      try {
        text = (await provider.isRunning(name))
          ? await provider.peek(name, 200)
          : '(the session is not running)';
      } catch (e) {
        text = `(cannot read the session: ${errorMessage(e)})`;
      }
      if (text !== last) {
        last = text;
        if (!(await out.send(++n, '', { text }))) break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    res.end();
  }
}
