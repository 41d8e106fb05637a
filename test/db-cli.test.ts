/**
 * `gc db status|migrate|copy` against the machine's PostgreSQL and MariaDB:
 * the schema of a fresh database is created once, status says where it
 * stands, the password in the URL never reaches the output, and a city on
 * SQLite moves into an empty database with everything it had.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyRing, SqlKeyStore } from '../src/city/index.js';
import { openSqlDb } from '../src/db/index.js';
import { MergeQueue } from '../src/refinery/index.js';
import { gc } from './helpers/cli.js';
import { Scratch, database } from './helpers/db.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gc-dbcli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gc db without a database', () => {
  it('says the city keeps its state in .gc/', async () => {
    const root = mkdtempSync(path.join(dir, 'plain-'));
    writeFileSync(path.join(root, 'city.toml'), '[workspace]\nname = "plain"\n');
    const r = await gc(['db', 'status'], { cwd: root, env: { GC_DATABASE_URL: '' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/keeps its state in \.gc\/ \(no \[database\] url\)/);
  });
});

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  describe.skipIf(!server.url)(`gc db on ${kind}${server.note}`, () => {
    const scratch = new Scratch(server.url ?? '');
    afterAll(() => scratch.dropAll());

    it('status, migrate once, status again; the password never shows', async () => {
      const u = new URL(await scratch.createDatabase());
      // Trust auth here ignores it; a real server would check it.
      if (kind === 'postgres') u.password = 'sekret-pw';
      const env = { GC_DATABASE_URL: u.toString() };
      const root = mkdtempSync(path.join(dir, `${kind}-`));
      writeFileSync(path.join(root, 'city.toml'), '[workspace]\nname = "dbc"\n');
      const before = await gc(['db', 'status', '--json'], { cwd: root, env });
      expect(before.code, before.stderr).toBe(0);
      expect(JSON.parse(before.stdout)).toMatchObject({
        dialect: kind,
        schema_version: 0,
        up_to_date: false,
      });
      const m = await gc(['db', 'migrate', '--json'], { cwd: root, env });
      expect(m.code, m.stderr).toBe(0);
      const migrated = JSON.parse(m.stdout) as { from_version: number; to_version: number };
      expect(migrated.from_version).toBe(0);
      expect(migrated.to_version).toBeGreaterThanOrEqual(2);
      const again = await gc(['db', 'migrate'], { cwd: root, env });
      expect(again.stdout).toMatch(/schema already at version \d+/);
      const after = await gc(['db', 'status'], { cwd: root, env });
      expect(after.code, after.stderr).toBe(0);
      expect(after.stdout).toMatch(/schema:\s+version (\d+) of \1\n/);
      expect(after.stdout).toMatch(/beads:\s+0; outbox: 0 event/);
      for (const out of [before, m, again, after]) {
        expect(out.stdout + out.stderr).not.toContain('sekret-pw');
      }
    });

    it('copy moves a stopped SQLite city into an empty database, verified; its data and keys carry on there', async () => {
      const url = await scratch.createDatabase();
      const root = mkdtempSync(path.join(dir, `copy-${kind}-`));
      writeFileSync(path.join(root, 'city.toml'), '[workspace]\nname = "mover"\n');
      const at = { cwd: root, env: { GC_DATABASE_URL: '' } };
      const made = async (title: string, extra: string[] = []) =>
        JSON.parse((await gc(['bead', 'create', title, ...extra, '--json'], at)).stdout) as {
          id: string;
        };
      const a = await made('first', ['-l', 'x', '-l', 'y']);
      const b = await made('second', ['--needs', a.id]);
      await made('third');
      expect((await gc(['bead', 'claim', a.id, '--actor', 'w-1'], at)).code).toBe(0);
      expect((await gc(['bead', 'close', a.id, '-r', 'done'], at)).code).toBe(0);
      expect(
        (await gc(['mail', 'send', 'w-2', '-s', 'hi', '-m', 'body', '--actor', 'w-1'], at)).code,
      ).toBe(0);
      const ring = await KeyRing.open(path.join(root, '.gc'));
      const key = await ring.create({ kind: 'operator', name: 'op-1' });
      await ring.close();
      // A merge request sent back, one merged (with its attempt and build), and a quarantined session.
      const mq = MergeQueue.file(path.join(root, '.gc', 'mq.db'));
      const sha = (n: number) => String(n).repeat(40);
      const sent = (await mq.submit({ rig: 'app', branch: 'a', head: sha(1), author: 'w-1' }))
        .request;
      await mq.startTesting(sent.id, sha(3));
      await mq.markConflict(sent.id, ['x.ts'], b.id);
      const landed = (await mq.submit({ rig: 'app', branch: 'b', head: sha(2), author: 'w-2' }))
        .request;
      await mq.markMerged(landed.id, sha(4));
      await mq.recordBuild('app', { size: 1, outcome: 'passed', depth: 0, gateRuns: 1 });
      const mqBefore = await mq.list({ limit: 10 });
      const statsBefore = await mq.stats('app');
      await mq.close();
      writeFileSync(
        path.join(root, '.gc', 'sessions.json'),
        JSON.stringify({ sessions: [{ session: 'w-9', deaths: [1, 2], quarantined: true }] }),
      );
      const beforeList = (await gc(['bead', 'list', '--all', '--json'], at)).stdout;
      const beforeEvents = JSON.parse((await gc(['events', '--json'], at)).stdout) as unknown[];

      // A password on the command line is refused; a 0600 file is the way.
      const pw = new URL(url);
      pw.password = 'sekret-pw';
      const refused = await gc(['db', 'copy', '--to', pw.toString()], at);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/--to-file/);
      expect(refused.stderr).not.toContain('sekret-pw');
      const file = path.join(root, 'target.url');
      writeFileSync(file, `${url}\n`, { mode: 0o644 });
      const loose = await gc(['db', 'copy', '--to-file', file], at);
      expect(loose.stderr).toMatch(/may be read by others/);
      chmodSync(file, 0o600);

      const r = await gc(['db', 'copy', '--to-file', file, '--json'], at);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        tables: Record<string, number>;
        latest_seq: number;
        replay_checked: number;
      };
      expect(out.tables.beads).toBe(4);
      expect(out.tables.events).toBe(beforeEvents.length);
      expect(out.latest_seq).toBe(beforeEvents.length);
      expect(out.replay_checked).toBe(3);
      expect(out.tables.api_keys).toBe(1);
      expect(out.tables).toMatchObject({ mr: 2, mr_attempts: 2, mq_builds: 1, session_facts: 1 });
      // The key made on SQLite verifies on the database: its secret came along.
      const moved = await KeyRing.open(
        new SqlKeyStore(await openSqlDb(url, { poolSize: 1 }), true),
      );
      expect(moved.verify(key.token)?.name).toBe('op-1');
      await moved.close();
      // The merge queue came along whole: rows, stats, and new requests number after them.
      const pool = await openSqlDb(url, { poolSize: 1 });
      const mqMoved = MergeQueue.forCity('', { db: pool });
      expect(await mqMoved.list({ limit: 10 })).toEqual(mqBefore);
      const { merges_per_hour: _m, ...stats } = statsBefore;
      expect(await mqMoved.stats('app')).toMatchObject(stats);
      const next = await mqMoved.submit({ rig: 'app', branch: 'c', head: sha(5), author: 'w-1' });
      expect(next.request.seq).toBeGreaterThan(landed.seq);
      expect(
        await pool.query('SELECT session, deaths, quarantined FROM session_facts'),
      ).toMatchObject([{ session: 'w-9', deaths: '[1,2]', quarantined: 1 }]);
      await pool.close();

      // The same city, now on the database: the same beads and events, and it goes on.
      const onDb = { cwd: root, env: { GC_DATABASE_URL: url } };
      expect((await gc(['bead', 'list', '--all', '--json'], onDb)).stdout).toBe(beforeList);
      const events = JSON.parse((await gc(['events', '--json'], onDb)).stdout) as unknown[];
      expect(events).toEqual(beforeEvents);
      const later = JSON.parse(
        (await gc(['bead', 'create', 'after the move', '--json'], onDb)).stdout,
      ) as { id: string };
      expect([a.id, b.id]).not.toContain(later.id);
      const inbox = await gc(['mail', 'inbox', '--agent', 'w-2', '--peek', '--json'], onDb);
      expect(inbox.stdout).toMatch(/"subject": ?"hi"/);

      // A second copy into the same database is refused, and changes nothing there.
      const again = await gc(['db', 'copy', '--to-file', file], at);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/is not empty: table beads has rows/);
    });
  });
}
