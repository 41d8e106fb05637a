/**
 * kill -9 of the database server under a running city: a PostgreSQL and a
 * MariaDB server of the test's own (helpers/db-cluster.ts) are killed whole
 * in the middle of bursts of creates, claims, mail sends and events, then
 * started again on the same data. The city server must live through it:
 *
 * - while the database is away, requests that need it are answered 503
 *   (`unavailable`, without the password), and the server itself stays up;
 * - when the database is back, requests succeed again, with no restart;
 * - a request retried with its Idempotency-Key gets the answer it got
 *   before, or does its work once if it never got one; nothing is done
 *   twice, whether or not it was acknowledged;
 * - the event log has no gap and replays to the store, and watchers of
 *   the log resume where they stopped.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readAdminKey } from '../../src/city/index.js';
import { SqlEventLog, type GcEvent } from '../../src/events/index.js';
import { citySocketPath } from '../../src/server/index.js';
import type { Bead } from '../../src/store/index.js';
import { CONFIG_HOME, killSpawned, spawnBuilt } from '../helpers/cli.js';
import { databaseRequired } from '../helpers/db.js';
import { apiCall, type Reply } from '../helpers/http.js';
import { DbCluster, PASSWORD, type ClusterKind } from '../helpers/db-cluster.js';
import { allBeads, checkLogAgainstStore, type CityGet } from '../helpers/city-log.js';
import { waitFor } from '../helpers/wait.js';

const kinds: [ClusterKind, string | undefined][] = (['postgres', 'mysql'] as const).map((k) => [
  k,
  DbCluster.missing(k),
]);
for (const [kind, why] of kinds) {
  if (why && databaseRequired()) {
    throw new Error(`GC_TEST_REQUIRE_DB is set but a ${kind} server cannot be made here: ${why}`);
  }
  if (why) process.stderr.write(`kill-database tests on ${kind} skipped: ${why}\n`);
}

let db: DbCluster;
let root: string;
let admin = '';
/** What the city server printed last (shown when a check fails). */
let serverOutput = '';
let socketPath: string;

/** A database server of its own and a city server on it. */
async function setUp(kind: ClusterKind): Promise<void> {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  db = await DbCluster.create(kind);
  await db.start();
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-killdb-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "kdb"\n[daemon]\npatrol_interval = "1h"\n[session]\nprovider = "subprocess"\n' +
      `[api]\nrate_per_s = 0\n[mail]\nmax_unread = 0\n[database]\nurl = "${db.url}"\n`,
  );
  socketPath = citySocketPath(root);
  admin = '';
  serverOutput = '';
  const child = spawnBuilt(['start', '--foreground', '--city', root]);
  const keep = (b: Buffer) => {
    serverOutput = (serverOutput + b.toString()).slice(-30_000);
  };
  child.stderr.on('data', keep);
  child.stdout.on('data', keep);
  child.on('exit', (code, signal) => {
    serverOutput += `\n[city server exited: ${code ?? signal}]`;
  });
  await waitFor(async () => {
    admin ||= readAdminKey(root) ?? '';
    if (!admin) return false;
    const r = await apiCall({ socketPath }, 'GET', '/v0/ping', { token: admin }).catch(
      () => undefined,
    );
    return r?.status === 200;
  }, 'the city server answers');
}

async function tearDown(): Promise<void> {
  killSpawned();
  if (root) await rm(root, { recursive: true, force: true });
  await db?.destroy();
}

const call = (method: string, url: string, actor: string, body?: unknown, key?: string) =>
  apiCall({ socketPath }, method, url, {
    token: admin,
    actor,
    ...(body === undefined ? {} : { body }),
    ...(key ? { headers: { 'idempotency-key': key } } : {}),
  });

/** The city server's own socket (.gc/srv-<id>.sock), which it keeps whether it leads or not. */
function ownSocket(): string {
  const dir = path.join(root, '.gc');
  const socks = readdirSync(dir).filter((f) => /^srv-.*\.sock$/.test(f));
  expect(socks, 'one server socket').toHaveLength(1);
  return path.join(dir, socks[0]!);
}

/** Kill the database once a quarter of `answers` came, wait for the burst, start it again. */
async function killMidBurst(answers: Map<number, Reply>, n: number, burst: Promise<unknown>[]) {
  await waitFor(() => answers.size >= n / 4, 'a quarter of the burst answered');
  await db.kill();
  await Promise.all(burst);
  // The city server lives on, and says the database is away. (Asked on its
  // own socket: the city socket is the leader's, and a leader that cannot
  // renew its lease in the database steps down until the database is back.)
  const own = { socketPath: ownSocket() };
  const ping = await apiCall(own, 'GET', '/v0/ping', { token: admin });
  expect(ping.status).toBe(200);
  const away = await apiCall(own, 'GET', '/v0/beads?scan=true&limit=1', { token: admin });
  expect(away.status, away.text).toBe(503);
  expect(away.text).not.toContain(PASSWORD);
  await db.start();
  // Back without a restart of the city server, leading again.
  await waitFor(
    async () =>
      (await call('GET', '/v0/beads?scan=true&limit=1', 'probe').catch(() => undefined))?.status ===
      200,
    'the city answers again once the database is back',
    30_000,
  );
}

const get: CityGet = (url) => call('GET', url, 'probe');

for (const [kind, why] of kinds) {
  describe.skipIf(why !== undefined)(`kill -9 of the database server mid-burst (${kind})`, () => {
    beforeAll(() => setUp(kind), 60_000);
    afterAll(tearDown);
    afterEach(async (ctx) => {
      if (ctx.task.result?.state === 'fail') {
        process.stderr.write(`city server output:\n${serverOutput}\n${kind}:\n${db?.output}\n`);
      }
      // A test that failed with the database down leaves it up for the next.
      if (db && !db.running) await db.start();
    });

    it('creates (with keys) and mail (without): 503 while away, then each done once', async () => {
      const N = 300;
      const M = 300;
      const created = new Map<number, Reply>();
      const mailed = new Map<number, Reply>();
      const answered = new Map<number, Reply>();
      const burst = [
        ...Array.from({ length: N }, (_, i) =>
          call('POST', '/v0/beads', 'burst', { title: `burst ${i}` }, `create-${i}`)
            .then((r) => {
              created.set(i, r);
              answered.set(answered.size, r);
            })
            .catch(() => undefined),
        ),
        ...Array.from({ length: M }, (_, i) =>
          call('POST', '/v0/mail', 'burst', { to: `mb-${i % 40}`, subject: `note ${i}`, body: 'b' })
            .then((r) => {
              mailed.set(i, r);
              answered.set(answered.size, r);
            })
            .catch(() => undefined),
        ),
      ];
      await killMidBurst(answered, N + M, burst);
      const statuses = new Set([...answered.values()].map((r) => r.status));
      for (const s of statuses) expect([200, 201, 503], `answer status ${s}`).toContain(s);

      // Keyed creates: retried, each answered as before (or done now), made once.
      for (let i = 0; i < N; i++) {
        const r = await call('POST', '/v0/beads', 'burst', { title: `burst ${i}` }, `create-${i}`);
        expect(r.status, r.text).toBeLessThan(300);
        const first = created.get(i);
        if (first && first.status < 300) expect(r.body.id).toBe(first.body.id);
      }
      const beads = await allBeads(get);
      const titles = beads.filter((b) => b.title.startsWith('burst ')).map((b) => b.title);
      expect(titles.length).toBe(N);
      expect(new Set(titles).size).toBe(N);

      // Mail sent without a key: an acknowledged send is there once, any other at most once.
      const messages = beads.filter((b) => b.issue_type === 'message');
      const bySubject = new Map<string, number>();
      for (const m of messages) bySubject.set(m.title, (bySubject.get(m.title) ?? 0) + 1);
      for (let i = 0; i < M; i++) {
        const n = bySubject.get(`note ${i}`) ?? 0;
        if (mailed.get(i)?.status === 200) expect(n, `note ${i} acknowledged`).toBe(1);
        else expect(n, `note ${i} not acknowledged`).toBeLessThanOrEqual(1);
      }
      const events = await checkLogAgainstStore(get);
      const sent = events.filter((e) => e.type === 'mail.sent');
      expect(sent.length).toBe(messages.length);
      expect(new Set(sent.map((e) => e.subject)).size).toBe(sent.length);
    }, 120_000);

    it('claims (with keys): no bead handed out twice, every worker holds one', async () => {
      const N = 200;
      const open = (await allBeads(get)).filter(
        (b) => b.status === 'open' && b.issue_type !== 'message',
      );
      expect(open.length).toBeGreaterThanOrEqual(N);
      const answers = new Map<number, Reply>();
      const burst = Array.from({ length: N }, (_, i) =>
        call('POST', '/v0/beads/claim-next', `worker-${i}`, {}, `claim-${i}`).then(
          (r) => void answers.set(i, r),
          () => undefined,
        ),
      );
      await killMidBurst(answers, N, burst);
      const before = new Map(answers);
      const held = new Map<string, string>();
      for (let i = 0; i < N; i++) {
        const r = await call('POST', '/v0/beads/claim-next', `worker-${i}`, {}, `claim-${i}`);
        expect(r.status, r.text).toBe(200);
        const bead = (r.body as { bead: Bead | null }).bead;
        expect(bead, `worker-${i} got work`).not.toBeNull();
        const first = before.get(i);
        if (first?.status === 200) expect(bead!.id).toBe((first.body as { bead: Bead }).bead.id);
        expect(held.has(bead!.id), `${bead!.id} handed out twice`).toBe(false);
        held.set(bead!.id, `worker-${i}`);
      }
      const byHolder = new Map<string, number>();
      for (const b of await allBeads(get)) {
        if (b.status === 'in_progress')
          byHolder.set(b.assignee, (byHolder.get(b.assignee) ?? 0) + 1);
      }
      expect(byHolder.size).toBe(N);
      expect([...byHolder.values()].every((n) => n === 1)).toBe(true);
      await checkLogAgainstStore(get);
    }, 120_000);

    it('events recorded in process: acknowledged ones kept once, the log gap-free, watchers resume', async () => {
      const log = await SqlEventLog.open({ url: db.url, dbOptions: { poolSize: 8 } });
      try {
        const start = await log.latestSeq();
        const ac = new AbortController();
        const follow = (seen: GcEvent[]) =>
          (async () => {
            for await (const e of log.watch(start, {
              signal: ac.signal,
              filter: { type: 'kill.test' },
            }))
              seen.push(e);
          })().catch((e: Error) => seen.push({ seq: -1, type: 'ended', ts: '', actor: e.message }));
        // One watcher follows from before the burst, one starts while the database is away.
        const seen: GcEvent[] = [];
        const seenLate: GcEvent[] = [];
        const watching = [follow(seen)];
        const N = 2000;
        const acked = new Map<number, GcEvent>();
        let settled = 0;
        const burst = Array.from({ length: N }, (_, i) =>
          log
            .record({ type: 'kill.test', actor: `p${i % 64}`, message: `e${i}` })
            .then((e) => void acked.set(i, e))
            .catch(() => undefined)
            .finally(() => settled++),
        );
        await waitFor(() => settled >= N / 4, 'a quarter of the events answered');
        await db.kill();
        await Promise.all(burst);
        watching.push(follow(seenLate));
        await db.start();
        const after = await waitFor(
          async () => (await log.latestSeq().catch(() => -1)) >= 0,
          'the log reads again',
          30_000,
        ).then(() => log.record({ type: 'kill.test', actor: 'after', message: 'after' }));
        // The city server writes its own events meanwhile: the log as a whole is gap-free.
        const page = await log.list({ afterSeq: start, limit: 10_000 });
        page.items.forEach((e, i) => expect(e.seq, 'gap-free').toBe(start + i + 1));
        const items = page.items.filter((e) => e.type === 'kill.test');
        const byMessage = new Map<string, GcEvent[]>();
        for (const e of items) byMessage.set(e.message!, [...(byMessage.get(e.message!) ?? []), e]);
        for (const [i, e] of acked) {
          expect(
            byMessage.get(`e${i}`)?.map((x) => x.seq),
            `e${i} kept once`,
          ).toEqual([e.seq]);
        }
        for (const list of byMessage.values()) expect(list.length).toBe(1);
        // The watcher saw everything up to the event recorded after the restart, in order.
        for (const got of [seen, seenLate]) {
          await waitFor(
            () => got.some((e) => e.seq === after.seq || e.seq < 0),
            'the watchers resume',
          );
          expect(got.map((e) => e.seq)).toEqual(items.map((e) => e.seq));
        }
        ac.abort();
        await Promise.all(watching);
      } finally {
        await log.close();
      }
    }, 120_000);
  });
}
