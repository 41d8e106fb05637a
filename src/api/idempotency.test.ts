import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { onEachServer } from '../../test/helpers/db.js';
import { runIdempotencyConformance } from './idempotency-conformance.js';
import { SqlIdempotency } from './idempotency-sql.js';
import { IdempotencyStore } from './idempotency.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-idem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runIdempotencyConformance('sqlite', (clock) =>
  Promise.resolve(new IdempotencyStore(join(dir, `api${n++}.db`), () => clock.now())),
);

await onEachServer('idempotency', (kind, fresh) => {
  runIdempotencyConformance(
    kind,
    async (clock) => new SqlIdempotency(await fresh({ poolSize: 8 }), clock),
  );
});
