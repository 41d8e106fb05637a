/**
 * A fleet on one machine: a real city server (a child process, `gc start
 * --foreground` from source) with one pool of N agents running `sleep
 * 100000`, on tmux and then on subprocess. Measured per provider:
 *
 * - start_s: from the server's start until all N sessions run;
 * - tick_ms_p50: the controller's tick while steady (forced by pokes);
 * - status_ms: GET /v0/status (median of 5);
 * - notify_ms: one mail to the whole pool with notify (every session nudged);
 * - server_rss_mb, tmux_rss_mb (the city's tmux server; 0 on subprocess);
 * - stop_s: from asking the server to stop until it exited; every session
 *   is stopped by then;
 * - left_processes: processes whose environment names the city, after it.
 *
 * Baseline (same run, same machine): the naive lifecycle, one session at a
 * time through the provider, eight at once: start, and stop with a
 * per-session kill that reads the whole process table every 25 ms until
 * its tree is gone (what stop did before the shared reaper and stopMany).
 * It runs on a sample of NAIVE sessions and is scaled linearly to N, as
 * the output says (naive_sample). start_speedup / stop_speedup compare.
 *
 * A per-session call costs more the more sessions exist (a new tmux client
 * costs the server work in proportion to its sessions; the old kill read
 * every process), so the sample is taken at the fleet's midpoint: before
 * it, N/2 - NAIVE/2 filler sessions are started (batched, not timed) on
 * the baseline's own server, so the sample sees N/2 sessions on average
 * and scaling it linearly gives the whole fleet's cost. A sample on an
 * empty server would give the first sessions' cost, not the fleet's.
 *
 *   npx tsx bench/fleet.ts [--quick] [--provider=tmux|subprocess]
 *   N = 1000 (quick: 200); naive sample 100; both providers unless one is named
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { citySocketPath } from '../src/server/index.js';
import { CityOps, KeyRing, readAdminKey } from '../src/city/index.js';
import { leftoverProcesses } from '../src/cli/commands/demo-procs.js';
import { parseCityConfig } from '../src/config/index.js';
import { Controller, citySpec } from '../src/controller/index.js';
import { mapLimit } from '../src/core/index.js';
import { JsonlEventLog } from '../src/events/index.js';
import {
  CountingProvider,
  openProvider,
  tmuxSocketFor,
  type Provider,
} from '../src/runtime/index.js';
import { listProcesses, processTree } from '../src/runtime/proc.js';
import { SqliteStore } from '../src/store/index.js';
import { fatal, note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const N = quick ? 200 : 1000;
const NAIVE = 100;
const REPO = path.resolve(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function call(
  sock: string,
  token: string,
  method: string,
  url: string,
  body?: unknown,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: sock,
        method,
        path: url,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body));
          } catch {
            resolve(body);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Memory of the city's session processes (their environment or command
 * line names the city), as proportional set size (shared pages split
 * between their users): the agents' own processes (`sleep` here) and the
 * rest (wrapper shells, output loggers).
 */
function sessionMemory(root: string): { agentKb: number; otherKb: number } {
  const env = Buffer.from(`GC_CITY_ROOT=${root}\0`);
  let agentKb = 0;
  let otherKb = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`);
      if (!readFileSync(`/proc/${pid}/environ`).includes(env) && !cmd.includes(root)) continue;
      if (cmd.includes('gc-server') || cmd.includes('gc.ts')) continue; // the server itself
      const pss = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      const kb = pss ? Number(pss[1]) : 0;
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') agentKb += kb;
      else otherKb += kb;
    } catch {
      // gone, or not ours to read
    }
  }
  return { agentKb, otherKb };
}

/** When the city's controller started (epoch ms), from its event. */
function controllerStartedAt(root: string): number {
  for (const line of readFileSync(path.join(root, '.gc', 'events.jsonl'), 'utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as { type: string; ts: string };
    if (e.type === 'controller.started') return Date.parse(e.ts);
  }
  throw new Error('no controller.started event');
}

/** RSS of the city's tmux server (its command line names the city's socket). */
async function tmuxRssMb(socket: string): Promise<number> {
  let mb = 0;
  for (const p of await listProcesses(true)) {
    if (!p.names.includes('tmux') && !p.names.some((n) => n.startsWith('tmux'))) continue;
    try {
      if (readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes(socket)) mb += rssMb(p.pid);
    } catch {
      // gone
    }
  }
  return mb;
}

interface Status {
  controller: { last_tick_ms: number; ticks: number; session_counts: Record<string, number> };
}

/**
 * The old per-session kill: read the whole process table every 25 ms until
 * the tree of `root` is gone (SIGTERM first, SIGKILL after the grace).
 */
async function naiveKillTree(root: number, graceMs: number): Promise<void> {
  const alive = async () =>
    processTree(root, await listProcesses()).filter(
      (p) => p.state !== 'Z' && p.pid !== process.pid,
    );
  let procs = await alive();
  for (const p of procs) process.kill(p.pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (procs.length && Date.now() < until) {
    await sleep(25);
    procs = await alive();
  }
  for (const p of procs) process.kill(p.pid, 'SIGKILL');
}

/** Start `count` filler sessions (`f-<i>`, not the controller's) as one batch. */
async function fill(provider: Provider, dir: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `f-${i}`);
  const config = { command: 'sleep 100000', work_dir: dir, env: { GC_CITY_ROOT: dir } };
  const errors = await provider.startMany!(names.map((name) => ({ name, config })));
  const failed = errors.filter((e) => e !== undefined);
  if (failed.length) throw new Error(`fillers: ${failed.length} failed: ${String(failed[0])}`);
  return names;
}

/** The provider without its batch calls: the controller falls back to one call per session. */
class OneByOne extends CountingProvider {
  constructor(inner: Provider) {
    super(inner);
    delete this.startMany;
    delete this.stopMany;
    delete this.interruptMany;
  }
}

/**
 * The baseline, on NAIVE sessions. Start: today's per-session start, which
 * is the city's own controller with the batch calls taken away: a token
 * each (one write each), then `start` and `setMeta` per session, eight at
 * once, in one tick. Stop: per session, the provider's stop with the kill
 * that reads the whole process table every 25 ms until that session's tree
 * is gone (what stop did before the shared reaper and stopMany), eight at once.
 */
async function naive(provider: Provider, dir: string): Promise<[number, number]> {
  await mkdir(dir, { recursive: true });
  const fillers = await fill(provider, dir, Math.max(0, N / 2 - NAIVE / 2));
  const loaded = parseCityConfig(
    [
      '[workspace]',
      'name = "naive"',
      `max_active_sessions = ${NAIVE + 10}`,
      '[daemon]',
      `max_wakes_per_tick = ${NAIVE}`,
      '[[agent]]',
      'name = "b"',
      'start_command = "sleep 100000"',
      `min_active_sessions = ${NAIVE}`,
      `max_active_sessions = ${NAIVE}`,
      '',
    ].join('\n'),
    path.join(dir, 'city.toml'),
  );
  const store = new SqliteStore({ path: path.join(dir, 'beads.db'), prefix: 'nv' });
  const events = await JsonlEventLog.open({ path: path.join(dir, 'events.jsonl') });
  const keys = await KeyRing.open(dir);
  const tokens = keys.sessionTokens();
  const controller = new Controller({
    provider: new OneByOne(provider),
    ops: new CityOps(
      store,
      events,
      () => undefined,
      () => undefined,
    ),
    spec: citySpec(loaded),
    tokens: { issue: (n) => tokens.issue(n), revoke: (n) => tokens.revoke(n) },
    log: () => undefined,
  });
  const t0 = nowMs();
  await controller.tick();
  const start = (nowMs() - t0) / 1000;
  const names = (await provider.listRunning('b-')).filter((n) => /^b-\d+$/.test(n));
  if (names.length !== NAIVE) throw new Error(`naive: ${names.length} of ${NAIVE} started`);
  // Each session's root process: the topmost one with its name in its environment.
  const procs = await listProcesses();
  const sessionOf = new Map<number, string>();
  for (const p of procs) {
    let env = '';
    try {
      env = readFileSync(`/proc/${p.pid}/environ`, 'utf8');
    } catch {
      continue; // gone
    }
    const m = /(?:^|\0)GC_SESSION_NAME=(b-\d+)\0/.exec(env);
    if (m) sessionOf.set(p.pid, m[1]!);
  }
  const roots = new Map<string, number>();
  for (const p of procs) {
    const name = sessionOf.get(p.pid);
    if (name && sessionOf.get(p.ppid) !== name) roots.set(name, p.pid);
  }
  const t1 = nowMs();
  await mapLimit(names, 8, async (n) => {
    const root = roots.get(n);
    if (root) await naiveKillTree(root, 5000);
    await provider.stop(n); // the provider's own cleanup (its tree is gone by now)
  });
  const stop = (nowMs() - t1) / 1000;
  await controller.shutdown().catch(() => undefined);
  await provider.stopMany!(fillers);
  await keys.close();
  await events.close();
  await store.dispose();
  return [start, stop];
}

async function run(kind: 'tmux' | 'subprocess'): Promise<Record<string, unknown>> {
  const root = scratchDir(`fleet-${kind}`);
  const configHome = path.join(root, 'config');
  process.env.GC_CONFIG_HOME = configHome;
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      `name = "fleet${kind === 'tmux' ? 't' : 's'}"`,
      `max_active_sessions = ${N + 10}`,
      '[session]',
      `provider = "${kind === 'tmux' ? '' : 'subprocess'}"`,
      '[daemon]',
      'patrol_interval = "5s"',
      `max_wakes_per_tick = ${N}`,
      'shutdown_timeout = "5s"',
      '[[agent]]',
      'name = "w"',
      'start_command = "sleep 100000"',
      `min_active_sessions = ${N}`,
      `max_active_sessions = ${N}`,
      '',
    ].join('\n'),
  );
  // The baseline first, on its own provider instance over the same kind of runtime.
  const base = openProvider(kind === 'tmux' ? 'tmux' : 'subprocess', {
    cityRoot: path.join(root, 'naive'),
  });
  const [naiveStart, naiveStop] = await naive(base, path.join(root, 'naive'));
  await base.close();
  note(
    `${kind}: naive ${NAIVE} sessions: start ${round(naiveStart)} s, stop ${round(naiveStop)} s`,
  );

  const t0 = nowMs();
  const server: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO, 'src/cli/gc.ts'), 'start', '--foreground', '--city', root],
    { cwd: REPO, env: { ...process.env, GC_CONFIG_HOME: configHome }, stdio: 'ignore' },
  );
  let exitedAt: number | undefined;
  server.on('exit', () => (exitedAt = nowMs()));
  const sock = citySocketPath(root);
  let token = '';
  let st: Status | undefined;
  for (;;) {
    token ||= readAdminKey(root) ?? '';
    st = token
      ? ((await call(sock, token, 'GET', '/v0/status').catch(() => undefined)) as Status)
      : undefined;
    const running = st?.controller?.session_counts?.running ?? 0;
    if (running >= N) break;
    if (exitedAt !== undefined || nowMs() - t0 > 900_000)
      throw new Error(`${kind}: only ${running} of ${N} started`);
    await sleep(100);
  }
  const allRunningAt = Date.now();
  const totalS = (nowMs() - t0) / 1000;
  // The fleet's start counts from the controller's start (its event), as
  // the baseline's does from its tick: the server's own boot is boot_s.
  const controllerAt = controllerStartedAt(root);
  const startS = (allRunningAt - controllerAt) / 1000;
  const bootS = totalS - startS;
  note(
    `${kind}: ${N} sessions running ${round(startS)} s after the controller started (boot ${round(bootS)} s)`,
  );
  // Steady: force ticks, read each one's time.
  const ticks: number[] = [];
  let seen = st!.controller.ticks;
  for (let i = 0; i < 15; i++) {
    await call(sock, token, 'POST', '/v0/control/poke');
    await sleep(400);
    const s = (await call(sock, token, 'GET', '/v0/status')) as Status;
    if (s.controller.ticks !== seen) ticks.push(s.controller.last_tick_ms);
    seen = s.controller.ticks;
  }
  const statusTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = nowMs();
    await call(sock, token, 'GET', '/v0/status');
    statusTimes.push(nowMs() - t);
  }
  // A fan-out: one mail to the whole pool, every session nudged.
  const tn = nowMs();
  const mail = (await call(sock, token, 'POST', '/v0/mail', {
    to: 'w',
    subject: 'to all',
    body: '',
    notify: true,
  })) as { notified?: string[] };
  const notifyMs = nowMs() - tn;
  if (mail.notified?.length !== N)
    throw new Error(`${kind}: mail notified ${mail.notified?.length ?? 0} of ${N}`);
  const serverRss = rssMb(server.pid!);
  const tmuxRss = kind === 'tmux' ? await tmuxRssMb(tmuxSocketFor(root)) : 0;
  const mem = sessionMemory(root);
  const t1 = nowMs();
  await call(sock, token, 'POST', '/v0/control/stop').catch(() => undefined);
  while (exitedAt === undefined && nowMs() - t1 < 600_000) await sleep(100);
  const stopS = ((exitedAt ?? nowMs()) - t1) / 1000;
  let left = leftoverProcesses(root);
  for (let i = 0; i < 20 && left > 0; i++) {
    await sleep(250);
    left = leftoverProcesses(root);
  }
  note(`${kind}: stopped in ${round(stopS)} s; ${left} process(es) left`);
  const scale = N / NAIVE;
  return {
    provider: kind,
    sessions: N,
    start_s: round(startS, 1),
    boot_s: round(bootS, 1),
    stop_s: round(stopS, 1),
    tick_ms_p50: round(percentile(ticks, 50)),
    status_ms: round(percentile(statusTimes, 50)),
    notify_ms: round(notifyMs),
    server_rss_mb: round(serverRss, 1),
    tmux_rss_mb: round(tmuxRss, 1),
    // Proportional set size per session: the agent's own process (sleep),
    // and what the provider adds around it (wrapper shell, output logger).
    session_agent_pss_kb: round(mem.agentKb / N, 0),
    session_overhead_pss_kb: round(mem.otherKb / N, 0),
    left_processes: left,
    naive_sample: NAIVE,
    naive_start_s: round(naiveStart * scale, 1),
    naive_stop_s: round(naiveStop * scale, 1),
    start_speedup: round((naiveStart * scale) / Math.max(startS, 0.001), 2),
    stop_speedup: round((naiveStop * scale) / Math.max(stopS, 0.001), 2),
  };
}

async function main(): Promise<void> {
  const runs = [];
  const only = /^--provider=(tmux|subprocess)$/.exec(
    process.argv.find((a) => a.startsWith('--provider=')) ?? '',
  );
  const kinds = only ? [only[1] as 'tmux' | 'subprocess'] : (['tmux', 'subprocess'] as const);
  for (const kind of kinds) runs.push(await run(kind));
  result({
    bench: 'fleet',
    quick,
    note: `naive_* are a sample of ${NAIVE} sessions through the naive lifecycle, taken with ${N / 2 - NAIVE / 2} other sessions running (the fleet's midpoint), scaled linearly to ${N}`,
    runs,
  });
}

main().then(
  () => process.exit(0),
  (e: unknown) => fatal(e),
);
