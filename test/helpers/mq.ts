/**
 * A merge-queue fixture for tests: a real git repository, a queue, a memory
 * store and event log, and a refinery whose test gate records every commit
 * it sees and fails when the tree holds a file named "broken".
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { CityOps } from '../../src/city/index.js';
import { rigSchema } from '../../src/config/index.js';
import { MemoryEventLog } from '../../src/events/index.js';
import { StoreMail } from '../../src/mail/index.js';
import { MergeQueue, Refinery, cityMergeHooks } from '../../src/refinery/index.js';
import { MemoryStore } from '../../src/store/index.js';
import { git, makeRepo } from './git.js';

export const dirs: string[] = [];
const refineries: Refinery[] = [];
afterEach(async () => {
  for (const r of refineries.splice(0)) await r.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

export interface Setup {
  dir: string;
  repo: string;
  queue: MergeQueue;
  store: MemoryStore;
  events: MemoryEventLog;
  mail: StoreMail;
  refinery: Refinery;
  /** Every commit a gate saw, in order. */
  tested(): string[];
}

export async function setup(
  options: {
    workers?: number;
    style?: 'rebase' | 'squash';
    test?: string;
    start?: boolean;
    dir?: string;
    batch?: number;
    autoResolve?: boolean;
  } = {},
): Promise<Setup> {
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'gc-mq-'));
  if (!options.dir) dirs.push(dir);
  const repo = path.join(dir, 'repo');
  if (!options.dir) makeRepo(repo);
  const log = path.join(dir, 'tested.log');
  // Records the commit under test, then fails when the tree has a file named "broken".
  const test = options.test ?? `echo "$GC_MQ_TESTED" >> ${JSON.stringify(log)}; test ! -e broken`;
  const rig = rigSchema.parse({
    name: 'app',
    path: 'repo',
    merge_workers: options.workers ?? 1,
    merge_style: options.style ?? 'rebase',
    merge_batch: options.batch ?? 1,
    merge_auto_resolve: options.autoResolve ?? true,
    gates: { test: { command: test, timeout: '30s' } },
  });
  const queue = MergeQueue.file(path.join(dir, '.gc', 'mq.db'));
  const store = new MemoryStore();
  const events = new MemoryEventLog();
  const mail = new StoreMail(store);
  const ops = new CityOps(store, events);
  const refinery = new Refinery({
    root: dir,
    gcDir: path.join(dir, '.gc'),
    rigs: [rig],
    queue,
    hooks: cityMergeHooks({
      events,
      mail,
      createBead: (a, i) => ops.createBead(a, i),
      closeBead: (a, id, r) => ops.closeBead(a, id, r),
      getBead: (id) => store.get(id),
      setMetadata: (a, id, k, v) => ops.setMetadata(a, id, k, v),
    }),
    pollMs: 200,
  });
  refineries.push(refinery);
  if (options.start !== false) await refinery.start();
  return {
    dir,
    repo,
    queue,
    store,
    events,
    mail,
    refinery,
    tested: () => {
      try {
        return readFileSync(log, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

/** Commits on main after the initial one, oldest first. */
export function mainCommits(repo: string): string[] {
  return git(repo, 'rev-list', '--reverse', 'main').split('\n').filter(Boolean).slice(1);
}
