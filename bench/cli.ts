/**
 * CLI start-up cost: agents call gc constantly (`gc hook`, `gc bead claim`,
 * `gc runtime drain-check`), so every millisecond of start-up is paid
 * thousands of times an hour.
 *
 * Times the built `gc hook --json` against a running city, called as an
 * agent calls it (through the city's gc shim, with its own token, GC_API
 * in the environment, three beads routed to it), against `node -e 0` in the same run: the two are
 * interleaved, one call of each per round, so machine noise hits both
 * alike. Also reports the operator's path (`gc hook --json` run in the city
 * directory with the admin key), which first finds the city and pings it.
 * Then the CPU time of a call (user + system), in gc and in the server,
 * which is what a fleet of agents calling gc costs the machine.
 *
 *   npx tsx bench/cli.ts [--quick]      rounds: 60 (quick: 25)
 *
 * Needs `npm run build` (it builds when dist/ is missing).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { note, percentile, quick, result, round, scratchDir } from './lib.js';

const REPO = path.resolve(import.meta.dirname, '..');
const GC = path.join(REPO, 'dist', 'cli', 'gc.js');
const ROUNDS = quick ? 25 : 60;
/** Calls per CPU measurement (CPU time is counted in 10 ms ticks: many calls average it). */
const CPU_CALLS = quick ? 40 : 100;

if (!existsSync(GC)) {
  note('dist/ missing: building');
  execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
}

const dir = scratchDir('cli');
const city = path.join(dir, 'city');
/** `gc` as agents run it: the shim the city puts first on their PATH. */
const SHIM = 'shim';
const shim = path.join(city, '.gc', 'bin', 'gc');
const baseEnv: NodeJS.ProcessEnv = { ...process.env, GC_SESSION: 'subprocess' };
for (const k of ['GC_API', 'GC_TOKEN', 'GC_AGENT', 'GC_SESSION_NAME', 'GC_CITY_ROOT']) {
  delete baseEnv[k];
}

function gc(args: string[], env: NodeJS.ProcessEnv = baseEnv): string {
  return execFileSync(process.execPath, [GC, ...args], { cwd: city, env, encoding: 'utf8' });
}

const TICK_MS = 1000 / 100; // USER_HZ: /proc reports CPU time in 1/100 s

/** CPU time (user + system, ms) of a process, or of the children it waited for. */
function cpuMs(pid: number | 'self', children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: utime=11, stime=12, cutime=13, cstime=14 (0-based here).
  return (children ? Number(f[13]) + Number(f[14]) : Number(f[11]) + Number(f[12])) * TICK_MS;
}

/**
 * Wall time of one process run to exit, in ms; fails loudly on a non-zero
 * exit. `node ...args`, or the city's gc shim when args start with SHIM.
 */
function timed(args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const [file, rest] = args[0] === SHIM ? [shim, args.slice(1)] : [process.execPath, args];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, rest, { cwd, env, encoding: 'utf8' });
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
    timed([SHIM, 'hook', '--json'], agentEnv, city);
  }
  for (let i = 0; i < ROUNDS; i++) {
    nodeMs.push(timed(['-e', '0'], baseEnv, city));
    agentMs.push(timed([SHIM, 'hook', '--json'], agentEnv, city));
    operatorMs.push(timed([GC, 'hook', '--json', '--agent', 'bench-agent'], baseEnv, city));
  }
  // CPU, not wall time, is what a fleet's calls cost the box: the agent's
  // gc process, and the server's share of answering it.
  const server = (
    JSON.parse(readFileSync(path.join(city, '.gc', 'city.lock'), 'utf8')) as {
      pid: number;
    }
  ).pid;
  const cpu = (args: string[], env: NodeJS.ProcessEnv) => {
    const c0 = cpuMs('self', true);
    const s0 = cpuMs(server);
    for (let i = 0; i < CPU_CALLS; i++) timed(args, env, city);
    return {
      client: (cpuMs('self', true) - c0) / CPU_CALLS,
      server: (cpuMs(server) - s0) / CPU_CALLS,
    };
  };
  const nodeCpu = cpu(['-e', '0'], baseEnv);
  const hookCpu = cpu([SHIM, 'hook', '--json'], agentEnv);
  note(
    `CPU per call: node -e 0 ${round(nodeCpu.client)} ms; gc hook ${round(hookCpu.client)} ms ` +
      `in gc + ${round(hookCpu.server)} ms in the server`,
  );
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
    cpu_calls: CPU_CALLS,
    // Node parses these at every start; the shim drops them for hook calls.
    node_extra_ca_certs: Boolean(process.env.NODE_EXTRA_CA_CERTS),
    node_cpu_ms: round(nodeCpu.client),
    hook_cpu_ms: round(hookCpu.client),
    hook_server_cpu_ms: round(hookCpu.server),
    // A fleet calling gc hook every 30 s: cores busy per 1,000 agents.
    cores_per_1000_agents: round(((hookCpu.client + hookCpu.server) * (1000 / 30)) / 1000, 2),
  });
} finally {
  try {
    gc(['stop']);
  } catch (e) {
    note(`stop failed: ${String(e)}`);
  }
}
