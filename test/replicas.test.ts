/**
 * Several servers of one city on a database (PostgreSQL, MariaDB): real
 * `gc start` processes on one host sharing the city's directory and
 * database, subprocess sessions. Exactly one leads (the lease table and
 * the events agree); kill -9 of the leader mid start wave hands the city
 * over within the lease bound with no session started twice; a leader
 * paused past its lease (SIGSTOP, then SIGCONT) steps down and acts on
 * nothing; a burst of claims through all servers survives the leader's
 * kill with nothing claimed twice, the log gap-free and replaying to the
 * store; an agent's CLI given two servers keeps working when one dies;
 * a suspended city stays suspended through a failover.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readAdminKey, replayBeads } from '../src/city/index.js';
import { openSqlDb, type SqlDb } from '../src/db/index.js';
import type { GcEvent } from '../src/events/index.js';
import type { Bead } from '../src/store/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { branchWith, git, makeRepo } from './helpers/git.js';
import { Scratch, database } from './helpers/db.js';
import { apiCall } from './helpers/http.js';
import { until, waitFor } from './helpers/wait.js';

const LEASE_MS = 2000;
/** The takeover bound: the lease, one renewal, one election try, and slack for a loaded machine. */
const TAKEOVER_BOUND_MS = LEASE_MS + LEASE_MS / 3 + 4000;
const SESSIONS = 12;

const dir = mkdtempSync(path.join(tmpdir(), 'gc-replicas-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

interface Started {
  pid: number;
  port: number;
  id: string;
  role: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

class City {
  readonly servers: Started[] = [];
  db!: SqlDb;
  root!: string;

  constructor(
    readonly kind: string,
    readonly url: string,
    readonly name: string,
  ) {}

  async init(
    agents = `[[agent]]\nname = "worker"\ncommand = "sleep 600"\nmin_active_sessions = ${SESSIONS}\nmax_active_sessions = ${SESSIONS}\n`,
    leaseMs = LEASE_MS,
  ) {
    this.root = mkdtempSync(path.join(dir, `${this.name}-`));
    writeFileSync(
      path.join(this.root, 'city.toml'),
      `[workspace]\nname = "${this.name}"\n\n[database]\nurl = "${this.url}"\nleader_lease = "${leaseMs}ms"\n\n[session]\nprovider = "subprocess"\n\n[api]\nbind = "127.0.0.1"\n\n${agents}`,
    );
    this.db = await openSqlDb(this.url, { poolSize: 2 });
  }

  async start(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Started> {
    const port = await freePort();
    const r = await gcBuilt(['start', '--port', String(port), '--json', ...extra], {
      cwd: this.root,
      env,
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { pid: number; server: { id: string; role: string } };
    const s = { pid: out.pid, port, id: out.server.id, role: out.server.role };
    this.servers.push(s);
    return s;
  }

  get admin(): string {
    return readAdminKey(this.root, { ...process.env, GC_CONFIG_HOME: CONFIG_HOME })!;
  }

  async lease(): Promise<{ holder: string; term: number; expires_at: number }> {
    const [row] = await this.db.query<{ holder: string; term: number; expires_at: number }>(
      "SELECT holder, term, expires_at FROM gc_leases WHERE name = 'leader'",
    );
    return { holder: row?.holder ?? '', term: Number(row?.term ?? 0), expires_at: 0 };
  }

  /** The server that holds the lease now. */
  async leader(): Promise<Started> {
    const { holder } = await until(
      'a leader',
      () => this.lease(),
      (l) => l.holder !== '',
    );
    const s = this.servers.find((x) => x.id === holder);
    if (!s) throw new Error(`lease held by unknown server ${holder}`);
    return s;
  }

  /** Call the API of one server over TCP with the admin key. */
  call(s: Started, method: string, url: string, body?: unknown) {
    return apiCall({ host: '127.0.0.1', port: s.port }, method, url, {
      token: this.admin,
      ...(body !== undefined ? { body } : {}),
    });
  }

  async events(s: Started): Promise<GcEvent[]> {
    const out: GcEvent[] = [];
    let after = 0;
    for (;;) {
      const r = await this.call(s, 'GET', `/v0/events?after_seq=${after}&limit=1000`);
      const page = r.body as unknown as { items: GcEvent[]; next_after_seq: number | null };
      out.push(...page.items);
      if (page.next_after_seq === null || page.items.length === 0) return out;
      after = page.next_after_seq;
    }
  }

  async stop(): Promise<void> {
    const live = this.servers.filter((s) => alive(s.pid));
    for (const s of live) {
      try {
        process.kill(s.pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    if (live.length) await gcBuilt(['stop'], { cwd: this.root }).catch(() => undefined);
    for (const s of this.servers) {
      if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
    }
    // Sessions a failed test left behind.
    try {
      execFileSync('pkill', ['-f', `${this.root}/`]);
    } catch {
      // none
    }
    await this.db.close();
  }
}

/** Every session's start and adoption events: a session is started once, or adopted. */
function startsPerSession(events: GcEvent[]): Map<string, number> {
  const starts = new Map<string, number>();
  for (const e of events) {
    const who = e.subject ?? '';
    if (e.type === 'session.started') starts.set(who, (starts.get(who) ?? 0) + 1);
  }
  return starts;
}

async function runningSessions(city: City, s: Started): Promise<string[]> {
  const r = await city.call(s, 'GET', '/v0/sessions?limit=1000');
  const page = r.body as unknown as { items: { name: string; state: string }[] };
  return page.items.filter((x) => x.state === 'running').map((x) => x.name);
}

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  describe.skipIf(!server.url)(`several servers of one city on ${kind}${server.note}`, () => {
    const scratch = new Scratch(server.url ?? '');
    const cities: City[] = [];
    afterEach(async () => {
      for (const c of cities.splice(0)) await c.stop();
    });
    afterAll(() => scratch.dropAll());

    const newCity = async (name: string, agents?: string, leaseMs?: number) => {
      const c = new City(kind, await scratch.createDatabase(), name);
      cities.push(c);
      await c.init(agents, leaseMs);
      return c;
    };

    it('a lone server killed -9 and started again leads at once, not after its lease', async () => {
      const city = await newCity('restart', '', 60_000);
      const a = await city.start();
      expect(a.role).toBe('leader');
      process.kill(a.pid, 'SIGKILL');
      await waitFor(() => !alive(a.pid), 'the server to die');
      // Its lease has most of a minute left; its process is gone from this host.
      const b = await city.start();
      expect(b.role).toBe('leader');
      expect((await city.lease()).holder).toBe(b.id);
    });

    it('the dashboard through any server: links and pages come from the leader, the cookie works everywhere', async () => {
      const city = await newCity('dash', '');
      await city.start();
      await city.start();
      const lead = await city.leader();
      const other = city.servers.find((x) => x.id !== lead.id)!;
      const r = await city.call(other, 'POST', '/v0/dashboard/links', { role: 'viewer' });
      expect(r.status, r.text).toBe(200);
      const link = new URL(r.body.url as string);
      expect(link.port).toBe(String(lead.port));
      const login = await apiCall(
        { host: '127.0.0.1', port: lead.port },
        'GET',
        link.pathname + link.search,
      );
      expect(login.status).toBe(200);
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      for (const s of [lead, other]) {
        const at = { host: '127.0.0.1', port: s.port };
        const page = await apiCall(at, 'GET', '/ui/beads', { headers: { cookie } });
        expect(page.status, `${s.role}: ${page.text.slice(0, 300)}`).toBe(200);
        expect(page.text).toContain('<h1>Beads</h1>');
        const api = await apiCall(at, 'GET', '/v0/events/latest', { headers: { cookie } });
        expect(api.status, api.text).toBe(200);
        const refused = await apiCall(at, 'POST', '/v0/beads', {
          headers: { cookie },
          body: { title: 'a viewer may not' },
        });
        expect(refused.status).toBe(403);
      }
    });

    it('a suspended city stays suspended when its leader dies: the next leader starts nothing', async () => {
      const few = `[[agent]]\nname = "worker"\ncommand = "sleep 600"\nmin_active_sessions = 3\nmax_active_sessions = 3\n`;
      const city = await newCity('suspend', few);
      const a = await city.start();
      const b = await city.start();
      expect([a.role, b.role]).toEqual(['leader', 'replica']);
      await waitFor(
        async () => (await runningSessions(city, a)).length === 3,
        '3 sessions running',
        30_000,
      );
      // Suspending through the replica: the leader route is forwarded.
      const s = await city.call(b, 'POST', '/v0/control/suspend');
      expect(s.status, JSON.stringify(s.body)).toBe(200);
      await waitFor(
        async () => (await runningSessions(city, a)).length === 0,
        'the suspended city to stop its sessions',
        30_000,
      );
      // The flag lives in the database, not in one server's memory or host.
      const flags = await city.db.query<{ name: string }>('SELECT name FROM gc_flags');
      expect(flags.map((f) => f.name)).toEqual(['suspended']);
      const before = await city.events(b);
      process.kill(a.pid, 'SIGKILL');
      await waitFor(
        async () => (await city.lease()).holder === b.id,
        'the replica to lead',
        TAKEOVER_BOUND_MS + 5000,
      );
      await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
      const st = await city.call(b, 'GET', '/v0/status');
      expect(st.body).toMatchObject({ suspended: true, cluster: { id: b.id, role: 'leader' } });
      const since = (await city.events(b)).filter((e) => e.seq > (before.at(-1)?.seq ?? 0));
      expect(since.filter((e) => e.type === 'session.started')).toEqual([]);
      expect(await runningSessions(city, b)).toEqual([]);
      // Resumed through the new leader, the city starts its sessions again.
      const r = await city.call(b, 'POST', '/v0/control/resume');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      await waitFor(
        async () => (await runningSessions(city, b)).length === 3,
        'the resumed city to start its sessions',
        30_000,
      );
      expect(await city.db.query('SELECT name FROM gc_flags')).toEqual([]);
    });

    it('one leader of three (one --api-only); kill -9 of the leader mid start wave: the other candidate leads within the bound, no session started twice', async () => {
      const city = await newCity('wave');
      const a = await city.start();
      expect(a.role).toBe('leader');
      const b = await city.start();
      const c = await city.start(['--api-only']);
      expect([b.role, c.role]).toEqual(['replica', 'api-only']);
      // The lease table and the servers table agree: one leader.
      const { term } = await city.lease();
      const rows = await city.db.query<{ id: string; role: string }>(
        'SELECT id, role FROM gc_servers ORDER BY id',
      );
      expect(rows.filter((r) => r.role === 'leader').map((r) => r.id)).toEqual([a.id]);
      // Mid wave: some sessions started, not all.
      await waitFor(
        async () => startsPerSession(await city.events(b)).size > 0,
        'the first session start',
        20_000,
      );
      process.kill(a.pid, 'SIGKILL');
      const killedAt = Date.now();
      const next = await until(
        'a new leader',
        () => city.lease(),
        (l) => l.holder !== '' && l.holder !== a.id,
        TAKEOVER_BOUND_MS + 5000,
      );
      expect(Date.now() - killedAt).toBeLessThanOrEqual(TAKEOVER_BOUND_MS);
      expect(next.term).toBe(term + 1);
      // The api-only server never leads.
      expect(next.holder).toBe(b.id);
      const leader = city.servers.find((s) => s.id === next.holder)!;
      // Every session runs, each started once (or adopted), by whichever leader.
      await waitFor(
        async () => (await runningSessions(city, leader)).length === SESSIONS,
        `${SESSIONS} sessions running`,
        30_000,
      );
      const events = await city.events(leader);
      for (const [session, n] of startsPerSession(events)) {
        expect(n, `${session} started ${n} times`).toBe(1);
      }
      // The log says the same: one leader per term, terms rising.
      const leads = events
        .filter((e) => e.type === 'controller.started')
        .map((e) => e.payload as { server: string; term: number });
      expect(leads.map((l) => l.term)).toEqual([term, next.term]);
      expect(leads.map((l) => l.server)).toEqual([a.id, next.holder]);
      // A replica (not the leader) answers leader routes by forwarding them.
      const replica = c;
      const st = await until(
        'the replica to forward status to the new leader',
        () => city.call(replica, 'GET', '/v0/status'),
        (r) => r.status !== 503,
      );
      expect(st.status).toBe(200);
      expect(st.body).toMatchObject({ cluster: { id: next.holder, role: 'leader' } });
    });

    it('a leader paused past its lease (SIGSTOP, SIGCONT) steps down and starts or stops nothing', async () => {
      const city = await newCity('pause');
      const a = await city.start();
      const b = await city.start();
      await waitFor(
        async () => (await runningSessions(city, a)).length === SESSIONS,
        `${SESSIONS} sessions running`,
        30_000,
      );
      process.kill(a.pid, 'SIGSTOP');
      await waitFor(
        async () => (await city.lease()).holder === b.id,
        'the replica to lead',
        TAKEOVER_BOUND_MS + 5000,
      );
      // While the old leader sleeps, its sessions change hands: the new
      // leader restarts one that died. The old one, resumed, would see a
      // session it does not know of and one missing.
      const [victim = ''] = await until(
        'the new leader to take the sessions up',
        () => runningSessions(city, b),
        (v) => v.length === SESSIONS,
      );
      const killed = await city.call(b, 'POST', `/v0/sessions/${victim}/kill`);
      expect(killed.status, JSON.stringify(killed.body)).toBe(200);
      await waitFor(
        async () => {
          const ev = await city.events(b);
          return (startsPerSession(ev).get(victim) ?? 0) >= 2;
        },
        `${victim} restarted by the new leader`,
        20_000,
      );
      const before = await city.events(b);
      process.kill(a.pid, 'SIGCONT');
      // Give the resumed server its timers: ticks, renewals, engine polls.
      await waitFor(
        async () => {
          const rows = await city.db.query<{ role: string }>(
            'SELECT role FROM gc_servers WHERE id = ?',
            [a.id],
          );
          return rows[0]?.role === 'replica';
        },
        'the old leader to say it is a replica',
        10_000,
      );
      await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
      const after = await city.events(b);
      const since = after.filter((e) => e.seq > (before.at(-1)?.seq ?? 0));
      const acts = since.filter((e) =>
        ['session.started', 'session.stopped', 'session.adopted', 'controller.started'].includes(
          e.type,
        ),
      );
      expect(acts, JSON.stringify(acts)).toEqual([]);
      expect((await city.lease()).holder).toBe(b.id);
      expect((await runningSessions(city, b)).length).toBe(SESSIONS);
      const log = readFileSync(path.join(city.root, '.gc', 'server.log'), 'utf8');
      expect(log).toContain(`leader: ${a.id} stops leading`);
    });

    it('a burst of claims through every server survives the leader kill -9: none twice, nothing lost, the log gap-free and replaying to the store', async () => {
      const city = await newCity('claims', '');
      const servers = [await city.start(), await city.start(), await city.start()];
      const leader = await city.leader();
      const BEADS = 500;
      const WORKERS = 50;
      await Promise.all(
        Array.from({ length: 10 }, async (_, w) => {
          for (let i = w; i < BEADS; i += 10) {
            const r = await city.call(servers[i % 3]!, 'POST', '/v0/beads', { title: `job ${i}` });
            expect(r.status, JSON.stringify(r.body)).toBe(200);
          }
        }),
      );
      const claimed = new Map<string, string>();
      let failures = 0;
      const worker = async (w: number) => {
        for (let n = 0; n < BEADS / WORKERS + 2; n++) {
          const s = servers[(w + n) % servers.length]!;
          if (!alive(s.pid)) continue;
          const r = await apiCall(
            { host: '127.0.0.1', port: s.port },
            'POST',
            '/v0/beads/claim-next',
            {
              token: city.admin,
              actor: `w${w}`,
              body: {},
            },
          ).catch(() => undefined);
          if (!r || r.status !== 200) {
            failures++;
            continue;
          }
          const bead = (r.body as unknown as { bead: Bead | null }).bead;
          if (!bead?.id) continue;
          expect(claimed.has(bead.id), `${bead.id} claimed twice`).toBe(false);
          claimed.set(bead.id, `w${w}`);
        }
      };
      const burst = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      await new Promise((r) => setTimeout(r, 150));
      process.kill(leader.pid, 'SIGKILL');
      await burst;
      const live = servers.find((s) => s.id !== leader.id)!;
      await waitFor(
        async () => {
          const l = await city.lease();
          return !!l.holder && l.holder !== leader.id;
        },
        'a new leader',
        TAKEOVER_BOUND_MS + 5000,
      );
      // What was acknowledged is in the store, held by whoever it was acknowledged to.
      const beads: Bead[] = [];
      let cursor = '';
      for (;;) {
        const r = await city.call(
          live,
          'GET',
          `/v0/beads?scan=true&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        const page = r.body as unknown as { items: Bead[]; next_cursor: string | null };
        beads.push(...page.items);
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      expect(beads.length).toBe(BEADS);
      for (const [id, who] of claimed) {
        const b = beads.find((x) => x.id === id)!;
        expect({ status: b.status, assignee: b.assignee, attempt: b.attempt }).toEqual({
          status: 'in_progress',
          assignee: who,
          attempt: 1,
        });
      }
      expect(claimed.size).toBeGreaterThan(0);
      const events = await city.events(live);
      events.forEach((e, i) => expect(e.seq, 'gap-free log').toBe(i + 1));
      const replayed = replayBeads(events);
      expect(replayed.size).toBe(beads.length);
      for (const b of beads) {
        const r = replayed.get(b.id)!;
        expect({ status: r.status, assignee: r.assignee, attempt: r.attempt }).toEqual({
          status: b.status,
          assignee: b.assignee,
          attempt: b.attempt,
        });
      }
      // Calls to the killed server failed (the client saw it); none was half-applied.
      expect(failures).toBeLessThan(WORKERS * (BEADS / WORKERS + 2));
    });

    for (const [point, gate] of [
      ['while a gate runs', 'sleep 2'],
      ['between the merge and its record', 'true'],
    ] as const) {
      it(`kill -9 of the leader ${point}: the next leader merges once`, async () => {
        const city = await newCity(
          'merge',
          `[daemon]\npatrol_interval = "1h"\n\n[[rigs]]\nname = "app"\npath = "app"\n[rigs.gates.test]\ncommand = "${gate}"\n`,
        );
        const repo = path.join(city.root, 'app');
        const base = makeRepo(repo);
        const head = branchWith(repo, 'feature', { 'f.txt': 'feature\n' });
        const kill = gate === 'true';
        const a = await city.start(
          [],
          kill ? { GC_FAULTS_ENABLED: '1', GC_KILL_AT: 'mq.landed' } : {},
        );
        const b = await city.start();
        expect((await city.leader()).id).toBe(a.id);
        const bead = await city.call(b, 'POST', '/v0/beads', { title: 'the feature' });
        const sub = await city.call(b, 'POST', '/v0/mq', {
          branch: 'feature',
          head,
          bead: bead.body.id,
        });
        expect(sub.status, JSON.stringify(sub.body)).toBe(200);
        const id = String(sub.body.id);
        if (kill) {
          await waitFor(() => !alive(a.pid), 'the leader to die at mq.landed', 30_000);
          expect(git(repo, 'rev-parse', 'main')).not.toBe(base);
        } else {
          await until(
            'the gate to run',
            async () => (await city.call(b, 'GET', `/v0/mq/${id}`)).body.state,
            (st) => st === 'testing',
            30_000,
            20,
          );
          process.kill(a.pid, 'SIGKILL');
        }
        await until(
          'the merge to be finished by the next leader',
          async () => (await city.call(b, 'GET', `/v0/mq/${id}`)).body.state,
          (st) => st === 'merged',
          TAKEOVER_BOUND_MS + 30_000,
        );
        expect((await city.leader()).id).toBe(b.id);
        expect(
          git(repo, 'log', '--format=%s', 'main')
            .split('\n')
            .filter((m) => m.startsWith('feature:')),
        ).toHaveLength(1);
        // Its event follows the record (and the bead's close).
        const events = await until(
          'the merge event',
          () => city.events(b),
          (ev) => ev.some((e) => e.type === 'mq.merged' && e.subject === id),
        );
        expect(events.filter((e) => e.type === 'mq.merged' && e.subject === id)).toHaveLength(1);
        const closed = await until(
          'the bead to close',
          () => city.call(b, 'GET', `/v0/beads/${String(bead.body.id)}`),
          (r) => r.body.status === 'closed',
        );
        expect(closed.body.status).toBe('closed');
      }, 120_000);
    }

    it('a server on another host is refused while the sessions are host-bound (subprocess)', async () => {
      const city = await newCity('hosts', '');
      await city.start();
      const port = await freePort();
      const r = await gcBuilt(['start', '--port', String(port)], {
        cwd: city.root,
        env: { GC_SERVER_HOST: 'elsewhere.example' },
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/sessions run on \S+ .*this server is on elsewhere\.example/);
      expect(r.stderr).toMatch(/provider = "exec"/);
      const rows = await city.db.query<{ host: string }>('SELECT host FROM gc_servers');
      expect(rows.map((x) => x.host)).not.toContain('elsewhere.example');
    });

    it('orders run on the leader only; a run asked of a replica goes to the leader; the next leader takes them up', async () => {
      const city = await newCity('orders', '');
      writeFileSync(
        path.join(city.root, 'city.toml'),
        `${readFileSync(path.join(city.root, 'city.toml'), 'utf8')}\n[orders]\ntick = "200ms"\n`,
      );
      mkdirSync(path.join(city.root, 'orders'));
      // $PPID of the order's shell is the server that ran it.
      writeFileSync(
        path.join(city.root, 'orders', 'beat.toml'),
        '[order]\nexec = "echo $PPID >> beat.out"\ngate = "cooldown"\ninterval = "1s"\n',
      );
      const beats = () => {
        try {
          return readFileSync(path.join(city.root, 'beat.out'), 'utf8').trim().split('\n');
        } catch {
          return [];
        }
      };
      const a = await city.start();
      const b = await city.start();
      expect([a.role, b.role]).toEqual(['leader', 'replica']);
      await waitFor(() => beats().length >= 3, 'three beats', 30_000);
      const viaReplica = await city.call(b, 'POST', '/v0/orders/beat/run', {});
      expect([200, 409]).toContain(viaReplica.status);
      expect(new Set(beats())).toEqual(new Set([String(a.pid)]));
      const killedAt = Date.now();
      process.kill(a.pid, 'SIGKILL');
      await waitFor(() => !alive(a.pid), 'the leader to die');
      const seen = beats().length;
      await waitFor(
        () =>
          beats()
            .slice(seen)
            .filter((p) => p === String(b.pid)).length >= 2,
        'the new leader to run the order',
        TAKEOVER_BOUND_MS + 10_000,
      );
      expect(new Set(beats().slice(seen))).toEqual(new Set([String(b.pid)]));
      // Never two runs at once: each fired run ended before the next fired,
      // under each leader. A run the killed leader had fired never ends, so
      // the count starts again at the kill.
      const ev = (await city.events(b)).filter(
        (e) =>
          e.type === 'order.fired' || e.type === 'order.completed' || e.type === 'order.failed',
      );
      for (const part of [
        ev.filter((e) => Date.parse(e.ts) < killedAt),
        ev.filter((e) => Date.parse(e.ts) >= killedAt),
      ]) {
        const open = new Set<string>();
        for (const e of part) {
          if (e.type === 'order.fired') open.add(e.subject ?? '');
          else open.delete(e.subject ?? '');
          expect(
            open.size,
            JSON.stringify(part.map((x) => [x.type, x.subject])),
          ).toBeLessThanOrEqual(1);
        }
      }
    });

    it("an agent's CLI given two servers keeps working while one of them is killed", async () => {
      const city = await newCity('cli', '');
      const a = await city.start();
      const b = await city.start();
      const reg = await gcBuilt(['auth', 'agent', 'register', 'bot', '--json'], {
        cwd: city.root,
      });
      expect(reg.code, reg.stderr).toBe(0);
      const token = (JSON.parse(reg.stdout) as { token: string }).token;
      const env = {
        GC_API: `http://127.0.0.1:${a.port},http://127.0.0.1:${b.port}`,
        GC_TOKEN: token,
        GC_API_RETRY_MS: '20000',
      };
      const made: string[] = [];
      for (let i = 0; i < 6; i++) {
        if (i === 3) process.kill(a.pid, 'SIGKILL');
        const r = await gcBuilt(['bead', 'create', `task ${i}`, '--json'], {
          cwd: dir,
          env,
        });
        expect(r.code, r.stderr).toBe(0);
        made.push((JSON.parse(r.stdout) as { id: string }).id);
      }
      expect(new Set(made).size).toBe(6);
      const list = await gcBuilt(['bead', 'list', '--json'], { cwd: dir, env });
      expect(list.code, list.stderr).toBe(0);
      const items = JSON.parse(list.stdout) as { id: string }[] | { items: { id: string }[] };
      const ids = (Array.isArray(items) ? items : items.items).map((x) => x.id);
      expect(ids.filter((id) => made.includes(id)).length).toBe(6);
    });
  });
}
