/**
 * CLI start-up cost: agents call gc constantly (`gc hook`, `gc bead claim`,
 * `gc runtime drain-check`), so every millisecond of start-up is paid
 * thousands of times an hour.
 *
 * Times the built `gc hook --json` against a running city, called as an
 * agent calls it (its own token, GC_API in the environment, three beads
 * routed to it), against `node -e 0` in the same run: the two are
 * interleaved, one call of each per round, so machine noise hits both
 * alike. Also reports the operator's path (`gc hook --json` run in the city
 * directory with the admin key), which first finds the city and pings it.
 *
 *   npx tsx bench/cli.ts [--quick]      rounds: 60 (quick: 25)
 *
 * Needs `npm run build` (it builds when dist/ is missing).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { note, percentile, quick, result, round, scratchDir } from './lib.js';

const REPO = path.resolve(import.meta.dirname, '..');
const GC = path.join(REPO, 'dist', 'cli', 'gc.js');
const ROUNDS = quick ? 25 : 60;

if (!existsSync(GC)) {
  note('dist/ missing: building');
  execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
}

const dir = scratchDir('cli');
const city = path.join(dir, 'city');
const baseEnv: NodeJS.ProcessEnv = { ...process.env, GC_SESSION: 'subprocess' };
for (const k of ['GC_API', 'GC_TOKEN', 'GC_AGENT', 'GC_SESSION_NAME', 'GC_CITY_ROOT']) {
  delete baseEnv[k];
}

function gc(args: string[], env: NodeJS.ProcessEnv = baseEnv): string {
  return execFileSync(process.execPath, [GC, ...args], { cwd: city, env, encoding: 'utf8' });
}

/** Wall time of one process run to exit, in ms; fails loudly on a non-zero exit. */
function timed(args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

execFileSync(process.execPath, [GC, 'init', city, '--name', 'bench'], { env: baseEnv });
gc(['start']);
try {
  const reg = JSON.parse(gc(['auth', 'agent', 'register', 'bench-agent', '--json'])) as {
    token: string;
  };
  for (let i = 0; i < 3; i++) {
    gc(['bead', 'create', `task ${i}`, '--routed-to', 'bench-agent']);
  }
  const agentEnv: NodeJS.ProcessEnv = {
    ...baseEnv,
    GC_API: `unix:${path.join(city, '.gc', 'gc.sock')}`,
    GC_TOKEN: reg.token,
    GC_AGENT: 'bench-agent',
    GC_SESSION_NAME: 'bench-agent',
    GC_CITY_ROOT: city,
  };
  // The agent sees its routed work: the measurement is of a real answer.
  const hook = JSON.parse(gc(['hook', '--json'], agentEnv)) as { ready: unknown[] };
  if (hook.ready.length !== 3) throw new Error(`gc hook saw ${hook.ready.length} beads, not 3`);

  const nodeMs: number[] = [];
  const agentMs: number[] = [];
  const operatorMs: number[] = [];
  // Warm the page cache and the server before timing.
  for (let i = 0; i < 3; i++) {
    timed(['-e', '0'], baseEnv, city);
    timed([GC, 'hook', '--json'], agentEnv, city);
  }
  for (let i = 0; i < ROUNDS; i++) {
    nodeMs.push(timed(['-e', '0'], baseEnv, city));
    agentMs.push(timed([GC, 'hook', '--json'], agentEnv, city));
    operatorMs.push(timed([GC, 'hook', '--json', '--agent', 'bench-agent'], baseEnv, city));
  }
  const nodeP50 = percentile(nodeMs, 50);
  const hookP50 = percentile(agentMs, 50);
  note(
    `node -e 0 p50 ${round(nodeP50)} ms; gc hook --json (agent) p50 ${round(hookP50)} ms, ` +
      `p90 ${round(percentile(agentMs, 90))} ms; operator p50 ${round(percentile(operatorMs, 50))} ms`,
  );
  result({
    bench: 'cli',
    quick,
    rounds: ROUNDS,
    gc_hook_p50_ms: round(hookP50),
    gc_hook_p90_ms: round(percentile(agentMs, 90)),
    node_p50_ms: round(nodeP50),
    ratio: round(hookP50 / nodeP50, 3),
    operator_hook_p50_ms: round(percentile(operatorMs, 50)),
    operator_ratio: round(percentile(operatorMs, 50) / nodeP50, 3),
  });
} finally {
  try {
    gc(['stop']);
  } catch (e) {
    note(`stop failed: ${String(e)}`);
  }
}
