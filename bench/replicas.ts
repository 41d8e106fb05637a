/**
 * Several servers of one city on a database: API throughput with one
 * server and with three (same run, same city), and how long the city is
 * without a leader when the leader is killed.
 *
 * - authed_rps_1 / authed_rps_3: authenticated GET /v0/ping (the API's own
 *   cost: parsing, key check, routing) from a load generator in its own
 *   process, spread evenly over the servers' TCP ports; scale_ratio =
 *   authed_rps_3 / authed_rps_1. ready_rps_*: the same with
 *   GET /v0/beads/ready (a database read per request).
 * - failover_s_*: kill -9 of the leader, then the time until another
 *   server has taken the leader's work up (its row in gc_servers says
 *   leader at a newer term), with the default lease ([database]
 *   leader_lease = 10s). A new server replaces the killed one each time.
 * - double_actions: sessions started more than once over the whole run
 *   (its sessions never die, so every start after a session's first is a
 *   double), plus sessions missing at the end.
 *
 *   npx tsx bench/replicas.ts [--quick] [--backend postgres|mysql]
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { readAdminKey } from '../src/city/index.js';
import { openSqlDb, type SqlDb } from '../src/db/index.js';
import { CONFIG_HOME, runCli } from '../test/helpers/cli.js';
import { fatal, note, percentile, quick, result, round, scratchDir } from './lib.js';

const SESSIONS = 10;
const LOAD_MS = quick ? 3000 : 10_000;
const CONCURRENCY = 48;
const TRIALS = quick ? 2 : 5;

interface LoadJob {
  ports: number[];
  token: string;
  path: string;
  durationMs: number;
  concurrency: number;
}

interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p99_ms: number;
}

// ---------------------------------------------------------------- load generator

async function load(job: LoadJob): Promise<LoadResult> {
  const agents = job.ports.map(
    () => new Agent({ keepAlive: true, maxSockets: Math.ceil(job.concurrency / job.ports.length) }),
  );
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const k = i % job.ports.length;
      const t0 = performance.now();
      const req = request(
        {
          host: '127.0.0.1',
          port: job.ports[k],
          path: job.path,
          agent: agents[k],
          headers: { authorization: `Bearer ${job.token}` },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) {
              requests++;
              latencies.push(performance.now() - t0);
            } else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const start = performance.now();
  const end = start + job.durationMs;
  let n = 0;
  await Promise.all(
    Array.from({ length: job.concurrency }, async (_, w) => {
      while (performance.now() < end) await one(w + n++);
    }),
  );
  const secs = (performance.now() - start) / 1000;
  for (const a of agents) a.destroy();
  return { requests, errors, rps: requests / secs, p99_ms: percentile(latencies, 99) };
}

function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(process.argv[1]!, ['--load'], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code) reject(new Error(`load generator exited ${code}`));
    });
    child.send(job);
  });
}

// ---------------------------------------------------------------- the city

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Server {
  id: string;
  pid: number;
  port: number;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function startServer(root: string): Promise<Server> {
  const port = await freePort();
  const r = await runCli('gc', ['start', '--port', String(port), '--json'], { cwd: root });
  if (r.code !== 0) throw new Error(`gc start: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { pid: number; server: { id: string } };
  return { id: out.server.id, pid: out.pid, port };
}

async function leaderRow(db: SqlDb): Promise<{ id: string; term: number } | undefined> {
  const [lease] = await db.query<{ holder: string; term: number }>(
    "SELECT holder, term FROM gc_leases WHERE name = 'leader'",
  );
  if (!lease?.holder) return undefined;
  const [row] = await db.query<{ role: string; term: number }>(
    'SELECT role, term FROM gc_servers WHERE id = ?',
    [lease.holder],
  );
  // Led: the holder has taken the work up (its row says so at the lease's term).
  if (row?.role !== 'leader' || Number(row.term) !== Number(lease.term)) return undefined;
  return { id: lease.holder, term: Number(lease.term) };
}

async function sessionStarts(db: SqlDb): Promise<Map<string, number>> {
  const rows = await db.query<{ subject: string; n: number }>(
    "SELECT subject, COUNT(*) AS n FROM events WHERE type = 'session.started' GROUP BY subject",
  );
  return new Map(rows.map((r) => [r.subject, Number(r.n)]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const arg = process.argv[process.argv.indexOf('--backend') + 1];
  const backend = process.argv.includes('--backend') ? arg : 'postgres';
  if (backend !== 'postgres' && backend !== 'mysql') {
    throw new Error(`--backend: expected postgres or mysql, got ${String(arg)}`);
  }
  const { Scratch, database } = await import('../test/helpers/db.js');
  const server = await database(backend, { required: true });
  const scratch = new Scratch(server.url!);
  const root = scratchDir('replicas');
  const servers: Server[] = [];
  let db: SqlDb | undefined;
  try {
    const url = await scratch.createDatabase();
    writeFileSync(
      path.join(root, 'city.toml'),
      `[workspace]\nname = "bench"\n\n[database]\nurl = "${url}"\n\n[session]\nprovider = "subprocess"\n\n[api]\nbind = "127.0.0.1"\nrate_per_s = 0\n\n[[agent]]\nname = "worker"\ncommand = "sleep 3600"\nmin_active_sessions = ${SESSIONS}\nmax_active_sessions = ${SESSIONS}\n`,
    );
    db = await openSqlDb(url, { poolSize: 2 });
    servers.push(await startServer(root));
    const token = readAdminKey(root, { ...process.env, GC_CONFIG_HOME: CONFIG_HOME })!;
    // Some beads, so the ready query reads rows.
    await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) =>
          new Promise<void>((resolve, reject) => {
            const body = JSON.stringify({ title: `job ${i}` });
            const req = request(
              {
                host: '127.0.0.1',
                port: servers[0]!.port,
                method: 'POST',
                path: '/v0/beads',
                headers: {
                  authorization: `Bearer ${token}`,
                  'content-type': 'application/json',
                  'content-length': Buffer.byteLength(body),
                },
              },
              (res) => {
                res.resume();
                res.on('end', () =>
                  res.statusCode === 200
                    ? resolve()
                    : reject(new Error(`create: ${res.statusCode}`)),
                );
              },
            );
            req.on('error', reject);
            req.end(body);
          }),
      ),
    );
    const measure = async (n: number) => {
      const ports = servers.slice(0, n).map((s) => s.port);
      const ping = await runLoad({
        ports,
        token,
        path: '/v0/ping',
        durationMs: LOAD_MS,
        concurrency: CONCURRENCY,
      });
      const ready = await runLoad({
        ports,
        token,
        path: '/v0/beads/ready?limit=5',
        durationMs: LOAD_MS,
        concurrency: CONCURRENCY,
      });
      note(
        `${n} server(s): ping ${round(ping.rps, 0)}/s (p99 ${round(ping.p99_ms)} ms, ${ping.errors} errors); ready ${round(ready.rps, 0)}/s (p99 ${round(ready.p99_ms)} ms)`,
      );
      return { ping, ready };
    };
    const one = await measure(1);
    servers.push(await startServer(root), await startServer(root));
    const three = await measure(3);

    // Failover: kill the leader, time until another has taken the work up.
    const failovers: number[] = [];
    for (let t = 0; t < TRIALS; t++) {
      let before: { id: string; term: number } | undefined;
      while (!(before = await leaderRow(db))) await sleep(50);
      const victim = servers.find((s) => s.id === before.id);
      if (!victim) throw new Error(`leader ${before.id} is not one of the bench's servers`);
      // Its sessions all run before it dies (a start wave is the tests' case).
      const t0 = performance.now();
      process.kill(victim.pid, 'SIGKILL');
      for (;;) {
        const now = await leaderRow(db);
        if (now && now.term > before.term) break;
        await sleep(25);
      }
      const s = (performance.now() - t0) / 1000;
      failovers.push(s);
      note(`failover ${t + 1}: ${round(s)} s`);
      servers.splice(servers.indexOf(victim), 1);
      servers.push(await startServer(root));
    }

    // Every session runs, each started once.
    let running = 0;
    for (let i = 0; i < 100; i++) {
      const rows = await db.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM events WHERE type = 'session.started'",
      );
      const starts = await sessionStarts(db);
      running = starts.size;
      if (running >= SESSIONS && Number(rows[0]?.n ?? 0) >= SESSIONS) break;
      await sleep(100);
    }
    const starts = await sessionStarts(db);
    const doubled = [...starts.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
    const double_actions = doubled + Math.max(0, SESSIONS - starts.size);
    result({
      bench: 'replicas',
      backend,
      replicas: 3,
      authed_rps_1: round(one.ping.rps, 0),
      authed_rps_3: round(three.ping.rps, 0),
      scale_ratio: round(three.ping.rps / one.ping.rps),
      ready_rps_1: round(one.ready.rps, 0),
      ready_rps_3: round(three.ready.rps, 0),
      ready_scale_ratio: round(three.ready.rps / one.ready.rps),
      failover_s_p50: round(percentile(failovers, 50)),
      failover_s_max: round(Math.max(...failovers)),
      failover_trials: failovers.length,
      leader_lease_s: 10,
      double_actions,
      cores: (await import('node:os')).cpus().length,
      quick,
    });
  } finally {
    await runCli('gc', ['stop'], { cwd: root }).catch(() => undefined);
    for (const s of servers) if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
    await db?.close();
    await scratch.dropAll();
  }
}

if (process.argv.includes('--load')) {
  process.once('message', (job: LoadJob) => {
    load(job)
      .then((r) => process.send!(r, () => process.disconnect()))
      .catch(fatal);
  });
} else {
  main().catch(fatal);
}
