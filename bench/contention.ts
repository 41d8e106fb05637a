/**
 * Merge contention: the same work by the same scripted coders under four
 * release policies, in one run, on a rig where beads that share a registry
 * file conflict when they are in flight together.
 *
 * Workload: M beads; bead i adds its own module src/mNNN.js and sets the
 * one line of its registry src/reg-K.js (K picked by a fixed hash among
 * H = agents registries) to its name. Two beads of one registry that
 * are in flight together conflict on that line (a changed line, not an
 * addition: the queue cannot resolve it alone); beads of different
 * registries never do. Every bead declares gc.paths = its module and its
 * registry.
 *
 * Coders: A agents, in-process async loops using the same code the API
 * runs (CityOps on the city's SQLite store and event log, claim-next, the
 * refinery with its real engine). Each works in its own git worktree:
 * claims a bead, branches from the target, writes, commits, waits WORK_MS,
 * submits, waits for the verdict; on needs-rebase it rebases, resolves the
 * registry line and submits again. The gate (`node test.js`, which loads
 * every module and registry) sleeps GATE_MS first. Two merge workers.
 *
 * Policies:
 *   all_at_once     every bead ready at once, plain claim-next, no batches
 *   waves           a convoy with waves of A/3 beads (the next wave goes when
 *                   the last has merged)
 *   conflict_aware  every bead ready; claim-next holds back beads whose paths
 *                   overlap work in flight ([beads] hold_overlapping = "strict")
 *   batched         every bead ready, plain claim-next, merge_batch = 8
 *
 * Per policy: conflict_rate (conflicts per finished attempt), wall_s (first
 * claim to last merge), merges_per_h, gate_runs, merges, untested (target
 * ref positions no gate saw: must be 0), done (all beads merged).
 *
 * Quick runs the four side by side (the same load on each), the full run
 * one after another.
 *
 *   npx tsx bench/contention.ts [--quick]   30 agents, 150 beads (quick: 12, 48)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openCityState, CityOps, type CityState } from '../src/city/index.js';
import { rigSchema } from '../src/config/index.js';
import { ConvoyPatrol, claimNextAware, createConvoy } from '../src/dispatch/index.js';
import { Git } from '../src/git/index.js';
import { MergeQueue, Refinery, cityMergeHooks, type MergeRequest } from '../src/refinery/index.js';
import { git, makeRepo } from '../test/helpers/git.js';
import { fatal, note, nowMs, quick, result, round, scratchDir } from './lib.js';

const AGENTS = quick ? 12 : 30;
const BEADS = quick ? 48 : 150;
const REGISTRIES = AGENTS;
const WAVE = Math.max(2, Math.round(AGENTS / 3));
const GATE_MS = quick ? 700 : 1000;
const WORK_MS = quick ? 200 : 1000;
const BATCH = 8;
const DEADLINE_MS = quick ? 60_000 : 900_000;

type Policy = 'all_at_once' | 'waves' | 'conflict_aware' | 'batched';
const POLICIES: Policy[] = (process.env.POLICIES?.split(',') as Policy[] | undefined) ?? [
  'all_at_once',
  'waves',
  'conflict_aware',
  'batched',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mod = (i: number) => `m${String(i).padStart(3, '0')}`;
/** A bead's registry: a fixed hash, so every policy gets the same workload. */
const registryOf = (i: number) =>
  createHash('sha256').update(`bead-${i}`).digest().readUInt32BE(0) % REGISTRIES;
const regLine = (name: string) => `module.exports = { last: '${name}' };\n`;

const TEST_JS = `const fs = require('fs');
const path = require('path');
const dir = path.join(__dirname, 'src');
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.js'))) {
  const m = require(path.join(dir, f));
  if (f.startsWith('reg-') && typeof m.last !== 'string') throw new Error(f + ': no last');
  if (f.startsWith('m') && m.name !== f.slice(0, -3)) throw new Error(f + ': wrong name');
}
`;

interface PolicyResult {
  conflict_rate: number;
  wall_s: number;
  merges_per_h: number;
  gate_runs: number;
  merges: number;
  conflicts: number;
  untested: number;
  done: boolean;
  batch_size_mean: number;
  batch_splits: number;
  wasted_builds: number;
}

async function makeCity(dir: string, policy: Policy): Promise<CityState> {
  const repo = path.join(dir, 'app');
  makeRepo(repo, {
    'test.js': TEST_JS,
    ...Object.fromEntries(
      Array.from({ length: REGISTRIES }, (_, k) => [`src/reg-${k}.js`, regLine('none')]),
    ),
  });
  writeFileSync(
    path.join(dir, 'city.toml'),
    `[workspace]\nname = "contention"\n[beads]\nhold_overlapping = "${policy === 'conflict_aware' ? 'strict' : 'off'}"\n`,
  );
  return openCityState({ root: dir });
}

/** The newest request for a bead. */
async function latest(queue: MergeQueue, bead: string): Promise<MergeRequest | undefined> {
  const [r] = await queue.conn.query<{ id: string }>(
    'SELECT id FROM mr WHERE bead = ? ORDER BY seq DESC LIMIT 1',
    [bead],
  );
  return r ? queue.get(r.id) : undefined;
}

async function runPolicy(policy: Policy): Promise<PolicyResult> {
  const dir = scratchDir(`contention-${policy}`);
  const state = await makeCity(dir, policy);
  const ops = new CityOps(state.store, state.events);
  const repo = path.join(dir, 'app');
  const tested = path.join(dir, 'tested.log');
  const queue = MergeQueue.forCity(state.gcDir);
  const rig = rigSchema.parse({
    name: 'app',
    path: 'app',
    merge_workers: 2,
    merge_batch: policy === 'batched' ? BATCH : 1,
    gates: {
      test: {
        command: `sleep ${GATE_MS / 1000} && node test.js && echo "$GC_MQ_TESTED" >> ${JSON.stringify(tested)}`,
        timeout: '2m',
      },
    },
  });
  const refinery = new Refinery({
    root: dir,
    gcDir: state.gcDir,
    rigs: [rig],
    queue,
    hooks: cityMergeHooks({
      events: state.events,
      mail: undefined,
      createBead: (a, i) => ops.createBead(a, i),
      closeBead: (a, id, r) => ops.closeBead(a, id, r),
      getBead: (id) => state.store.get(id),
      setMetadata: (a, id, k, v) => ops.setMetadata(a, id, k, v),
    }),
    pollMs: 250,
  });
  const ids: string[] = [];
  for (let i = 0; i < BEADS; i++) {
    const m = mod(i);
    const reg = `src/reg-${registryOf(i)}.js`;
    const b = await ops.createBead('mayor', {
      title: `add ${m}`,
      priority: 2,
      metadata: { 'bench.module': m, 'bench.registry': reg, 'gc.paths': `src/${m}.js,${reg}` },
    });
    ids.push(b.id);
  }
  let patrol: ConvoyPatrol | undefined;
  if (policy === 'waves') {
    await createConvoy(ops, 'mayor', 'the work', ids, { waveSize: WAVE, waveTimeoutMs: 0 });
    patrol = new ConvoyPatrol(ops, (bead) => queue.hasPending(bead), note, 200);
  }
  await refinery.start();
  patrol?.start();

  const t0 = nowMs();
  let lastMerge = t0;
  const merged = new Set<string>();
  const target = 'refs/heads/main';
  const claim = (actor: string) =>
    policy === 'conflict_aware'
      ? claimNextAware(ops, actor, {}, () => queue.queuedBeads(), 'strict')
      : ops.claimNext(actor, {});

  async function coder(n: number): Promise<void> {
    const me = `coder-${n}`;
    const wtDir = path.join(dir, 'worktrees', me);
    mkdirSync(path.dirname(wtDir), { recursive: true });
    git(repo, 'worktree', 'add', '-q', '--detach', wtDir, 'main');
    const wt = new Git(wtDir);
    while (merged.size < BEADS && nowMs() - t0 < DEADLINE_MS) {
      const bead = await claim(me);
      if (!bead) {
        await sleep(100);
        continue;
      }
      const m = bead.metadata['bench.module']!;
      const reg = bead.metadata['bench.registry']!;
      const branch = `gc/${me}/${m}`;
      const base = await wt.run(['rev-parse', target]);
      await wt.run(['switch', '-q', '--force', '-C', branch, base]);
      writeFileSync(path.join(wtDir, 'src', `${m}.js`), `module.exports = { name: '${m}' };\n`);
      writeFileSync(path.join(wtDir, reg), regLine(m));
      await sleep(WORK_MS);
      await wt.run(['add', '-A']);
      await wt.run(['commit', '-q', '-m', `add ${m}`]);
      for (;;) {
        await refinery.submit(me, { rig: 'app', branch, bead: bead.id });
        let mr = (await latest(queue, bead.id))!;
        while (['queued', 'testing', 'merging'].includes(mr.state) || mr.state === 'superseded') {
          await sleep(50);
          mr = (await latest(queue, bead.id))!;
        }
        if (mr.state === 'merged') {
          merged.add(bead.id);
          lastMerge = nowMs();
          break;
        }
        if (mr.state !== 'needs-rebase')
          throw new Error(`${mr.id} ended ${mr.state}: ${mr.detail}`);
        // Rebase on the target and resolve the registry line: ours.
        const r = await wt.exec(['rebase', target]);
        if (r.code !== 0) {
          writeFileSync(path.join(wtDir, reg), regLine(m));
          await wt.run(['add', reg]);
          await wt.run(['-c', 'core.editor=true', 'rebase', '--continue']);
        }
        if (mr.conflict_bead) await ops.closeBead(me, mr.conflict_bead, 'rebased');
      }
    }
  }
  await Promise.all(Array.from({ length: AGENTS }, (_, n) => coder(n)));
  const wall = (lastMerge - t0) / 1000;
  await patrol?.stop();
  await refinery.stop();
  const stats = await queue.stats('app');
  const testedSet = new Set(readFileSync(tested, 'utf8').split('\n').filter(Boolean));
  const positions = git(repo, 'reflog', 'show', '--format=%H', target)
    .split('\n')
    .filter(Boolean)
    .slice(0, -1); // the initial commit
  const untested = positions.filter((p) => !testedSet.has(p)).length;
  const [conflictRow] = await queue.conn.query<{ n: number }>(
    `SELECT count(*) AS n FROM mr_attempts WHERE outcome = 'conflict'`,
  );
  const conflicts = Number(conflictRow?.n ?? 0);
  await queue.close();
  await state.close();
  return {
    conflict_rate: round(stats.conflict_rate, 3),
    wall_s: round(wall, 1),
    merges_per_h: Math.round((merged.size / Math.max(wall, 0.001)) * 3600),
    gate_runs: stats.gate_runs,
    merges: stats.merged_total,
    conflicts,
    untested,
    done: merged.size === BEADS,
    batch_size_mean: stats.batch_size_mean,
    batch_splits: stats.batch_splits,
    wasted_builds: stats.wasted_builds,
  };
}

async function main(): Promise<void> {
  const runs: Partial<Record<Policy, PolicyResult>> = {};
  const one = async (p: Policy) => {
    const t = nowMs();
    runs[p] = await runPolicy(p);
    note(`${p}: ${JSON.stringify(runs[p])} (${round((nowMs() - t) / 1000, 1)} s)`);
  };
  // Quick runs the policies side by side (each city has its own store,
  // repository and queue) to stay under 90 s; the full run one at a time.
  if (quick) await Promise.all(POLICIES.map(one));
  else for (const p of POLICIES) await one(p);
  const base = runs.all_at_once!;
  result({
    bench: 'contention',
    quick,
    agents: AGENTS,
    beads: BEADS,
    registries: REGISTRIES,
    wave_size: WAVE,
    batch: BATCH,
    gate_ms: GATE_MS,
    work_ms: WORK_MS,
    runs,
    waves_conflict_ratio: round(runs.waves!.conflict_rate / Math.max(base.conflict_rate, 1e-9), 2),
    conflict_aware_conflict_ratio: round(
      runs.conflict_aware!.conflict_rate / Math.max(base.conflict_rate, 1e-9),
      2,
    ),
    batched_merges_per_h_ratio: round(
      runs.batched!.merges_per_h / Math.max(base.merges_per_h, 1),
      2,
    ),
  });
}

main().then(
  () => process.exit(0),
  (e: unknown) => fatal(e),
);
