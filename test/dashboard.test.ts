/**
 * The dashboard in a real browser (Debian's Chromium through
 * playwright-core) against a real city: a server with scripted agents in
 * real processes (the subprocess provider), a git rig with a merged and a
 * conflicting merge request, beads, a convoy and mail.
 *
 * - gc dashboard's link logs in once; the token leaves the address; the
 *   cookie is HttpOnly and SameSite=Strict;
 * - every page renders the city's data, an axe-core scan finds no serious
 *   or critical violation, and a screenshot of it is written to
 *   artifacts/dashboard/ (CI keeps that folder);
 * - a bead closed through the CLI shows closed on the open beads page
 *   within a second, without a reload;
 * - an operator nudges a session (its live output shows the line) and
 *   retries a merge request; a viewer is refused both, and mail;
 * - after the server restarts, the open page follows events again.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdminKey } from '../src/city/index.js';
import { CityServer } from '../src/server/index.js';
import { CONFIG_HOME, REPO, gcBuilt } from './helpers/cli.js';
import { branchWith, makeRepo } from './helpers/git.js';
import { apiCall, freePort, readSse } from './helpers/http.js';
import { until } from './helpers/wait.js';

const CHROMIUM = process.env.GC_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(REPO, 'artifacts', 'dashboard');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let root = '';
let repo = '';
let port = 0;
let server: CityServer;
let browser: Browser;
let token = '';
const beads: Record<string, string> = {};
let convoy = '';
let message = '';
let coder = '';
let conflicted = '';
let merged = '';

const gc = (args: string[]) => gcBuilt(['--city', root, '--actor', 'mayor', ...args]);
const json = async <T>(args: string[]): Promise<T> => {
  const r = await gc([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
};
const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const r = await apiCall({ host: '127.0.0.1', port }, method, url, {
    token,
    ...(body !== undefined ? { body } : {}),
  });
  expect(r.status, `${method} ${url}: ${r.text}`).toBeLessThan(300);
  return r.body as T;
};

const startServer = async () => {
  server = await CityServer.start({ root, sessionProvider: 'subprocess', log: () => undefined });
};

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  mkdirSync(SHOTS, { recursive: true });
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-ui-'));
  repo = path.join(root, 'app');
  makeRepo(repo);
  port = await freePort();
  // The coder says it is ready, then repeats each line it is sent.
  const agent =
    'sh -c \'echo coder ready; while true; do if read line; then echo \\"heard: $line\\"; else sleep 0.2; fi; done\'';
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      'name = "uicity"',
      '[api]',
      `port = ${port}`,
      '[daemon]',
      'patrol_interval = "200ms"',
      'alert_interval = "200ms"',
      // Fires once a merge request conflicts: the overview lists it.
      '[[alerts]]',
      'name = "conflicts-seen"',
      'metric = "mq_conflict_rate"',
      'above = 0.1',
      '[[rigs]]',
      'name = "app"',
      'path = "app"',
      '[[agent]]',
      'name = "coder"',
      'rig = "app"',
      `start_command = "${agent}"`,
      '',
    ].join('\n'),
  );
  await startServer();
  token = readAdminKey(root)!;
  for (const t of [
    'Fix the login form',
    'Write the changelog',
    'Tidy the README',
    'Update the README',
    '<img src=x onerror="globalThis.pwned=1"> markup in a title',
  ]) {
    beads[t] = (await api<{ id: string }>('POST', '/v0/beads', { title: t })).id;
  }
  convoy = (
    await api<{ convoy: { id: string } }>('POST', '/v0/convoys', {
      title: 'Release 1.2',
      beads: [beads['Write the changelog']!, beads['Tidy the README']!],
      wave_size: 1,
    })
  ).convoy.id;
  const sessions = await until(
    'the coder running',
    () => api<{ items: { name: string; agent: string; state: string }[] }>('GET', '/v0/sessions'),
    (p) => p.items.some((s) => s.agent === 'app/coder' || s.agent === 'coder'),
  );
  coder = sessions.items.find((s) => s.agent === 'app/coder' || s.agent === 'coder')!.name;
  // The coder holds a bead: the overview counts it as working.
  const claim = await apiCall(
    { host: '127.0.0.1', port },
    'POST',
    `/v0/beads/${beads['Fix the login form']}/claim`,
    { token, actor: coder },
  );
  expect(claim.status, claim.text).toBe(200);
  message = (
    await api<{ id: string }>('POST', '/v0/mail', {
      to: coder,
      subject: 'Please look at the login form',
      body: 'It fails on empty passwords.',
    })
  ).id;
  await api('POST', '/v0/costs', {
    session: coder,
    agent: 'coder',
    rig: 'app',
    model: 'claude-sonnet-4-5',
    input_tokens: 12_000,
    output_tokens: 3_000,
    cost_usd: 1.25,
  });
  branchWith(repo, 'feat-a', { 'README.md': 'from a\n' });
  const a = await json<{ id: string }>([
    'mq',
    'submit',
    '--branch',
    'feat-a',
    '--bead',
    beads['Update the README']!,
  ]);
  merged = a.id;
  await until(
    'feat-a merged',
    () => json<{ state: string }>(['mq', 'status', a.id]),
    (m) => m.state === 'merged',
  );
  branchWith(repo, 'feat-b', { 'README.md': 'from b\n' }, 'main~1');
  conflicted = (await json<{ id: string }>(['mq', 'submit', '--branch', 'feat-b'])).id;
  await until(
    'feat-b to conflict',
    () => json<{ state: string }>(['mq', 'status', conflicted]),
    (m) => m.state === 'needs-rebase',
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

/** A browser context logged in through gc dashboard's link. */
async function login(
  role: 'viewer' | 'operator',
  // The axe scan is a script the test adds: the page's own policy refuses it.
  bypassCSP = false,
): Promise<{ ctx: BrowserContext; page: Page; url: string }> {
  const link = await json<{ url: string; role: string }>(['dashboard', '--role', role]);
  expect(link.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/ui/login\\?token=`));
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP });
  const page = await ctx.newPage();
  await page.goto(link.url);
  await page.waitForURL(`http://127.0.0.1:${port}/ui/`);
  return { ctx, page, url: link.url };
}

async function axeSerious(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const w = globalThis as unknown as {
      axe: {
        run: (o: unknown) => Promise<{
          violations: { id: string; impact: string; nodes: { target: unknown }[] }[];
        }>;
      };
    };
    const r = await w.axe.run({
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      where: JSON.stringify(v.nodes[0]?.target),
    }));
  });
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} at ${v.where}`);
}

describe('dashboard in Chromium', () => {
  it('logs in once through the link: the token leaves the address, the cookie is HttpOnly and Strict', async () => {
    const { ctx, page, url } = await login('operator');
    expect(page.url()).not.toContain('token');
    const cookies = await ctx.cookies();
    expect(cookies.find((c) => c.name === 'gc_ui')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    });
    await expect(page.locator('h1').textContent()).resolves.toBe('Overview');
    const again = await (await browser.newContext()).newPage();
    const r = await again.goto(url);
    expect(r?.status()).toBe(401);
    expect(await again.textContent('main')).toMatch(/used already/);
    const none = await again.goto(`http://127.0.0.1:${port}/ui/beads`);
    expect(none?.status()).toBe(401);
    await ctx.close();
  });

  it('every page renders the city, passes an accessibility scan, and is kept as a screenshot', async () => {
    const { ctx, page } = await login('operator', true);
    const pages: [name: string, path: string, shows: string][] = [
      ['overview', '/ui/', 'conflicts-seen (app): mq_conflict_rate at 0.5, over 0.1'],
      ['sessions', '/ui/sessions', coder],
      ['session', `/ui/sessions/${coder}`, 'coder ready'],
      ['beads', '/ui/beads', 'Fix the login form'],
      ['bead', `/ui/beads/${beads['Fix the login form']}`, 'bead.created'],
      // The merge request that closed it, with the commit it merged as.
      ['bead-merged', `/ui/beads/${beads['Update the README']}`, merged],
      ['convoys', '/ui/convoys', 'Release 1.2'],
      ['convoy', `/ui/convoys/${convoy}`, 'Tidy the README'],
      ['mq', '/ui/mq?rig=app', conflicted],
      ['events', '/ui/events?type=bead.*', 'bead.created'],
      ['mail', `/ui/mail?agent=${coder}`, 'Please look at the login form'],
      ['thread', `/ui/mail/${message}`, 'It fails on empty passwords.'],
      ['alerts', '/ui/alerts', 'Health patrol findings'],
      ['costs', '/ui/costs', '$1.25'],
      ['costs-agent', '/ui/costs?agent=coder', 'last 14 days (USD) (agent coder)'],
    ];
    for (const [name, where, shows] of pages) {
      const r = await page.goto(`http://127.0.0.1:${port}${where}`);
      expect(r?.status(), name).toBe(200);
      await page
        .getByText(shows, { exact: false })
        .first()
        .waitFor({ timeout: 5000 })
        .catch(async (e: unknown) => {
          await page.screenshot({ path: path.join(SHOTS, `${name}-failed.png`), fullPage: true });
          throw new Error(
            `${name}: ${shows} not shown: ${(await page.textContent('main'))?.slice(0, 2000)}`,
            {
              cause: e,
            },
          );
        });
      expect(await axeSerious(page), `${name}: serious accessibility violations`).toEqual([]);
      await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    }
    await page.goto(`http://127.0.0.1:${port}/ui/`);
    const working = page.locator('.stat', { hasText: 'working' }).locator('.n');
    expect(await working.textContent()).toBe('1');
    await page.goto(`http://127.0.0.1:${port}/ui/sessions/${coder}`);
    await page.getByRole('link', { name: beads['Fix the login form']! }).waitFor();
    // Text from the city is text: a title with markup shows as written.
    await page.goto(`http://127.0.0.1:${port}/ui/beads`);
    await page.getByText('<img src=x onerror="globalThis.pwned=1"> markup in a title').waitFor();
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBe(
      undefined,
    );
    // Readable on a phone.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`http://127.0.0.1:${port}/ui/`);
    await page.screenshot({ path: path.join(SHOTS, 'overview-phone.png'), fullPage: true });
    expect(await axeSerious(page)).toEqual([]);
    await ctx.close();
  }, 120_000);

  it('a bead closed through the CLI shows closed on the open beads page within a second, without a reload', async () => {
    const { ctx, page } = await login('viewer');
    await page.goto(`http://127.0.0.1:${port}/ui/beads`);
    await page.locator('#gc-live', { hasText: 'on' }).waitFor();
    await page.evaluate(() => ((globalThis as unknown as { stayed: boolean }).stayed = true));
    const id = beads['Fix the login form']!;
    const closed = page.locator('[data-part=board] section', { has: page.locator('#col-closed') });
    expect(await closed.getByText(id).count()).toBe(0);
    const r = await gc(['bead', 'close', id]);
    expect(r.code, r.stderr).toBe(0);
    await closed.getByText(id).waitFor({ timeout: 1000 });
    expect(await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed)).toBe(
      true,
    );
    await ctx.close();
  });

  it('an operator nudges a session and retries a merge request; a viewer is refused both', async () => {
    const op = await login('operator');
    await op.page.goto(`http://127.0.0.1:${port}/ui/sessions/${coder}`);
    await op.page.getByLabel('Text to type').fill('hello from the dashboard');
    await op.page.getByRole('button', { name: 'Nudge' }).click();
    await op.page.locator('#gc-status', { hasText: 'Nudge: done.' }).waitFor();
    await op.page
      .locator('pre.output', { hasText: 'heard: hello from the dashboard' })
      .waitFor({ timeout: 10_000 });

    await op.page.goto(`http://127.0.0.1:${port}/ui/mq?rig=app`);
    op.page.once('dialog', (d) => {
      d.accept().catch(() => undefined);
    });
    await op.page.locator(`tr#${conflicted}`).getByRole('button', { name: 'Retry' }).click();
    await op.page.locator('#gc-status', { hasText: 'Retry: done.' }).waitFor();
    const mr = await api<{ retries: number }>('GET', `/v0/mq/${conflicted}`);
    expect(mr.retries).toBeGreaterThanOrEqual(1);
    await op.ctx.close();

    const viewer = await login('viewer');
    await viewer.page.goto(`http://127.0.0.1:${port}/ui/sessions/${coder}`);
    expect(await viewer.page.getByRole('button', { name: 'Nudge' }).count()).toBe(0);
    const viewerCsrf = (await viewer.page.locator('meta[name=gc-csrf]').getAttribute('content'))!;
    const tried = await viewer.page.evaluate(
      async ([csrf, urls]) => {
        const out: [number, string][] = [];
        for (const u of urls) {
          const r = await fetch(u, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-gc-csrf': csrf },
            body: JSON.stringify(u.endsWith('nudge') ? { text: 'sneaky' } : {}),
          });
          out.push([r.status, await r.text()]);
        }
        const mail = await fetch('/v0/mail/inbox');
        out.push([mail.status, await mail.text()]);
        return out;
      },
      [viewerCsrf, [`/v0/sessions/${coder}/nudge`, `/v0/mq/${conflicted}/retry`]] as const,
    );
    for (const [status, text] of tried) {
      expect(status).toBe(403);
      expect(text).toMatch(/viewer/);
    }
    const mailPage = await viewer.page.goto(`http://127.0.0.1:${port}/ui/mail`);
    expect(mailPage?.status()).toBe(403);
    await viewer.ctx.close();
  }, 60_000);

  it('an action without the page token, or from another site, is refused', async () => {
    const { ctx, page } = await login('operator');
    const statuses = await page.evaluate(async (name) => {
      const r = await fetch(`/v0/sessions/${name}/nudge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'no token' }),
      });
      return [r.status, await r.text()] as const;
    }, coder);
    expect(statuses[0]).toBe(403);
    expect(statuses[1]).toMatch(/CSRF/);
    const cookie = (await ctx.cookies()).find((c) => c.name === 'gc_ui')!.value;
    const csrf = await page.locator('meta[name=gc-csrf]').getAttribute('content');
    const cross = await apiCall(
      { host: '127.0.0.1', port },
      'POST',
      `/v0/sessions/${coder}/nudge`,
      {
        body: { text: 'from elsewhere' },
        headers: { cookie: `gc_ui=${cookie}`, 'x-gc-csrf': csrf!, origin: 'http://evil.example' },
      },
    );
    expect(cross.status).toBe(403);
    expect(cross.text).toMatch(/cross-origin/);
    await ctx.close();
  });

  it('after the server restarts, an open page follows events again (Last-Event-ID)', async () => {
    const { ctx, page } = await login('operator');
    await page.goto(`http://127.0.0.1:${port}/ui/beads`);
    await page.locator('#gc-live', { hasText: 'on' }).waitFor();
    await server.stop('restart for the test');
    await page.locator('#gc-live', { hasText: 'reconnecting' }).waitFor();
    await startServer();
    await page.locator('#gc-live', { hasText: 'on' }).waitFor({ timeout: 20_000 });
    const id = beads['Write the changelog']!;
    const r = await gc(['bead', 'close', id]);
    expect(r.code, r.stderr).toBe(0);
    const closed = page.locator('[data-part=board] section', { has: page.locator('#col-closed') });
    await closed.getByText(id).waitFor({ timeout: 5000 });
    await ctx.close();
  }, 60_000);
});

describe('dashboard links and the event stream', () => {
  it('gc dashboard checks its options; --open hands the opener a private page, never the token', async () => {
    const bad = await gc(['dashboard', '--role', 'boss']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--role.*viewer or operator/);
    const hours = await gc(['dashboard', '--hours', '0']);
    expect(hours.code).toBe(2);
    // A city that is not running has no dashboard to log in to.
    const idle = await mkdtemp(path.join(os.tmpdir(), 'gc-ui-idle-'));
    await writeFile(path.join(idle, 'city.toml'), '[workspace]\nname = "idle"\n');
    const off = await gcBuilt(['--city', idle, 'dashboard']);
    await rm(idle, { recursive: true, force: true });
    expect(off.code).not.toBe(0);
    expect(off.stderr).toMatch(/served by a running city/);
    const opener = path.join(root, 'opener.sh');
    const saw = path.join(root, 'opener-args.txt');
    await writeFile(opener, `#!/bin/sh\nprintf '%s\\n' "$@" > '${saw}'\n`, { mode: 0o755 });
    const r = await gcBuilt(['--city', root, 'dashboard', '--open', '--role', 'viewer', '--json'], {
      env: { BROWSER: opener },
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { url: string; role: string; opened: string };
    expect(out.role).toBe('viewer');
    const args = await until(
      'the opener ran',
      () => readFile(saw, 'utf8').catch(() => ''),
      (t) => t !== '',
    );
    const token = new URL(out.url).searchParams.get('token')!;
    expect(args).not.toContain(token);
    const page = args.trim();
    expect(page).toMatch(/gc-dashboard-[0-9a-f]+\.html$/);
    expect((statSync(page).mode & 0o777).toString(8)).toBe('600');
    expect(readFileSync(page, 'utf8')).toContain(token);
    // The link itself still works once.
    const login = await apiCall(
      { host: '127.0.0.1', port },
      'GET',
      new URL(out.url).pathname + new URL(out.url).search,
    );
    expect(login.status).toBe(200);
    expect(String(login.headers['set-cookie'])).toMatch(
      /^gc_ui=v1\.viewer\..*HttpOnly; SameSite=Strict/,
    );
  });

  it('bad addresses get a clear page and the server keeps serving', async () => {
    const link = await json<{ url: string }>(['dashboard']);
    const u = new URL(link.url);
    const at = { host: '127.0.0.1', port };
    const login = await apiCall(at, 'GET', u.pathname + u.search);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const get = (p: string, method = 'GET') => apiCall(at, method, p, { headers: { cookie } });
    const cases: [string, number, RegExp, string?][] = [
      ['/ui/beads/%E0%A4%A', 400, /Bad address/],
      ['/ui/beads/no-such-bead', 404, /not found/i],
      ['/ui/sessions/..%2F..%2Fetc', 400, /session name|Bad request/i],
      ['/ui/sessions/nobody-here', 404, /not found/i],
      ['/ui/nowhere', 404, /No such page/],
      ['/ui/events?type=%3Cscript%3E', 400, /a type is letters/],
      ['/ui/beads', 405, /Not allowed/, 'POST'],
      ['/ui/assets/nothing.js', 404, /no such asset/],
    ];
    for (const [p, status, text, method] of cases) {
      const r = await get(p, method);
      expect([p, r.status]).toEqual([p, status]);
      expect(r.text).toMatch(text);
      expect(r.text).not.toContain('<script>');
    }
    const anon = await apiCall(at, 'GET', '/ui/beads');
    expect(anon.status).toBe(401);
    expect(anon.text).toMatch(/gc dashboard/);
    expect((await get('/ui/beads')).status).toBe(200);
  });

  it('the event stream: plain frames for browsers; Last-Event-ID wins over after_seq', async () => {
    const { seq } = await api<{ seq: number }>('GET', '/v0/events/latest');
    await api('POST', '/v0/beads', { title: 'stream one' });
    await api('POST', '/v0/beads', { title: 'stream two' });
    const target = { host: '127.0.0.1', port };
    const first = await readSse(target, `/v0/events/stream?plain=true&after_seq=${seq}`, {
      token,
      until: (f) => f.length >= 1,
    });
    expect(first[0]).toMatchObject({ id: String(seq + 1), event: '' });
    expect(first[0]!.data).toMatchObject({ seq: seq + 1, type: expect.any(String) as string });
    // A reconnect sends the id it got to with the URL it first used.
    const resumed = await readSse(target, `/v0/events/stream?plain=true&after_seq=${seq}`, {
      token,
      lastEventId: String(seq + 1),
      until: (f) => f.length >= 1,
    });
    expect(resumed[0]!.id).toBe(String(seq + 2));
  });
});
