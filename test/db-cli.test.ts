/**
 * `gc db status|migrate` against the machine's PostgreSQL and MariaDB: the
 * schema of a fresh database is created once, status says where it stands,
 * and the password in the URL never reaches the output.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
  });
}
