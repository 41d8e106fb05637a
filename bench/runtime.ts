/**
 * Session runtime at fleet size (tmux): one batched `snapshot` per tick
 * versus probing each session with its own is-running + last-activity calls
 * (what a per-session controller loop costs), in the same run on the same
 * live sessions. Also reports what a session start costs.
 *
 *   npx tsx bench/runtime.ts [--quick]
 */
import { TmuxProvider } from '../src/runtime/index.js';
import { note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const SESSIONS = quick ? 100 : 200;
const SNAPSHOT_ROUNDS = quick ? 15 : 30;
const BASELINE_ROUNDS = quick ? 2 : 3;
const START_CONCURRENCY = 8;

const dir = scratchDir('runtime');
const tmux = new TmuxProvider({
  socket: `gc-bench-${process.pid}`,
  stateDir: dir,
  stopGraceMs: 200,
});
const names = Array.from({ length: SESSIONS }, (_, i) => `w-${String(i).padStart(4, '0')}`);

async function cleanup(): Promise<void> {
  await tmux.killServer().catch(() => undefined);
}
process.on('SIGINT', () => {
  cleanup()
    .catch(() => undefined)
    .finally(() => process.exit(130));
});

try {
  // Start cost: sequential (latency of one start) and bounded-parallel (fleet fill).
  const sequential = names.slice(0, 20);
  const t0 = nowMs();
  for (const n of sequential) await tmux.start(n, { command: 'sleep 3600', work_dir: dir });
  const startSeqMs = (nowMs() - t0) / sequential.length;
  const rest = names.slice(sequential.length);
  const t1 = nowMs();
  for (let i = 0; i < rest.length; i += START_CONCURRENCY) {
    await Promise.all(
      rest
        .slice(i, i + START_CONCURRENCY)
        .map((n) => tmux.start(n, { command: 'sleep 3600', work_dir: dir })),
    );
  }
  const startParMs = (nowMs() - t1) / Math.max(1, rest.length);
  note(
    `started ${SESSIONS} sessions: ${round(startSeqMs)} ms each sequential, ${round(startParMs)} ms each at concurrency ${START_CONCURRENCY}`,
  );

  const snapMs: number[] = [];
  let snapshotSubprocesses = 0;
  for (let r = 0; r < SNAPSHOT_ROUNDS; r++) {
    const before = tmux.subprocesses;
    const s0 = nowMs();
    const snap = await tmux.snapshot('w-');
    snapMs.push(nowMs() - s0);
    snapshotSubprocesses = tmux.subprocesses - before;
    const live = snap.filter((s) => s.alive).length;
    if (live !== SESSIONS)
      throw new Error(`snapshot saw ${live} live sessions, expected ${SESSIONS}`);
  }

  const baselineMs: number[] = [];
  let baselineSubprocesses = 0;
  for (let r = 0; r < BASELINE_ROUNDS; r++) {
    const before = tmux.subprocesses;
    const b0 = nowMs();
    let live = 0;
    for (const n of names) {
      if (await tmux.isRunning(n)) live++;
      await tmux.getLastActivity(n);
    }
    baselineMs.push(nowMs() - b0);
    baselineSubprocesses = tmux.subprocesses - before;
    if (live !== SESSIONS)
      throw new Error(`probes saw ${live} live sessions, expected ${SESSIONS}`);
  }

  const snapP50 = percentile(snapMs, 50);
  const baseP50 = percentile(baselineMs, 50);
  note(
    `snapshot p50 ${round(snapP50)} ms (${snapshotSubprocesses} subprocess); per-session probes ${round(baseP50)} ms (${baselineSubprocesses} subprocesses)`,
  );
  await cleanup();
  result({
    bench: 'runtime',
    quick,
    provider: 'tmux',
    sessions: SESSIONS,
    snapshot_ms_p50: round(snapP50),
    per_session_probe_ms_total: round(baseP50),
    speedup: round(baseP50 / snapP50, 1),
    snapshot_subprocesses: snapshotSubprocesses,
    probe_subprocesses: baselineSubprocesses,
    start_ms_per_session: round(startSeqMs),
    start_ms_per_session_parallel: round(startParMs),
  });
} catch (e) {
  await cleanup();
  throw e;
}
