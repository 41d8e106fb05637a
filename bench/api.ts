/**
 * API cost of authentication and mail throughput, over real HTTP on
 * loopback against a real city server (SQLite store, JSONL events).
 *
 * - auth_verify_us: one KeyRing.verify (O(1) lookup + HMAC-SHA256 + constant
 *   time compare), in process.
 * - open_rps / authed_rps: GET /v0/ping through the same routes, once on a
 *   listener whose router skips authentication (the baseline) and once on
 *   the city's own TCP listener with a key; rounds alternate so noise hits
 *   both alike. auth_ratio = authed / open (target >= 0.9).
 * - mail: 500 agents, each with its own token, send concurrently (one
 *   connection each) to random recipients; then every acknowledged message
 *   is looked up in its recipient's mailbox (mail_lost counts the missing).
 *   Baseline in the same run: the same 500 senders and message count sent
 *   in process to the city's mail, no HTTP (mail_direct_msgs_per_s);
 *   mail_api_ratio = through the API / in process.
 * - mail_paced_*: the same senders at a steady 2,000 messages a second
 *   offered (each sends once every 250 ms, spread over the interval): the
 *   latency at that rate rather than at the burst's own; its messages are
 *   in the loss check too.
 *
 * The load runs in a child process so client and server do not share an
 * event loop.
 *
 *   npx tsx bench/api.ts [--quick] [--backend sqlite|postgres|mysql]
 *
 * With --backend postgres or mysql the whole city runs on a fresh database
 * on that server ([database] url), and the default (SQLite + JSONL) city is
 * measured first in the same run: its figures are reported as sqlite_*.
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createApiRouter } from '../src/api/index.js';
import { CityServer } from '../src/server/index.js';
import { readAdminKey, type Principal } from '../src/city/index.js';
import { fatal, note, percentile, quick, result, round, scratchDir } from './lib.js';

const SENDERS = 500;
const MSGS_PER_SENDER = quick ? 4 : 12;
const ROUND_MS = quick ? 1500 : 4000;
const ROUNDS = quick ? 2 : 3;
const CONCURRENCY = 32;
/** The steady offered rate of the paced mail run (the issue's throughput target). */
const PACED_PER_S = 2000;

interface ClientJob {
  kind: 'rps' | 'mail';
  port: number;
  token?: string;
  durationMs?: number;
  concurrency?: number;
  senders?: { name: string; token: string }[];
  perSender?: number;
  /** Paced: each sender sends once every paceMs (offered rate = senders / paceMs), no warm-up. */
  paceMs?: number;
}

// ---------------------------------------------------------------- client side

function get(agent: Agent, port: number, token: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v0/ping',
        agent,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res: IncomingMessage) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * One keep-alive HTTP/1.1 connection speaking just enough of the protocol
 * for the load: the request bytes are built once per message and the
 * answer is read by its Content-Length. node:http's client costs several
 * times more CPU per request than the server's route, which would make the
 * load generator, not the server, the thing being measured.
 */
class RawConnection {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((r: { status: number; body: string }) => void) | undefined;
  private failed: ((e: Error) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.parse();
    });
    socket.on('error', (e) => this.failed?.(e));
    socket.on('close', () => this.failed?.(new Error('connection closed')));
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0 || !this.waiting) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!m) throw new Error(`answer without content-length: ${head}`);
    const total = end + 4 + Number(m[1]);
    if (this.buf.length < total) return;
    const status = Number(head.slice(9, 12));
    const body = this.buf.subarray(end + 4, total).toString('utf8');
    this.buf = this.buf.subarray(total);
    const done = this.waiting;
    this.waiting = undefined;
    this.failed = undefined;
    done({ status, body });
  }

  post(path: string, token: string, json: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
      this.socket.write(
        `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
      );
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

async function client(job: ClientJob): Promise<unknown> {
  if (job.kind === 'rps') {
    const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency! });
    const until = performance.now() + job.durationMs!;
    let ok = 0;
    let bad = 0;
    await Promise.all(
      Array.from({ length: job.concurrency! }, async () => {
        while (performance.now() < until) {
          if ((await get(agent, job.port, job.token)) === 200) ok++;
          else bad++;
        }
      }),
    );
    agent.destroy();
    return { ok, bad, rps: ok / (job.durationMs! / 1000) };
  }
  const senders = job.senders!;
  // Every sender connects first (an agent keeps its connection); the
  // timing covers the sends only.
  const conns = await Promise.all(senders.map(() => RawConnection.open(job.port)));
  const latencies: number[] = [];
  const acked: { id: string; to: string }[] = [];
  let failed = 0;
  const send = async (i: number, n: number): Promise<void> => {
    const s = senders[i]!;
    const to = senders[(i * 7 + n * 13 + 1) % senders.length]!.name;
    const body = JSON.stringify({ to, subject: `m${n}`, body: `from ${s.name} #${n}` });
    const r = await conns[i]!.post('/v0/mail', s.token, body).catch(() => ({
      status: 0,
      body: '',
    }));
    if (r.status === 200) acked.push({ id: (JSON.parse(r.body) as { id: string }).id, to });
    else failed++;
  };
  // Warm-up: one message from every sender at once, untimed (it pays for
  // compiling the route's code paths), but still checked for loss.
  if (!job.paceMs) await Promise.all(senders.map((_, i) => send(i, 0)));
  const warmed = acked.length;
  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  const pace = job.paceMs;
  await Promise.all(
    senders.map(async (_, i) => {
      for (let n = 1; n <= job.perSender!; n++) {
        if (pace) {
          // Spread over the interval: sender i at i/senders of it, then every pace ms.
          const wait = t0 + (i / senders.length) * pace + (n - 1) * pace - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        const t = performance.now();
        await send(i, pace ? 100 + n : n);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  process.stderr.write(
    `load client cpu: ${round(((cpu.user + cpu.system) / 1e6 / seconds) * 100)}% of one core\n`,
  );
  for (const c of conns) c.close();
  return {
    msgs: acked.length - warmed,
    failed,
    per_s: (acked.length - warmed) / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    acked,
  };
}

if (process.argv.includes('--client')) {
  process.once('message', (job: ClientJob) => {
    client(job)
      .then((r) => {
        // Disconnect only once the answer is written: it can be large.
        process.send!(r, () => process.disconnect());
      })
      .catch(fatal);
  });
} else {
  main().catch(fatal);
}

// ---------------------------------------------------------------- server side

function runClient<T>(job: ClientJob): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(process.argv[1]!, ['--client'], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve(m as T));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code) reject(new Error(`load client exited ${code}`));
    });
    child.send(job);
  });
}

type Figures = Record<string, number | string | boolean>;

async function main(): Promise<void> {
  const arg = process.argv[process.argv.indexOf('--backend') + 1];
  const backend = process.argv.includes('--backend') ? arg : 'sqlite';
  if (backend !== 'sqlite' && backend !== 'postgres' && backend !== 'mysql') {
    throw new Error(`--backend: expected sqlite, postgres or mysql, got ${String(arg)}`);
  }
  if (backend === 'sqlite') {
    result(await measure(undefined));
    return;
  }
  const { Scratch, database } = await import('../test/helpers/db.js');
  const server = await database(backend, { required: true });
  const scratch = new Scratch(server.url!);
  try {
    const local = await measure(undefined);
    note(`---- the same on ${backend}`);
    const remote = await measure(await scratch.createDatabase());
    const kept = [
      'mail_msgs_per_s',
      'mail_p50_ms',
      'mail_p99_ms',
      'mail_lost',
      'mail_paced_p99_ms',
      'authed_rps',
    ];
    result({
      ...remote,
      backend,
      ...Object.fromEntries(kept.map((k) => [`sqlite_${k}`, local[k]])),
    });
  } finally {
    await scratch.dropAll();
  }
}

async function measure(databaseUrl: string | undefined): Promise<Figures> {
  const root = scratchDir(databaseUrl ? 'api-db' : 'api');
  process.env.GC_CONFIG_HOME = path.join(root, 'config-home');
  // Port 0 in city.toml means "no TCP"; pick one free port for the city.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  writeFileSync(
    path.join(root, 'city.toml'),
    `[workspace]
name = "apibench"
[daemon]
patrol_interval = "1h"
[api]
port = ${port}
rate_per_s = 0
[mail]
max_unread = 100000
${databaseUrl ? `[database]\nurl = "${databaseUrl}"\n` : ''}`,
  );
  const server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  const admin = readAdminKey(root)!;

  // Baseline: the same routes, no authentication, same process.
  const anonymous: Principal = {
    key_id: 'bench-open',
    kind: 'admin',
    name: 'bench',
    owner: '',
    max_sessions: 0,
    webhook_url: '',
    created_at: new Date().toISOString(),
    revoked_at: null,
    seq: 0,
  };
  const open: Server = createServer(
    createApiRouter(server, { authenticate: () => anonymous }).handle,
  );
  await new Promise<void>((r) => open.listen(0, '127.0.0.1', r));
  const openPort = (open.address() as AddressInfo).port;

  // auth_verify_us
  const N = 200_000;
  let t = performance.now();
  for (let i = 0; i < N; i++) server.keys.verify(admin);
  const verifyUs = ((performance.now() - t) * 1000) / N;
  note(`verify: ${round(verifyUs, 3)} us`);

  // open vs authed rps, alternating rounds
  const openR: number[] = [];
  const authR: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const o = await runClient<{ rps: number; bad: number }>({
      kind: 'rps',
      port: openPort,
      durationMs: ROUND_MS,
      concurrency: CONCURRENCY,
    });
    const a = await runClient<{ rps: number; bad: number }>({
      kind: 'rps',
      port,
      token: admin,
      durationMs: ROUND_MS,
      concurrency: CONCURRENCY,
    });
    if (o.bad || a.bad) throw new Error(`non-200 answers: open ${o.bad}, authed ${a.bad}`);
    openR.push(o.rps);
    authR.push(a.rps);
    note(`round ${r + 1}: open ${round(o.rps)} rps, authed ${round(a.rps)} rps`);
  }
  const openRps = openR.reduce((x, y) => x + y, 0) / ROUNDS;
  const authedRps = authR.reduce((x, y) => x + y, 0) / ROUNDS;

  // mail: 500 agents with their own tokens
  const senders: { name: string; token: string }[] = [];
  for (let i = 0; i < SENDERS; i++) {
    const name = `ag-${i}`;
    senders.push({ name, token: (await server.keys.create({ kind: 'agent', name })).token });
  }
  t = performance.now();
  const cpu0 = process.cpuUsage();
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const mail = await runClient<{
    msgs: number;
    failed: number;
    per_s: number;
    p50: number;
    p99: number;
    acked: { id: string; to: string }[];
  }>({ kind: 'mail', port, senders, perSender: MSGS_PER_SENDER });
  const cpu = process.cpuUsage(cpu0);
  lag.disable();
  note(
    `server event loop delay during mail: p50 ${round(lag.percentile(50) / 1e6)} ms, p99 ${round(lag.percentile(99) / 1e6)} ms, max ${round(lag.max / 1e6)} ms`,
  );
  note(
    `server cpu during mail: ${round(((cpu.user + cpu.system) / 1000 / (performance.now() - t)) * 100)}% of one core`,
  );
  note(
    `mail: ${mail.msgs} msgs (${mail.failed} failed) at ${round(mail.per_s)}/s, p50 ${round(mail.p50)} ms, p99 ${round(mail.p99)} ms`,
  );

  // The same senders at a steady offered rate (PACED_PER_S), each sending
  // once every SENDERS / PACED_PER_S seconds: the latency at that rate,
  // not at whatever rate a burst reaches.
  const paced = await runClient<typeof mail>({
    kind: 'mail',
    port,
    senders,
    perSender: MSGS_PER_SENDER,
    paceMs: (SENDERS / PACED_PER_S) * 1000,
  });
  note(
    `mail paced at ${PACED_PER_S}/s offered: ${paced.msgs} msgs (${paced.failed} failed) at ${round(paced.per_s)}/s, p50 ${round(paced.p50)} ms, p99 ${round(paced.p99)} ms`,
  );

  // Every acknowledged message is in its recipient's mailbox.
  const byTo = new Map<string, Set<string>>();
  for (const a of [...mail.acked, ...paced.acked]) {
    const set = byTo.get(a.to) ?? new Set<string>();
    set.add(a.id);
    byTo.set(a.to, set);
  }
  let lost = 0;
  for (const [to, ids] of byTo) {
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await server.mail.all(to, { limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const m of page.items) seen.add(m.id);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    for (const id of ids) if (!seen.has(id)) lost++;
  }
  lost += mail.failed + paced.failed;

  // Baseline in the same run: the same senders and message count, sent in
  // process straight to the city's mail (the same store, events and inbox
  // bound; no HTTP, no auth, no JSON): what the API costs on top.
  const direct = await (async () => {
    const latencies: number[] = [];
    let sent = 0;
    const t0 = performance.now();
    await Promise.all(
      senders.map(async (s, i) => {
        for (let n = 1; n <= MSGS_PER_SENDER; n++) {
          const to = senders[(i * 11 + n * 17 + 3) % senders.length]!.name;
          const t = performance.now();
          await server.mail.send(s.name, to, {
            subject: `d${n}`,
            body: `direct from ${s.name} #${n}`,
          });
          latencies.push(performance.now() - t);
          sent++;
        }
      }),
    );
    return {
      msgs: sent,
      per_s: sent / ((performance.now() - t0) / 1000),
      p99: percentile(latencies, 99),
    };
  })();
  note(
    `mail in process (baseline): ${direct.msgs} msgs at ${round(direct.per_s)}/s, p99 ${round(direct.p99)} ms`,
  );

  await new Promise((r) => open.close(r));
  await server.stop('bench done');
  return {
    bench: 'api',
    backend: databaseUrl ? 'database' : 'sqlite',
    quick,
    auth_verify_us: round(verifyUs, 3),
    open_rps: round(openRps),
    authed_rps: round(authedRps),
    auth_ratio: round(authedRps / openRps, 3),
    mail_senders: SENDERS,
    mail_msgs: mail.msgs,
    mail_msgs_per_s: round(mail.per_s),
    mail_p50_ms: round(mail.p50),
    mail_p99_ms: round(mail.p99),
    mail_lost: lost,
    mail_paced_offered_per_s: PACED_PER_S,
    mail_paced_msgs_per_s: round(paced.per_s),
    mail_paced_p50_ms: round(paced.p50),
    mail_paced_p99_ms: round(paced.p99),
    mail_direct_msgs_per_s: round(direct.per_s),
    mail_direct_p99_ms: round(direct.p99),
    mail_api_ratio: round(mail.per_s / direct.per_s, 3),
  };
}
