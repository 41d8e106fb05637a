/**
 * Merge-queue throughput: N branches, each touching its own file, through
 * the real engine (real git, a gate that takes G ms), once with one worker
 * (sequential, the baseline) and once with four speculative workers, in the
 * same run. Checks that every commit on the target was a commit a gate
 * tested (untested_merges) and that merges landed in queue order
 * (order_violations).
 *
 *   npx tsx bench/mq.ts [--quick]     N=24, G=1000 ms (quick: N=12, G=500 ms)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { rigSchema } from '../src/config/index.js';
import { MemoryEventLog } from '../src/events/index.js';
import { MergeQueue, Refinery, cityMergeHooks } from '../src/refinery/index.js';
import { branchWith, git, makeRepo } from '../test/helpers/git.js';
import { note, quick, result, round, scratchDir } from './lib.js';

const N = quick ? 12 : 24;
const GATE_MS = quick ? 500 : 1000;
const WORKERS = 4;

async function run(
  workers: number,
): Promise<{ seconds: number; untested: number; disorder: number }> {
  const dir = scratchDir(`mq-k${workers}`);
  const repo = path.join(dir, 'repo');
  makeRepo(repo);
  const log = path.join(dir, 'tested.log');
  const rig = rigSchema.parse({
    name: 'bench',
    path: 'repo',
    merge_workers: workers,
    gates: {
      test: {
        command: `echo "$GC_MQ_TESTED" >> ${JSON.stringify(log)}; sleep ${GATE_MS / 1000}`,
        timeout: '5m',
      },
    },
  });
  const queue = new MergeQueue(path.join(dir, '.gc', 'mq.db'));
  const refinery = new Refinery({
    root: dir,
    gcDir: path.join(dir, '.gc'),
    rigs: [rig],
    queue,
    hooks: cityMergeHooks({
      events: new MemoryEventLog(),
      mail: undefined,
      createBead: () => Promise.reject(new Error('no conflicts expected')),
      closeBead: () => Promise.resolve(),
    }),
  });
  const order: string[] = [];
  for (let i = 0; i < N; i++) {
    const branch = `feat-${String(i).padStart(3, '0')}`;
    branchWith(repo, branch, { [`src/f${i}.txt`]: `change ${i}\n` });
    await refinery.submit('bench', { rig: 'bench', branch });
    order.push(`${branch}: change src/f${i}.txt`);
  }
  const t0 = performance.now();
  await refinery.start();
  await refinery.idle();
  const seconds = (performance.now() - t0) / 1000;
  await refinery.stop();
  queue.close();
  const onMain = git(repo, 'rev-list', '--reverse', 'main').split('\n').filter(Boolean).slice(1);
  const tested = new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean));
  const untested = onMain.filter((c) => !tested.has(c)).length;
  const landed = git(repo, 'log', '--reverse', '--format=%s', 'main').split('\n').slice(1);
  let disorder = landed.length === N ? 0 : Math.abs(N - landed.length);
  for (let i = 0; i < Math.min(N, landed.length); i++) if (landed[i] !== order[i]) disorder++;
  note(
    `K=${workers}: ${N} merges in ${round(seconds)} s (${landed.length} on main, ${untested} untested, ${disorder} out of order)`,
  );
  return { seconds, untested, disorder };
}

const seq = await run(1);
const par = await run(WORKERS);
result({
  bench: 'mq',
  quick,
  mrs: N,
  gate_ms: GATE_MS,
  workers: WORKERS,
  sequential_s: round(seq.seconds),
  parallel_s: round(par.seconds),
  speedup: round(seq.seconds / par.seconds),
  untested_merges: seq.untested + par.untested,
  order_violations: seq.disorder + par.disorder,
});
