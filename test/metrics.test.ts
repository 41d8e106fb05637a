/**
 * GET /metrics on a real city server (SQLite, JSONL events, the fake
 * session provider, real git for the merge queue): Prometheus text whose
 * figures match what happened (sessions by state, beads by status, merges,
 * events by family, API requests by route), never a bead id or a session
 * name as a label, and a key required.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdminKey } from '../src/city/index.js';
import { CityServer } from '../src/server/index.js';
import type { GcEvent } from '../src/events/index.js';
import { CONFIG_HOME, REPO, gcBuilt } from './helpers/cli.js';
import { branchWith, makeRepo } from './helpers/git.js';
import { apiCall } from './helpers/http.js';
import { until } from './helpers/wait.js';

let root = '';
let admin = '';
let server: CityServer;
const sock = () => ({ socketPath: path.join(root, '.gc', 'gc.sock') });
const gc = (args: string[]) => gcBuilt(['--city', root, '--actor', 'mayor', ...args]);
const json = async <T>(args: string[]): Promise<T> => {
  const r = await gc([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
};

/** The samples of a scrape: `name{labels}` -> value. */
async function scrape(): Promise<Map<string, number>> {
  const r = await apiCall(sock(), 'GET', '/metrics', { token: admin });
  expect(r.status).toBe(200);
  expect(String(r.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
  const out = new Map<string, number>();
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-metrics-'));
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      'name = "watch"',
      '[daemon]',
      'patrol_interval = "200ms"',
      '[[rigs]]',
      'name = "app"',
      'path = "app"',
      '[[agent]]',
      'name = "worker"',
      'start_command = "sleep 600"',
      'min_active_sessions = 3',
      'max_active_sessions = 3',
      '',
    ].join('\n'),
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  admin = readAdminKey(root)!;
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

describe('GET /metrics', () => {
  it('serves figures that match what happened', async () => {
    await until(
      'three sessions running',
      scrape,
      (m) => m.get('gc_sessions{state="running",provider="fake"}') === 3,
    );
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push((await json<{ id: string }>(['bead', 'create', `task ${i}`])).id);
    await json(['bead', 'close', ids[0]!]);
    // Two merges through the queue; each closes its bead.
    for (const [i, id] of [ids[1]!, ids[2]!].entries()) {
      branchWith(path.join(root, 'app'), `work-${i}`, { [`f${i}.txt`]: String(i) });
      const mr = await json<{ id: string }>([
        'mq',
        'submit',
        '--branch',
        `work-${i}`,
        '--bead',
        id,
      ]);
      await until(
        'the merge',
        () => json<{ state: string }>(['mq', 'status', mr.id]),
        (x) => x.state === 'merged',
      );
    }
    await json(['mail', 'send', 'worker', '-s', 'hello', '-m', 'hi']);
    const m = await until(
      'the merges counted',
      scrape,
      (x) => x.get('gc_mq_outcomes_total{rig="app",outcome="merged"}') === 2,
    );
    expect(m.get('gc_mq_merged{rig="app"}')).toBe(2);
    expect(m.get('gc_mq_enqueue_to_merge_seconds_count{rig="app"}')).toBe(2);
    expect(m.get('gc_controller_tick_seconds_count')).toBeGreaterThan(0);
    expect(m.get('gc_mq_depth{rig="app"}')).toBe(0);
    expect(m.get('gc_beads{status="closed"}')).toBe(3);
    expect(m.get('gc_beads{status="open"}')).toBe(1);
    expect(m.get('gc_bead_events_total{event="closed"}')).toBe(3);
    expect(m.get('gc_session_events_total{event="started"}')).toBe(3);
    // Events by family: what the log holds since the server started.
    const events = await json<GcEvent[]>(['events']);
    const families = new Map<string, number>();
    const started = events.findIndex((e) => e.type === 'controller.started');
    for (const e of events.slice(started + 1)) {
      const f = e.type.split('.')[0]!;
      families.set(f, (families.get(f) ?? 0) + 1);
    }
    const latest = await scrape();
    // Ours, and the queue's note to the author of each merge.
    const sent = events.slice(started + 1).filter((e) => e.type === 'mail.sent').length;
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(latest.get('gc_mail_sent_total')).toBe(sent);
    for (const [f, n] of families) {
      if (['bead', 'mq', 'mail', 'session'].includes(f)) {
        expect(latest.get(`gc_events_total{family="${f}"}`), f).toBe(n);
      }
    }
    expect(latest.get('gc_event_log_seq')).toBe(events.at(-1)!.seq);
    // The API counted itself, by route pattern.
    expect(
      latest.get('gc_api_requests_total{route="/metrics",method="GET",code="200"}'),
    ).toBeGreaterThan(0);
    expect(latest.get('gc_api_requests_total{route="/v0/beads",method="POST",code="200"}')).toBe(4);
    expect(latest.get('gc_api_request_seconds_count{route="/v0/beads",method="POST"}')).toBe(4);
  });

  it('no bead id or session name is a label; a key is required', async () => {
    const r = await apiCall(sock(), 'GET', '/metrics', { token: admin });
    const beads = await json<{ id: string }[]>(['bead', 'list', '--all']);
    for (const b of beads) expect(r.text).not.toContain(b.id);
    expect(r.text).not.toMatch(/worker-\d|"worker"/);
    const anon = await apiCall(sock(), 'GET', '/metrics');
    expect(anon.status).toBe(401);
  });

  it('a metrics key scrapes GET /metrics and nothing else', async () => {
    const { token } = await json<{ token: string }>([
      'auth',
      'key',
      'create',
      '--kind',
      'metrics',
      '--name',
      'prometheus',
    ]);
    const scrape = await apiCall(sock(), 'GET', '/metrics', { token });
    expect(scrape.status).toBe(200);
    expect(scrape.text).toMatch(/^gc_sessions\{/m);
    for (const [method, url] of [
      ['GET', '/v0/status'],
      ['GET', '/v0/beads?status=open'],
      ['GET', '/v0/events'],
      ['POST', '/v0/control/poke'],
    ] as const) {
      const r = await apiCall(sock(), method, url, { token });
      expect(r.status, url).toBe(403);
      expect(r.text, url).toMatch(/metrics key prometheus may only scrape GET \/metrics/);
    }
  });

  it('every metric the Grafana dashboard in deploy/ queries is served', async () => {
    const dash = JSON.parse(
      await readFile(path.join(REPO, 'deploy/grafana/gc-city.json'), 'utf8'),
    ) as { panels: { title: string; targets: { expr: string }[] }[] };
    const r = await apiCall(sock(), 'GET', '/metrics', { token: admin });
    // Every series name, and every declared metric (a counter not yet counted has no series).
    const served = new Set(
      r.text
        .split('\n')
        .filter(Boolean)
        .map((l) =>
          l.startsWith('# TYPE ') ? l.split(' ')[2]! : (/^[a-z_0-9]+/.exec(l)?.[0] ?? ''),
        ),
    );
    const used = dash.panels.flatMap((p) =>
      p.targets.flatMap((t) => t.expr.match(/\bgc_[a-z0-9_]+/g) ?? []),
    );
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(served, name).toContain(name);
  });
});
