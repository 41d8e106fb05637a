import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onEachServer } from '../../test/helpers/db.js';
import { runUsageConformance } from './usage-conformance.js';
import { SqlUsage, SqliteUsage } from './usage.js';

runUsageConformance('sqlite', () =>
  Promise.resolve(
    new SqliteUsage(path.join(mkdtempSync(path.join(os.tmpdir(), 'gc-usage-')), 'usage.db')),
  ),
);

await onEachServer('usage records', (kind, fresh) => {
  runUsageConformance(kind, async () => new SqlUsage(await fresh({ poolSize: 2 })));
});
