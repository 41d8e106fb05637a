import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { onEachServer } from '../../test/helpers/db.js';
import { runQueueConformance } from './queue-conformance.js';
import { MergeQueue } from './queue.js';

runQueueConformance('sqlite memory', (clock) =>
  Promise.resolve(MergeQueue.file(':memory:', { clock })),
);

const dir = mkdtempSync(path.join(tmpdir(), 'gc-mq-conf-'));
let n = 0;
const files: MergeQueue[] = [];
afterAll(async () => {
  for (const q of files.splice(0)) await q.close();
  rmSync(dir, { recursive: true, force: true });
});
runQueueConformance('sqlite file', (clock) => {
  const q = MergeQueue.file(path.join(dir, `mq-${++n}.db`), { clock });
  files.push(q);
  return Promise.resolve(q);
});

await onEachServer('merge queue', (kind, fresh) => {
  runQueueConformance(kind, async (clock) => MergeQueue.forCity('', { db: await fresh(), clock }));
});
