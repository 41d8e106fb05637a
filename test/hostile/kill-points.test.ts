/**
 * kill -9 of a real city server in the middle of a burst of writes, then a
 * restart and the clients' retries with the same Idempotency-Keys:
 *
 * - every request answered before the kill gets the same answer again;
 * - a request whose answer was lost gets the answer of what it did (a claim
 *   is not made twice, so no actor ends up holding two beads);
 * - the event log has no gap, and replaying it gives the store's state
 *   (every committed change has its event, and no event is doubled).
 *
 * The bursts run on the default (SQLite + JSONL) and with the whole city
 * on PostgreSQL and on MariaDB ([database] url, a fresh database each).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { citySocketPath } from '../../src/server/index.js';
import { readAdminKey } from '../../src/city/index.js';
import type { Bead } from '../../src/store/index.js';
import { CONFIG_HOME, killSpawned, spawnBuilt } from '../helpers/cli.js';
import { Scratch, database } from '../helpers/db.js';
import { branchWith, makeRepo } from '../helpers/git.js';
import { apiCall, type Reply } from '../helpers/http.js';
import { allBeads, allEvents, checkLogAgainstStore, type CityGet } from '../helpers/city-log.js';
import { waitFor } from '../helpers/wait.js';

let root: string;
let admin: string;
let socketPath: string;

const roots: string[] = [];
const scratches: Scratch[] = [];
beforeAll(() => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
});
afterEach(() => killSpawned());
afterAll(async () => {
  killSpawned();
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
  for (const s of scratches.splice(0)) await s.dropAll();
});

/** A fresh city for one backend; the helpers below talk to it. */
async function newCity(url: string | undefined): Promise<void> {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-kill-'));
  roots.push(root);
  let db = '';
  if (url) {
    const scratch = new Scratch(url);
    scratches.push(scratch);
    db = `[database]\nurl = "${await scratch.createDatabase()}"\n`;
  }
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "kp"\n[daemon]\npatrol_interval = "1h"\n[session]\nprovider = "subprocess"\n[api]\nrate_per_s = 0\n[mail]\nmax_unread = 0\n' +
      db,
  );
  socketPath = citySocketPath(root);
  admin = '';
}

const backends: [string, string | undefined, string][] = [['sqlite', undefined, '']];
for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  backends.push([kind, server.url, server.note]);
}

async function start(): Promise<ReturnType<typeof spawnBuilt>> {
  const child = spawnBuilt(['start', '--foreground', '--city', root]);
  await waitFor(async () => {
    if (!admin) admin = readAdminKey(root) ?? '';
    if (!admin) return false;
    const r = await apiCall({ socketPath }, 'GET', '/v0/ping', { token: admin }).catch(
      () => undefined,
    );
    return r?.status === 200;
  }, 'the server answers');
  return child;
}

const call = (method: string, url: string, key: string, actor: string, body: unknown) =>
  apiCall({ socketPath }, method, url, {
    token: admin,
    actor,
    body,
    headers: { 'idempotency-key': key },
  });

const get: CityGet = (url) => apiCall({ socketPath }, 'GET', url, { token: admin });

for (const [kind, url, note] of backends) {
  describe.skipIf(kind !== 'sqlite' && !url)(`kill -9 mid-burst (${kind})${note}`, () => {
    beforeAll(() => newCity(url));
    it('creates: nothing acknowledged lost, nothing doubled on retry, the log replays to the store', async () => {
      const server = await start();
      const N = 400;
      const answers = new Map<number, Reply>();
      const burst = Array.from({ length: N }, (_, i) =>
        call('POST', '/v0/beads', `create-${i}`, 'burst', { title: `burst ${i}` }).then(
          (r) => void answers.set(i, r),
          () => undefined,
        ),
      );
      await waitFor(() => answers.size >= N / 4, 'a quarter of the creates answered');
      server.kill('SIGKILL');
      await Promise.all(burst);
      const before = new Map(answers);
      await start();
      for (let i = 0; i < N; i++) {
        const r = await call('POST', '/v0/beads', `create-${i}`, 'burst', { title: `burst ${i}` });
        expect(r.status, r.text).toBeLessThan(300);
        const first = before.get(i);
        if (first && first.status < 300) expect(r.body.id).toBe(first.body.id);
      }
      const beads = await allBeads(get);
      expect(beads.filter((b) => b.title.startsWith('burst ')).length).toBe(N);
      await checkLogAgainstStore(get);
    }, 120_000);

    it('claims: every claim answered once, no actor holds two beads', async () => {
      const server = await start();
      const N = 300;
      const ready = await allBeads(get);
      expect(ready.filter((b) => b.status === 'open').length).toBeGreaterThanOrEqual(N);
      const answers = new Map<number, Reply>();
      const burst = Array.from({ length: N }, (_, i) =>
        call('POST', '/v0/beads/claim-next', `claim-${i}`, `worker-${i}`, {}).then(
          (r) => void answers.set(i, r),
          () => undefined,
        ),
      );
      await waitFor(() => answers.size >= N / 4, 'a quarter of the claims answered');
      server.kill('SIGKILL');
      await Promise.all(burst);
      const before = new Map(answers);
      await start();
      const held = new Map<string, string>();
      for (let i = 0; i < N; i++) {
        const r = await call('POST', '/v0/beads/claim-next', `claim-${i}`, `worker-${i}`, {});
        expect(r.status, r.text).toBe(200);
        const bead = (r.body as { bead: Bead | null }).bead;
        expect(bead, `worker-${i} got work`).not.toBeNull();
        const first = before.get(i);
        if (first?.status === 200) {
          expect(bead!.id).toBe((first.body as { bead: Bead }).bead.id);
        }
        expect(held.has(bead!.id), `${bead!.id} handed out twice`).toBe(false);
        held.set(bead!.id, `worker-${i}`);
      }
      const beads = await allBeads(get);
      const byHolder = new Map<string, number>();
      for (const b of beads) {
        if (b.status === 'in_progress')
          byHolder.set(b.assignee, (byHolder.get(b.assignee) ?? 0) + 1);
      }
      expect([...byHolder.values()].every((n) => n === 1)).toBe(true);
      expect(byHolder.size).toBe(N);
      await checkLogAgainstStore(get);
    }, 120_000);

    it('mail: every send answered once, none lost or doubled, one event each, the log gap-free', async () => {
      const server = await start();
      const N = 300;
      const body = (i: number) => ({ to: `mb-${i % 40}`, subject: `note ${i}`, body: `b${i}` });
      const answers = new Map<number, Reply>();
      const burst = Array.from({ length: N }, (_, i) =>
        call('POST', '/v0/mail', `mail-${i}`, 'burst', body(i)).then(
          (r) => void answers.set(i, r),
          () => undefined,
        ),
      );
      await waitFor(() => answers.size >= N / 4, 'a quarter of the sends answered');
      server.kill('SIGKILL');
      await Promise.all(burst);
      const before = new Map(answers);
      await start();
      const ids = new Set<string>();
      for (let i = 0; i < N; i++) {
        const r = await call('POST', '/v0/mail', `mail-${i}`, 'burst', body(i));
        expect(r.status, r.text).toBe(200);
        const first = before.get(i);
        if (first?.status === 200) expect(r.body.id).toBe(first.body.id);
        ids.add(String(r.body.id));
      }
      expect(ids.size).toBe(N);
      const sent = (await allEvents(get)).filter((e) => e.type === 'mail.sent');
      expect(sent.map((e) => e.subject).sort()).toEqual([...ids].sort());
      await checkLogAgainstStore(get);
    }, 120_000);
  });
}

describe('kill -9 mid-gate', () => {
  it('mid-gate: the gate process group a dead server left is killed by the next one', async () => {
    const groot = await mkdtemp(path.join(os.tmpdir(), 'gc-kill-gate-'));
    const repo = path.join(groot, 'app');
    makeRepo(repo);
    const head = branchWith(repo, 'feature', { 'f.txt': 'f\n' });
    const pidFile = path.join(groot, 'gate.pid');
    await writeFile(
      path.join(groot, 'city.toml'),
      `[workspace]\nname = "kg"\n[daemon]\npatrol_interval = "1h"\n[session]\nprovider = "subprocess"\n[[rigs]]\nname = "app"\npath = "app"\n[rigs.gates.test]\ncommand = "echo $$ > ${pidFile}; exec sleep 300"\n`,
    );
    const saved = { root, socketPath, admin };
    root = groot;
    socketPath = citySocketPath(groot);
    admin = '';
    let gatePid = 0;
    try {
      const first = await start();
      const sub = await call('POST', '/v0/mq', 'gate-1', 'human', { branch: 'feature', head });
      expect(sub.status, sub.text).toBe(200);
      await waitFor(
        () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
        'the gate runs',
      );
      gatePid = Number(readFileSync(pidFile, 'utf8').trim());
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      // The gate outlived its server.
      expect(existsSync(`/proc/${gatePid}`)).toBe(true);
      await start();
      await waitFor(
        () =>
          !existsSync(`/proc/${gatePid}`) ||
          /^\S+ \S+ Z/.test(readFileSync(`/proc/${gatePid}/stat`, 'utf8').replace(/\(.*\)/, 'x')),
        'the leftover gate is killed',
      );
    } finally {
      if (gatePid && existsSync(`/proc/${gatePid}`)) {
        try {
          process.kill(-gatePid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      killSpawned();
      root = saved.root;
      socketPath = saved.socketPath;
      admin = saved.admin;
      await rm(groot, { recursive: true, force: true });
    }
  }, 120_000);
});
