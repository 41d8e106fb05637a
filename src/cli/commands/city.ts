/**
 * City lifecycle commands: start (background or --foreground), stop,
 * restart, status, suspend, resume, reload.
 */
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  realpathSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RemoteCity } from '../../client/index.js';
import {
  ConflictError,
  GcError,
  errorMessage,
  readAdminKey,
  startProcess,
} from '../../core/index.js';
import { cityRoot, connectServer, requireServer, type GlobalOptions } from '../context.js';
import { printJson, printLine, sessionReason, table } from '../output.js';

/** How long `gc start` waits for the server to answer. */
const START_WAIT_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What this start wrote to the log (from byte `from`), its last `lines` lines. */
function logSince(file: string, from: number, lines = 20): string {
  try {
    const text = readFileSync(file).subarray(from).toString('utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface StartOptions {
  foreground?: boolean;
  /** With a database: a server that serves the API and never leads. */
  apiOnly?: boolean;
  /** The TCP port (overrides [api] port). */
  port?: string;
}

export async function start(g: GlobalOptions, o: StartOptions): Promise<void> {
  const st = await startServer(g, o);
  if (!st) return; // ran in the foreground until stopped
  if (g.json) printJson({ started: true, ...st });
  else if (st.server) {
    printLine(
      `city ${st.city}: server ${st.server.id} started (${st.server.role}, pid ${st.pid}, sessions on ${st.provider}); log: ${st.log}`,
    );
  } else {
    printLine(
      `city ${st.city} started (pid ${st.pid}, sessions on ${st.provider}); log: ${st.log}`,
    );
  }
}

export interface Started {
  city: string;
  pid: number;
  provider: string;
  log: string;
  /** With a database: this server's id and role among the city's servers. */
  server?: { id: string; role: string; socket: string };
}

function portOption(port: string | undefined): number | undefined {
  if (port === undefined) return undefined;
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535) {
    throw new GcError('invalid', `--port: not a TCP port: ${JSON.stringify(port)}`, {
      fix: 'a number from 1 to 65535 (0: no TCP listener)',
    });
  }
  return n;
}

/**
 * Start the city server in the background and wait until it answers (or,
 * with `foreground`, run it here until it stops: then undefined).
 */
export async function startServer(
  g: GlobalOptions,
  o: StartOptions = {},
): Promise<Started | undefined> {
  const port = portOption(o.port);
  const root = cityRoot(g);
  // A bad city.toml is the usual reason a start fails: say so here, once,
  // with its positions, before anything is spawned.
  const { loadCityConfig, formatIssue } = await import('../../config/index.js');
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  // Recorded (or refreshed) machine-wide: gc run in one of its rigs finds it.
  const { registerRoot } = await import('./cities.js');
  await registerRoot(root).catch((e: unknown) =>
    process.stderr.write(
      `warning: could not record the city in the registry: ${errorMessage(e)}\n`,
    ),
  );
  const { databaseTarget } = await import('../../city/index.js');
  // On a database a city has as many servers as are started; on SQLite one.
  const shared = databaseTarget(loaded) !== undefined;
  if (o.apiOnly && !shared) {
    throw new GcError(
      'invalid',
      '--api-only needs [database] url: a city on SQLite has one server',
      {
        fix: 'set [database] url (see docs/database.md), or start without --api-only',
      },
    );
  }
  if (!shared) {
    const { city } = await connectServer(g);
    if (city) {
      const ping = await city.call<{ pid: number }>('GET', '/v0/ping');
      throw new ConflictError(`the city is already running (pid ${ping.pid})`, {
        details: { pid: ping.pid },
        fix: 'gc status shows it; gc restart restarts it',
      });
    }
  }
  // What will fail at once (a rig that is no repository, a command not on
  // PATH) is said now; the city starts anyway, and gc status shows it too.
  const { preflight } = await import('../../controller/index.js');
  for (const e of (await preflight(loaded)).errors) {
    process.stderr.write(`gc: warning: ${formatIssue(e)}\n`);
  }
  // The human's admin key (a 0600 file outside the city) must exist before
  // anyone talks to the server.
  const { openCityKeyRing } = await import('../../city/index.js');
  const ring = await openCityKeyRing(root);
  try {
    await ring.ensureAdminKey(root);
  } finally {
    await ring.close();
  }
  const flags = [
    ...(o.apiOnly ? ['--api-only'] : []),
    ...(port !== undefined ? ['--port', String(port)] : []),
  ];
  if (o.foreground) {
    await foreground(root, {
      ...(o.apiOnly ? { apiOnly: true } : {}),
      ...(port !== undefined ? { port } : {}),
    });
    return undefined;
  }
  // Each server of a shared city answers on its own socket: wait for this one's.
  const serverId = shared ? process.env.GC_SERVER_ID || randomBytes(5).toString('hex') : '';
  const log = path.join(root, '.gc', 'server.log');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(path.dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  // Only what this start writes is shown if it fails, not earlier runs' lines.
  const logStart = statSync(log).size;
  // The built gc has the server as one file beside it (no lazy chunks that
  // a rebuild could replace under a long-running server); from sources,
  // the server runs the same entry.
  const self = realpathSync(process.argv[1]!);
  const serverEntry = path.join(path.dirname(self), 'gc-server.js');
  const entry = self.endsWith('.js') && existsSync(serverEntry) ? serverEntry : self;
  const p = startProcess(
    process.execPath,
    [...process.execArgv, entry, 'start', '--foreground', '--city', root, ...flags],
    {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: shared ? { ...process.env, GC_SERVER_ID: serverId } : process.env,
    },
  );
  closeSync(fd);
  let exited: number | string | null | undefined;
  p.exited.then(
    (e) => (exited = e.error ? e.error.message : e.code),
    () => undefined,
  );
  p.child?.unref();
  const until = Date.now() + START_WAIT_MS;
  while (Date.now() < until) {
    if (exited !== undefined) {
      throw new GcError(
        'unavailable',
        `the city server exited at start (status ${exited}):\n${logSince(log, logStart)}`,
        {
          fix: `see ${log}`,
        },
      );
    }
    if (shared) {
      const socket = path.join(root, '.gc', `srv-${serverId}.sock`);
      const c = existsSync(socket)
        ? new RemoteCity(socket, 'gc', root, readAdminKey(root), { retryMs: 0 })
        : undefined;
      const ping = await c
        ?.call<{
          city: string;
          pid: number;
          provider: string;
          state: string;
          server?: { id: string; role: string };
        }>('GET', '/v0/ping')
        .catch(() => undefined);
      // Running: it has stood for leader once (and leads, or not).
      if (ping?.state === 'running') {
        return {
          city: ping.city,
          pid: ping.pid,
          provider: ping.provider,
          log,
          server: { id: serverId, role: ping.server?.role ?? 'replica', socket },
        };
      }
    } else {
      const c = (await connectServer(g).catch(() => undefined))?.city;
      if (c) {
        const st = await c.call<{ city: string; pid: number; provider: string }>(
          'GET',
          '/v0/status',
        );
        return { city: st.city, pid: st.pid, provider: st.provider, log };
      }
    }
    await sleep(100);
  }
  throw new GcError(
    'unavailable',
    `the city server did not answer within ${START_WAIT_MS} ms:\n${logSince(log, logStart)}`,
  );
}

async function foreground(root: string, o: { apiOnly?: boolean; port?: number }): Promise<void> {
  const { CityServer } = await import('../../server/index.js');
  // Agents run the very gc this server runs (this build, this node).
  const server = await CityServer.start({
    root,
    cliDir: path.dirname(realpathSync(process.argv[1]!)),
    ...o,
  });
  const onSignal = (sig: NodeJS.Signals) => {
    // stop() never rejects: it logs what failed and ends stopped.
    server.stop(`signal ${sig}`).catch(() => undefined);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await server.stopped();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
}

export async function stop(g: GlobalOptions): Promise<void> {
  // On a terminal, the shutdown's progress on one line of stderr.
  const live = !g.json && process.stderr.isTTY;
  const pid = await stopServer(g, undefined, live ? showShutdown : undefined);
  if (live) process.stderr.write('\r\x1b[2K');
  if (pid === undefined) {
    if (g.json) printJson({ stopped: false, running: false });
    else printLine('the city is not running');
    return;
  }
  if (g.json) printJson({ stopped: true, pid });
  else printLine(`city stopped (pid ${pid})`);
}

/** One progress line of a stopping city (see ShutdownProgress). */
export function shutdownLine(p: ShutdownWire, now: number): string {
  const left = `${p.sessions_left} of ${p.sessions_total} session(s)`;
  switch (p.phase) {
    case 'interrupting':
      return `stopping: interrupting ${left}`;
    case 'waiting':
      return `stopping: ${left} still running, ${Math.max(0, Math.ceil((p.deadline_at - now) / 1000))}s of grace left`;
    case 'stopping':
      return `stopping: grace over, stopping the last ${left}`;
    default:
      return 'stopping: sessions stopped, closing';
  }
}

function showShutdown(p: ShutdownWire): void {
  process.stderr.write(`\r\x1b[2K${shutdownLine(p, Date.now())}`);
}

/** The controller's shutdown progress as /v0/status reports it. */
export interface ShutdownWire {
  phase: string;
  sessions_total: number;
  sessions_left: number;
  deadline_at: number;
}

/**
 * Stop the city server and wait for its process to exit; its pid, or
 * undefined when none ran. `progress` gets the shutdown's progress while
 * the server still answers (four times a second).
 */
export async function stopServer(
  g: GlobalOptions,
  reason?: string,
  progress?: (p: ShutdownWire) => void,
): Promise<number | undefined> {
  // A city on a database may have several servers on this host: the ones
  // that do not lead stop first (so none takes over), then the leader,
  // which stops the sessions.
  for (const other of await followerServers(g)) {
    await other.city.call('POST', '/v0/control/stop', {
      reason: reason ?? `gc stop by ${other.city.actor}`,
    });
    await exited(other.pid);
  }
  const { city } = await connectServer(g);
  if (!city) return undefined;
  const { pid } = await city.call<{ pid: number }>('GET', '/v0/ping');
  await city.call('POST', '/v0/control/stop', { reason: reason ?? `gc stop by ${city.actor}` });
  // Wait for the process to exit: sessions get shutdown_timeout, then are stopped.
  let lastAsk = 0;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    if (progress && Date.now() - lastAsk >= 250) {
      lastAsk = Date.now();
      const st = await city
        .call<{ controller?: { shutdown?: ShutdownWire } }>('GET', '/v0/status')
        .catch(() => undefined); // the API closes as the server ends
      if (st?.controller?.shutdown) progress(st.controller.shutdown);
    }
    await sleep(100);
  }
  return pid;
}

/** The servers of the city on this host that do not lead (a city on a database). */
async function followerServers(g: GlobalOptions): Promise<{ city: RemoteCity; pid: number }[]> {
  const gcDir = path.join(cityRoot(g), '.gc');
  let files: string[];
  try {
    files = readdirSync(gcDir).filter((f) => /^srv-[a-z0-9-]+\.sock$/.test(f));
  } catch {
    return [];
  }
  const out: { city: RemoteCity; pid: number }[] = [];
  const token = readAdminKey(cityRoot(g));
  for (const f of files.sort()) {
    const city = new RemoteCity(path.join(gcDir, f), g.actor ?? 'gc', cityRoot(g), token, {
      retryMs: 0,
    });
    const ping = await city
      .call<{ pid: number; server?: { role: string } }>('GET', '/v0/ping')
      .catch(() => undefined);
    if (ping && ping.server?.role !== 'leader') out.push({ city, pid: ping.pid });
  }
  return out;
}

/** Wait until process `pid` has exited. */
async function exited(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
}

export async function restart(g: GlobalOptions): Promise<void> {
  // With --json, stdout holds only the start's JSON.
  const pid = await stopServer(g);
  if (!g.json)
    printLine(pid === undefined ? 'the city was not running' : `city stopped (pid ${pid})`);
  await start(g, {});
}

interface ServerWire {
  id: string;
  host: string;
  pid: number;
  role: string;
  url: string;
  term: number;
  seen_at: number;
}

interface StatusBody {
  /** This server and, with a database, every live server of the city. */
  cluster?: { id: string; role: string; term: number | null; servers: ServerWire[] | null };
  city: string;
  pid: number;
  provider: string;
  suspended: boolean;
  controller: {
    ticks: number;
    last_tick_ms: number;
    sessions: {
      name: string;
      agent?: string;
      state: string;
      reason?: string;
      start_error?: string;
      restarts_in_window: number;
    }[];
    capped: unknown[];
    capped_total?: number;
    sessions_total?: number;
    session_counts?: Record<string, number>;
    sessions_truncated?: boolean;
    pools: { agent: string; target: number; source: string }[];
    workspace_cap: number;
    config_error?: string;
    last_error?: string;
    provider_stale?: { since: number; reason: string };
    failing?: { agent: string; session: string; error: string; fix?: string }[];
  };
  beads: Record<string, number>;
}

function printBeads(b: Record<string, number>): void {
  printLine(
    `beads: ${b.open} open (${b.ready} ready), ${b.in_progress} in progress, ${b.closed} closed` +
      (b.other ? `; ${b.other} mail and other records` : ''),
  );
}

type SessionRow = StatusBody['controller']['sessions'][number];

/** Cities this small list every session in `gc status`; bigger ones list those needing attention. */
const LIST_ALL_UP_TO = 20;

/** The city's servers (a city on a database): role, where, last seen. */
function printServers(cluster: StatusBody['cluster']): void {
  if (!cluster?.servers) return;
  printLine(
    `servers: ${cluster.servers.length}; leader ${cluster.id} at term ${cluster.term ?? '-'}`,
  );
  const now = Date.now();
  printLine(
    table(
      ['SERVER', 'ROLE', 'HOST', 'PID', 'API', 'SEEN'],
      cluster.servers.map((s) => [
        s.id,
        s.role === 'leader' && s.id !== cluster.id ? 'leader (former)' : s.role,
        s.host,
        String(s.pid),
        s.url || '-',
        `${Math.max(0, Math.round((now - s.seen_at) / 1000))}s ago`,
      ]),
    ),
  );
}

export async function status(g: GlobalOptions, o: { all?: boolean } = {}): Promise<void> {
  const { root, city } = await connectServer(g);
  if (!city) {
    // Not running: the beads are still here to count.
    const { openLocalCity } = await import('../../client/index.js');
    const local = await openLocalCity({ root, command: 'status', readonly: true });
    let beads: Record<string, number>;
    try {
      beads = { ...(await local.beadCounts()) };
    } finally {
      await local.close();
    }
    if (g.json) printJson({ running: false, root, beads });
    else {
      printLine(`city at ${root}: not running (gc start)`);
      printBeads(beads);
    }
    return;
  }
  const st = await city.call<StatusBody>('GET', '/v0/status');
  const c = st.controller;
  if (o.all) {
    // Every session, a page at a time.
    const all: SessionRow[] = [];
    let cursor = '';
    do {
      const page = await city.call<{ items: SessionRow[]; next_cursor: string | null }>(
        'GET',
        `/v0/sessions?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      all.push(...page.items);
      cursor = page.next_cursor ?? '';
    } while (cursor);
    c.sessions = all;
    c.sessions_truncated = false;
  }
  if (g.json) {
    printJson({ running: true, ...st });
    return;
  }
  const total = c.sessions_total ?? c.sessions.length;
  const counts = Object.entries(c.session_counts ?? {})
    .sort(([a], [b]) => (a === 'running' ? -1 : b === 'running' ? 1 : a < b ? -1 : 1))
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
  printLine(
    `city ${st.city}: running (pid ${st.pid}, ${st.provider})${st.suspended ? ', SUSPENDED' : ''}; ${total} session${total === 1 ? '' : 's'}${counts ? ` (${counts})` : ''}, cap ${c.workspace_cap}; tick ${c.ticks} took ${Math.round(c.last_tick_ms)} ms`,
  );
  if (c.config_error) printLine(`config error (running the last good config): ${c.config_error}`);
  if (c.provider_stale) {
    printLine(
      `session provider stale since ${new Date(c.provider_stale.since).toISOString()} (${c.provider_stale.reason}): nothing is started or stopped until it recovers`,
    );
  } else if (c.last_error) printLine(`last tick error: ${c.last_error}`);
  for (const f of c.failing ?? []) {
    printLine(`agent ${f.agent} cannot start (${f.session}): ${f.error}`);
    if (f.fix) printLine(`  fix: ${f.fix}`);
  }
  printBeads(st.beads);
  printServers(st.cluster);
  for (const p of c.pools) printLine(`pool ${p.agent}: target ${p.target} (${p.source})`);
  const capped = c.capped_total ?? c.capped.length;
  if (capped) printLine(`${capped} session(s) held back by caps`);
  const listAll = o.all || total <= LIST_ALL_UP_TO;
  const rows = listAll ? c.sessions : c.sessions.filter((s) => s.state !== 'running');
  if (rows.length) {
    printLine(
      table(
        ['SESSION', 'AGENT', 'STATE', 'RESTARTS', 'REASON'],
        rows.map((s) => [
          s.name,
          s.agent ?? '',
          s.state,
          String(s.restarts_in_window),
          sessionReason(s),
        ]),
      ),
    );
  }
  if (!listAll) {
    printLine(
      `${rows.length ? 'listed: the sessions that need attention; ' : ''}gc status --all lists all ${total}`,
    );
  }
}

export async function control(
  g: GlobalOptions,
  what: 'suspend' | 'resume' | 'reload' | 'poke',
): Promise<void> {
  const city = await requireServer(g);
  const r = await city.call<{ ok: boolean; error?: string }>('POST', `/v0/control/${what}`);
  if (g.json) printJson(r);
  else if (what === 'reload' && !r.ok)
    process.stderr.write(`gc: reload refused, still running the last good config: ${r.error}\n`);
  else printLine(`${what}: ok`);
  if (what === 'reload' && !r.ok) process.exitCode = 2;
}
