/**
 * A hostile-client run against a real city server (a child process: the
 * built-from-source `gc start --foreground`), measuring that it stays up,
 * answers, and keeps its memory:
 *
 * - open_beads / claim_next_p99_ms: the store holds N open beads (100,000;
 *   quick 20,000); 300 claim-next calls through the API, one at a time.
 * - ping_p99_ms_idle: GET /v0/ping over the unix socket, idle (the baseline).
 * - stalled_sse_readers / rss_growth_mb: 16 clients open the event stream
 *   from seq 0 on a log of log_mb (>= 100 MB; quick 20 MB) and never read;
 *   the server's RSS growth over the following seconds.
 * - flood_connections / ping_p99_ms_during_flood: twice the TCP listener's
 *   connection cap (max_connections) of half-open connections; pings on the
 *   unix socket meanwhile. ping_flood_ratio = during flood / idle.
 * - fuzz_requests / fuzz_5xx: random methods, paths, bodies, headers and
 *   keys (admin, agent, bad, none); any 5xx is a defect.
 * - server_alive / crashes: the process is still running and answering.
 *
 *   npx tsx bench/abuse.ts [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, createServer as netServer, type Socket } from 'node:net';
import path from 'node:path';
import { citySocketPath } from '../src/server/index.js';
import { readAdminKey } from '../src/city/index.js';
import { SqliteStore } from '../src/store/index.js';
import { fatal, note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const OPEN_BEADS = quick ? 20_000 : 100_000;
const LOG_MB = quick ? 20 : 110;
const CAP = 500;
const READERS = 16;
const FUZZ = 10_000;
const REPO = path.resolve(import.meta.dirname, '..');

interface Answer {
  status: number;
  body: string;
}

function call(
  socketPath: string,
  method: string,
  url: string,
  o: { token?: string; body?: string; headers?: Record<string, string>; agent?: Agent } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path: url,
        ...(o.agent ? { agent: o.agent } : {}),
        headers: {
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
          ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...o.headers,
        },
        timeout: 30_000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(o.body);
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function pings(sock: string, token: string, n: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = nowMs();
    const r = await call(sock, 'GET', '/v0/ping', { token, agent });
    if (r.status !== 200) throw new Error(`ping answered ${r.status}`);
    out.push(nowMs() - t);
  }
  agent.destroy();
  return out;
}

/** A log of about `mb` MB written straight to disk before the server opens it. */
async function writeLog(file: string, mb: number): Promise<number> {
  const out = createWriteStream(file);
  const pad = 'x'.repeat(1000);
  const ts = new Date().toISOString();
  let seq = 0;
  let bytes = 0;
  while (bytes < mb * 1024 * 1024) {
    const line = `{"seq":${++seq},"type":"bench.pad","ts":"${ts}","actor":"bench","payload":{"pad":"${pad}"}}\n`;
    bytes += line.length;
    if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
  return seq;
}

const METHODS = ['GET', 'POST', 'PATCH', 'DELETE', 'PUT'];
const PATHS = [
  '/v0/ping',
  '/v0/status',
  '/v0/beads',
  '/v0/beads/ready',
  '/v0/beads/claim-next',
  '/v0/beads/gc-1',
  '/v0/beads/gc-1/close',
  '/v0/beads/gc-1/claim',
  '/v0/beads/gc-1/deps',
  '/v0/beads/%00/deps/..%2f',
  '/v0/events?after_seq=-1&limit=99999999',
  '/v0/events?since=yesterday',
  '/v0/mail',
  '/v0/mail/nope',
  '/v0/mq',
  '/v0/mq/mr-x?wait=99999',
  '/v0/keys',
  '/v0/agents',
  '/v0/runs',
  '/v0/sessions',
  '/v0/sling',
  '/v0/hook?agent=%ff',
  '/v0/../../etc/passwd',
  '/' + 'a'.repeat(5000),
];
const VALUES: unknown[] = [
  null,
  true,
  -1,
  1e308,
  Number.MAX_SAFE_INTEGER,
  '',
  'x'.repeat(70_000),
  '\u0000\u001b[2J\u009b',
  '😀'.repeat(100),
  [],
  {},
  { $gt: 1 },
  ['a', 1, null],
];
const FIELDS = [
  'title',
  'to',
  'body',
  'branch',
  'bead',
  'priority',
  'type',
  'query',
  'wait_ms',
  'lease_ms',
  'env',
  'target',
  'name',
  'kind',
  'status',
  'assignee',
  '__proto__',
  'constructor',
];

function pick<T>(a: readonly T[]): T {
  return a[Math.floor(Math.random() * a.length)]!;
}

function fuzzBody(): string | undefined {
  const r = Math.random();
  if (r < 0.1) return undefined;
  if (r < 0.2) return '{"title": "unterminated';
  if (r < 0.25) return '[1,2,3]';
  if (r < 0.3) return '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
  const o: Record<string, unknown> = {};
  const n = 1 + Math.floor(Math.random() * 4);
  for (let i = 0; i < n; i++) o[pick(FIELDS)] = pick(VALUES);
  return JSON.stringify(o);
}

async function fuzz(
  sock: string,
  tokens: string[],
  n: number,
): Promise<{ fivexx: number; errors: number; samples: string[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  let fivexx = 0;
  let errors = 0;
  const samples: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const method = pick(METHODS);
      const url = pick(PATHS);
      const body = method === 'GET' ? undefined : fuzzBody();
      const headers: Record<string, string> = {};
      if (Math.random() < 0.3)
        headers['idempotency-key'] = Math.random() < 0.5 ? `k${next % 50}` : 'a key with spaces ~';
      if (Math.random() < 0.2) headers['x-gc-actor'] = pick(['refinery', 'admin', 'bob', '']);
      if (Math.random() < 0.1)
        headers['last-event-id'] = pick(['-1', 'abc', '99999999999999999999']);
      try {
        const r = await call(sock, method, url, {
          token: pick(tokens),
          ...(body !== undefined ? { body } : {}),
          headers,
          agent,
        });
        if (r.status >= 500) {
          fivexx++;
          if (samples.length < 5)
            samples.push(
              `${method} ${url} ${body?.slice(0, 80)} -> ${r.status} ${r.body.slice(0, 200)}`,
            );
        }
      } catch (e) {
        errors++;
        if (samples.length < 5) samples.push(`${method} ${url}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  agent.destroy();
  return { fivexx, errors, samples };
}

async function main(): Promise<void> {
  const root = scratchDir('abuse');
  const configHome = path.join(root, 'config');
  process.env.GC_CONFIG_HOME = configHome;
  const port = await freePort();
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]\nname = "abuse"\n[daemon]\npatrol_interval = "30s"\n[events]\nmax_segment_mb = 1024\n[api]\nport = ${port}\nmax_connections = ${CAP}\nrate_per_s = 0\n`,
  );
  await mkdir(path.join(root, '.gc'), { recursive: true });
  note(`writing a ${LOG_MB} MB event log`);
  await writeLog(path.join(root, '.gc', 'events.jsonl'), LOG_MB);
  note(`creating ${OPEN_BEADS} open beads`);
  const store = new SqliteStore({ path: path.join(root, '.gc', 'beads.db'), durability: 'normal' });
  for (let i = 0; i < OPEN_BEADS; i += 2000) {
    await Promise.all(
      Array.from({ length: Math.min(2000, OPEN_BEADS - i) }, (_, k) =>
        store.create({ title: `work ${i + k}`, priority: (i + k) % 5 }),
      ),
    );
  }
  await store.dispose();

  const server: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO, 'src/cli/gc.ts'), 'start', '--foreground', '--city', root],
    {
      cwd: REPO,
      env: { ...process.env, GC_CONFIG_HOME: configHome },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let exited: number | null | undefined;
  let serverLog = '';
  server.stderr!.on('data', (d: Buffer) => (serverLog = (serverLog + d.toString()).slice(-4000)));
  server.on('exit', (code) => (exited = code));
  const sock = citySocketPath(root);
  let admin = '';
  for (let t = nowMs(); ;) {
    admin = readAdminKey(root) ?? '';
    const ok = admin
      ? await call(sock, 'GET', '/v0/ping', { token: admin }).catch(() => undefined)
      : undefined;
    if (ok?.status === 200) break;
    if (exited !== undefined || nowMs() - t > 60_000)
      throw new Error(`the server did not start: ${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = server.pid!;
  try {
    const idle = await pings(sock, admin, 300);
    note(`idle ping p99 ${round(percentile(idle, 99))} ms`);

    const claims: number[] = [];
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 300; i++) {
      const t = nowMs();
      const r = await call(sock, 'POST', '/v0/beads/claim-next', {
        token: admin,
        body: '{}',
        headers: { 'x-gc-actor': `bench-${i}` },
        agent,
      });
      if (r.status !== 200 || !r.body.includes('"bead":{'))
        throw new Error(`claim-next: ${r.status} ${r.body.slice(0, 200)}`);
      claims.push(nowMs() - t);
    }
    agent.destroy();
    note(`claim-next p99 ${round(percentile(claims, 99))} ms at ${OPEN_BEADS} open beads`);

    // Stalled SSE readers.
    const rss0 = rssMb(pid);
    const readers: Socket[] = [];
    for (let i = 0; i < READERS; i++) {
      const s = connect(sock);
      s.on('error', () => undefined);
      s.write(
        `GET /v0/events/stream?after_seq=0 HTTP/1.1\r\nHost: gc\r\nAuthorization: Bearer ${admin}\r\n\r\n`,
      );
      readers.push(s);
    }
    let rssMax = rss0;
    for (let t = nowMs(); nowMs() - t < (quick ? 5000 : 15000);) {
      await new Promise((r) => setTimeout(r, 250));
      rssMax = Math.max(rssMax, rssMb(pid));
    }
    for (const s of readers) s.destroy();
    note(`RSS ${round(rss0)} MB -> peak ${round(rssMax)} MB with ${READERS} stalled readers`);

    // Connection flood on TCP; pings on the socket meanwhile.
    const flood: Socket[] = [];
    const FLOOD = CAP * 2 + 100;
    for (let i = 0; i < FLOOD; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write('GET /v0/ping HTTP/1.1\r\nHost: x\r\n');
      flood.push(s);
    }
    await new Promise((r) => setTimeout(r, 500));
    const during = await pings(sock, admin, 300);
    for (const s of flood) s.destroy();
    note(`ping p99 during a flood of ${FLOOD}: ${round(percentile(during, 99))} ms`);

    // Fuzz.
    const reg = await call(sock, 'POST', '/v0/agents', { token: admin, body: '{"name":"fuzzer"}' });
    const agentToken = (JSON.parse(reg.body) as { token: string }).token;
    const f = await fuzz(sock, [admin, agentToken, 'gck_bad_token', ''], FUZZ);
    for (const s of f.samples) note(`fuzz: ${s}`);

    const alive =
      exited === undefined &&
      (await call(sock, 'GET', '/v0/ping', { token: admin }).catch(() => undefined))?.status ===
        200;
    result({
      bench: 'abuse',
      quick,
      server_alive: alive,
      crashes: exited === undefined ? 0 : 1,
      open_beads: OPEN_BEADS,
      claim_next_p99_ms: round(percentile(claims, 99)),
      ping_p99_ms_idle: round(percentile(idle, 99)),
      max_connections: CAP,
      flood_connections: FLOOD,
      ping_p99_ms_during_flood: round(percentile(during, 99)),
      ping_flood_ratio: round(percentile(during, 99) / Math.max(0.01, percentile(idle, 99))),
      stalled_sse_readers: READERS,
      log_mb: LOG_MB,
      rss_growth_mb: round(rssMax - rss0),
      fuzz_requests: FUZZ,
      fuzz_5xx: f.fivexx,
      fuzz_connection_errors: f.errors,
    });
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    if (exited === undefined) server.kill('SIGKILL');
  }
}

main().catch(fatal);
