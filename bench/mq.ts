/**
 * Merge-queue throughput: N branches through the real engine (real git, a
 * gate that takes G ms), once with one worker (sequential, the baseline) and
 * once with four speculative workers, in the same run, for two workloads:
 *
 * - best case: each branch touches its own file; everything merges;
 * - realistic mix: every fifth branch adds the same file as the branch
 *   before it (a conflict once that one lands), and one branch in ten
 *   fails its gate (after the one retry a failing gate gets).
 *
 * Checks that every commit on the target was a commit a gate tested
 * (untested_merges) and that merges landed in queue order among the
 * requests that merged (order_violations); for the mix, that exactly the
 * conflicting and failing branches did not merge.
 *
 *   npx tsx bench/mq.ts [--quick]     N=24, G=1000 ms (quick: N=12, G=500 ms)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { rigSchema } from '../src/config/index.js';
import { MemoryEventLog } from '../src/events/index.js';
import { MergeQueue, Refinery, cityMergeHooks } from '../src/refinery/index.js';
import { MemoryStore } from '../src/store/index.js';
import { branchWith, git, makeRepo } from '../test/helpers/git.js';
import { note, quick, result, round, scratchDir } from './lib.js';

const N = quick ? 12 : 24;
const GATE_MS = quick ? 500 : 1000;
const WORKERS = 4;

/** What a branch of the workload does. */
type Kind = 'clean' | 'conflict' | 'fails';

/** Branch i's kind: the best case is all clean; the mix has conflicts and failures. */
function kindOf(i: number, mix: boolean): Kind {
  if (!mix) return 'clean';
  if (i % 10 === 7) return 'fails';
  if (i % 5 === 4) return 'conflict';
  return 'clean';
}

interface RunResult {
  seconds: number;
  untested: number;
  disorder: number;
  merged: number;
  conflicts: number;
  failed: number;
}

async function run(workers: number, mix: boolean): Promise<RunResult> {
  const dir = scratchDir(`mq-k${workers}${mix ? '-mix' : ''}`);
  const repo = path.join(dir, 'repo');
  makeRepo(repo);
  const log = path.join(dir, 'tested.log');
  const rig = rigSchema.parse({
    name: 'bench',
    path: 'repo',
    merge_workers: workers,
    gates: {
      test: {
        command: `echo "$GC_MQ_TESTED" >> ${JSON.stringify(log)}; sleep ${GATE_MS / 1000}; test ! -e broken`,
        timeout: '5m',
      },
    },
  });
  const queue = MergeQueue.file(path.join(dir, '.gc', 'mq.db'));
  const beads = new MemoryStore();
  const refinery = new Refinery({
    root: dir,
    gcDir: path.join(dir, '.gc'),
    rigs: [rig],
    queue,
    hooks: cityMergeHooks({
      events: new MemoryEventLog(),
      mail: undefined,
      createBead: (_actor, input) => beads.create(input),
      closeBead: () => Promise.resolve(),
    }),
  });
  const expected: string[] = [];
  for (let i = 0; i < N; i++) {
    const branch = `feat-${String(i).padStart(3, '0')}`;
    const kind = kindOf(i, mix);
    // A conflicting branch adds the file the branch before it adds.
    const file = kind === 'conflict' ? `src/f${i - 1}.txt` : `src/f${i}.txt`;
    const files: Record<string, string> = { [file]: `change ${i}\n` };
    if (kind === 'fails') files.broken = 'yes\n';
    branchWith(repo, branch, files);
    await refinery.submit('bench', { rig: 'bench', branch });
    if (kind === 'clean') expected.push(`${branch}: change ${Object.keys(files).join(', ')}`);
  }
  const t0 = performance.now();
  await refinery.start();
  await refinery.idle();
  const seconds = (performance.now() - t0) / 1000;
  await refinery.stop();
  const states = (await queue.list({ rig: 'bench', limit: 1000 })).map((m) => m.state);
  await queue.close();
  const onMain = git(repo, 'rev-list', '--reverse', 'main').split('\n').filter(Boolean).slice(1);
  const tested = new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean));
  const untested = onMain.filter((c) => !tested.has(c)).length;
  const landed = git(repo, 'log', '--reverse', '--format=%s', 'main').split('\n').slice(1);
  let disorder = Math.abs(expected.length - landed.length);
  for (let i = 0; i < Math.min(expected.length, landed.length); i++) {
    if (landed[i] !== expected[i]) disorder++;
  }
  const result: RunResult = {
    seconds,
    untested,
    disorder,
    merged: states.filter((x) => x === 'merged').length,
    conflicts: states.filter((x) => x === 'needs-rebase').length,
    failed: states.filter((x) => x === 'needs-fix').length,
  };
  note(
    `K=${workers}${mix ? ' mix' : ''}: ${N} requests in ${round(seconds)} s: ${result.merged} merged, ` +
      `${result.conflicts} conflicts, ${result.failed} failed gates (${untested} untested, ${disorder} out of order)`,
  );
  return result;
}

const seq = await run(1, false);
const par = await run(WORKERS, false);
const mixSeq = await run(1, true);
const mixPar = await run(WORKERS, true);
const all = [seq, par, mixSeq, mixPar];
result({
  bench: 'mq',
  quick,
  mrs: N,
  gate_ms: GATE_MS,
  workers: WORKERS,
  sequential_s: round(seq.seconds),
  parallel_s: round(par.seconds),
  speedup: round(seq.seconds / par.seconds),
  mix_merged: mixPar.merged,
  mix_conflicts: mixPar.conflicts,
  mix_gate_failures: mixPar.failed,
  mix_sequential_s: round(mixSeq.seconds),
  mix_parallel_s: round(mixPar.seconds),
  mix_speedup: round(mixSeq.seconds / mixPar.seconds),
  untested_merges: all.reduce((n, r) => n + r.untested, 0),
  order_violations: all.reduce((n, r) => n + r.disorder, 0),
});
