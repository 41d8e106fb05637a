import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
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
