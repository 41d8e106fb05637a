import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { migrate, openSqlDb } from '../db/index.js';
import { SqlKeyStore } from './key-store.js';
import { runKeyRingConformance } from './keyring-conformance.js';
import { KeyRing } from './keyring.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runKeyRingConformance('sqlite', () => {
  const gcDir = join(dir, `c${n++}`);
  return Promise.resolve({ open: () => KeyRing.open(gcDir) });
});

describe('an auth.db from before metrics keys', () => {
  it('is upgraded in place: its keys stay, and metrics keys can be made', async () => {
    const gcDir = join(dir, 'old');
    const first = await KeyRing.open(gcDir);
    const { token } = await first.create({ kind: 'operator', name: 'op' });
    await first.close();
    // Put back the table as it was made before: a CHECK without 'metrics'.
    const db = new Database(join(gcDir, 'auth.db'));
    const sql = (
      db.prepare("SELECT sql FROM sqlite_master WHERE name = 'keys'").get() as {
        sql: string;
      }
    ).sql;
    db.exec(sql.replace(/CREATE TABLE keys/, 'CREATE TABLE keys_old').replace(",'metrics'", ''));
    db.exec('INSERT INTO keys_old SELECT * FROM keys; DROP TABLE keys');
    db.exec('ALTER TABLE keys_old RENAME TO keys');
    expect(() =>
      db.exec(
        "INSERT INTO keys (key_id, kind, name, hmac, created_at) VALUES ('x', 'metrics', 'm', x'00', 'now')",
      ),
    ).toThrow(/CHECK constraint/);
    db.close();
    const again = await KeyRing.open(gcDir);
    expect(again.verify(token)).toMatchObject({ kind: 'operator', name: 'op' });
    const m = await again.create({ kind: 'metrics', name: 'prometheus' });
    expect(again.verify(m.token)).toMatchObject({ kind: 'metrics' });
    await again.close();
  });
});

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} key ring${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  afterAll(() => scratch.dropAll());
  runKeyRingConformance(kind, async () => {
    const schema = await scratch.create();
    const setup = await openSqlDb(server.url!, { schema, poolSize: 1 });
    await migrate(setup);
    await setup.close();
    return {
      // Each ring its own pool, as each server of the city has.
      open: async () =>
        KeyRing.open(new SqlKeyStore(await openSqlDb(server.url!, { schema, poolSize: 2 }), true)),
    };
  });
}
