/**
 * The dashboard at size: a city server (in-process, the fake session
 * provider) with a pool of 1,000 running sessions and 100,000 beads (open,
 * in progress and closed), its dashboard on the TCP listener.
 *
 * - overview_ms_p50, sessions_page_ms_p50, beads_page_ms_p50: a page's HTML
 *   over loopback HTTP, whole answer received (the server's time plus a
 *   loopback round trip), median of RUNS;
 * - *_render_ms: in Chromium (Debian's, headless), first contentful paint
 *   of the page, median of 3 loads;
 * - js_kb_gz: the page script as served gzipped (the only script a page loads);
 * - baseline (same run): the JSON API calls that fetch the same data a
 *   page shows (overview: status, bead counts, merge-queue figures, alerts,
 *   patrol, costs; sessions: one page of 100; beads: three columns of 50 and
 *   their counts), and each page's ratio to it (`*_vs_api`).
 * Targets (docs/dashboard.md): each page under 300 ms at this size, first
 * render under 1 s, js_kb_gz <= 100.
 *
 *   npx tsx bench/dashboard.ts [--quick]   (quick: fewer runs, same size)
 */
import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { readAdminKey } from '../src/city/index.js';
import { CityServer } from '../src/server/index.js';
import { MAX_CREATE_BATCH, type BeadStatus, type CreateBeadInput } from '../src/store/index.js';
import { fatal, note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const SESSIONS = 1000;
const BEADS = 100_000;
const RUNS = quick ? 7 : 21;
const CHROMIUM = process.env.GC_TEST_CHROMIUM ?? '/usr/bin/chromium';

function get(
  port: number,
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: url, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function timed(fn: () => Promise<void>, runs = RUNS): Promise<number> {
  const ms: number[] = [];
  await fn(); // warm
  for (let i = 0; i < runs; i++) {
    const t = nowMs();
    await fn();
    ms.push(nowMs() - t);
  }
  return round(percentile(ms, 50), 1);
}

async function main(): Promise<void> {
  const root = scratchDir('dashboard');
  process.env.GC_CONFIG_HOME = path.join(root, 'config');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      'name = "dash"',
      `max_active_sessions = ${SESSIONS + 10}`,
      '[api]',
      `port = ${port}`,
      'rate_per_s = 100000',
      'rate_burst = 100000',
      '[daemon]',
      'patrol_interval = "5s"',
      `max_wakes_per_tick = ${SESSIONS}`,
      '[[agent]]',
      'name = "w"',
      'start_command = "sleep 100000"',
      `min_active_sessions = ${SESSIONS}`,
      `max_active_sessions = ${SESSIONS}`,
      '',
    ].join('\n'),
  );
  const server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  try {
    const token = readAdminKey(root)!;
    const auth = { authorization: `Bearer ${token}` };
    note(`seeding ${BEADS} beads`);
    const statuses: BeadStatus[] = ['open', 'open', 'in_progress', 'closed', 'closed'];
    for (let at = 0; at < BEADS; at += MAX_CREATE_BATCH) {
      const batch: CreateBeadInput[] = [];
      for (let i = at; i < Math.min(BEADS, at + MAX_CREATE_BATCH); i++) {
        const status = statuses[i % statuses.length]!;
        batch.push({
          title: `task ${i}: change module ${i % 97}`,
          status,
          labels: [`area-${i % 13}`],
          ...(status === 'in_progress' ? { assignee: `w-${(i % SESSIONS) + 1}` } : {}),
        });
      }
      await server.ops.store.createMany(batch);
    }
    note(`waiting for ${SESSIONS} sessions`);
    const t0 = nowMs();
    for (;;) {
      const running = server.controller.status().sessions.filter((s) => s.state === 'running');
      if (running.length >= SESSIONS) break;
      if (nowMs() - t0 > 120_000)
        throw new Error(`only ${running.length} sessions running after 120 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const link = server.dashboard.link(server.keys.find('admin', 'admin')!, 'operator', 1);
    const login = await get(port, new URL(link.url).pathname + new URL(link.url).search, {});
    const cookie = String((login.headers['set-cookie'] as string[])[0]).split(';')[0]!;
    const ui = { cookie };

    const page = (url: string) => async () => {
      const r = await get(port, url, ui);
      if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body.slice(0, 200)}`);
    };
    const apis = (urls: string[]) => async () => {
      for (const u of urls) {
        const r = await get(port, u, auth);
        if (r.status !== 200) throw new Error(`${u}: ${r.status} ${r.body.slice(0, 200)}`);
      }
    };
    note('timing pages and their API baseline');
    const overview = await timed(page('/ui/'));
    const sessions = await timed(page('/ui/sessions'));
    const beads = await timed(page('/ui/beads'));
    const overviewApi = await timed(
      apis([
        '/v0/status',
        '/v0/beads/counts',
        '/v0/mq/stats',
        '/v0/alerts',
        '/v0/patrol',
        '/v0/costs',
      ]),
    );
    const sessionsApi = await timed(apis(['/v0/sessions?limit=100']));
    const beadsApi = await timed(
      apis([
        '/v0/beads?status=open&work=true&limit=50',
        '/v0/beads?status=in_progress&work=true&limit=50',
        '/v0/beads?status=closed&work=true&limit=50',
        '/v0/beads/counts',
      ]),
    );
    const js = await get(port, '/ui/assets/ui.js', { 'accept-encoding': 'gzip' });
    const jsBytes = Number(js.headers['content-length']);

    note('first render in Chromium');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
    });
    const render: Record<string, number> = {};
    try {
      const ctx = await browser.newContext();
      const tab = await ctx.newPage();
      await ctx.addCookies([
        {
          name: 'gc_ui',
          value: cookie.slice('gc_ui='.length),
          domain: '127.0.0.1',
          path: '/',
          httpOnly: true,
          sameSite: 'Strict',
        },
      ]);
      for (const [name, url] of [
        ['overview', '/ui/'],
        ['sessions', '/ui/sessions'],
        ['beads', '/ui/beads'],
      ] as const) {
        const ms: number[] = [];
        for (let i = 0; i < 3; i++) {
          await tab.goto(`http://127.0.0.1:${port}${url}`, { waitUntil: 'load' });
          const fcp = await tab.evaluate(() => {
            const e = performance.getEntriesByName('first-contentful-paint')[0];
            return e ? e.startTime : performance.now();
          });
          ms.push(fcp);
        }
        render[name] = round(percentile(ms, 50), 1);
      }
    } finally {
      await browser.close();
    }
    result({
      bench: 'dashboard',
      sessions: SESSIONS,
      beads: BEADS,
      overview_ms_p50: overview,
      sessions_page_ms_p50: sessions,
      beads_page_ms_p50: beads,
      overview_render_ms: render.overview,
      sessions_render_ms: render.sessions,
      beads_render_ms: render.beads,
      js_kb_gz: round(jsBytes / 1024, 1),
      baseline_overview_api_ms_p50: overviewApi,
      baseline_sessions_api_ms_p50: sessionsApi,
      baseline_beads_api_ms_p50: beadsApi,
      overview_vs_api: round(overview / Math.max(0.1, overviewApi)),
      sessions_vs_api: round(sessions / Math.max(0.1, sessionsApi)),
      beads_vs_api: round(beads / Math.max(0.1, beadsApi)),
      runs: RUNS,
    });
  } finally {
    await server.stop('bench done');
  }
}

main().catch(fatal);
