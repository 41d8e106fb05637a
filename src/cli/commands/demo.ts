/**
 * `gc demo`: a working city on this machine in a couple of minutes, no LLM
 * account needed. It makes a city in a temporary directory with one rig (a
 * small git repository whose test is `node test.js`), a pool of scripted
 * coding agents (examples/agents/coder.mjs) and a merge queue with two
 * batching workers; creates M beads, some depending on others, routed to the pool;
 * starts the city and watches: agents claim beads, write code in their
 * session worktrees, commit and submit; the queue tests and merges; beads
 * close on merge and their dependents become ready. It ends with a summary
 * and the commands to look at what happened.
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import type { CityClient, RemoteCity } from '../../client/index.js';
import { GcError, ValidationError } from '../../core/index.js';
import { Git } from '../../git/index.js';
import { connectServer, type GlobalOptions } from '../context.js';
import { startServer, stopServer } from './city.js';
import { leftoverProcesses } from './demo-procs.js';

export interface DemoArgs {
  agents?: string;
  beads?: string;
  provider?: string;
  keep?: boolean;
  /** Remove the city (and the temp dir the demo made) at the end. */
  clean?: boolean;
  agent?: string;
  dir?: string;
  timeout?: string;
  workSeconds?: string;
}

/** One bead of the demo: a module the rig gains. */
export interface DemoBead {
  index: number;
  /** Module name, e.g. m07; its file is src/m07.js. */
  module: string;
  title: string;
  description: string;
  priority: number;
  /** Index of the bead whose module this one builds on. */
  requires?: number;
  /** Value of a module that builds on none. */
  value?: number;
  /**
   * The module of this bead's conflict partner: the scripted agent waits for
   * the partner's branch to exist before it submits (metadata demo.pair).
   */
  pair?: string;
}

/**
 * The demo's work, pure: M modules; every third builds on the one before
 * it (so it is blocked until that one merges). Priorities cycle 1..3.
 *
 * With `conflictPair` (two or more agents), the first two modules are a
 * pair: neighbours in src/index.js, both top priority, and each agent waits
 * until the other has branched before it submits. Both branches then start
 * before either merges, so whichever lands second conflicts: every demo of
 * two or more agents shows the queue's conflict path at least once.
 */
export function demoPlan(m: number, options: { conflictPair?: boolean } = {}): DemoBead[] {
  const width = String(Math.max(m - 1, 1)).length;
  const name = (i: number) => `m${String(i).padStart(Math.max(width, 2), '0')}`;
  return Array.from({ length: m }, (_, i) => {
    const module = name(i);
    const requires = i % 3 === 2 ? i - 1 : undefined;
    const value = requires === undefined ? i + 1 : undefined;
    const body =
      requires === undefined
        ? `module.exports = { name: '${module}', value: ${value} };`
        : `const dep = require('./${name(requires)}');\nmodule.exports = { name: '${module}', value: dep.value + 1 };`;
    return {
      index: i,
      module,
      title: `Add module ${module}`,
      description: [
        `Create src/${module}.js in the app rig with exactly this content:`,
        '',
        body,
        '',
        `and uncomment its line in src/index.js.`,
        'Commit it on a branch made from main, run `gc mq submit` in your worktree,',
        'and wait until `gc mq status <id>` says merged (the merge queue closes this bead).',
        'When it says needs-rebase, rebase on main, resolve src/index.js, submit again.',
      ].join('\n'),
      priority: 1 + (Math.floor(i / 2) % 3),
      ...(requires !== undefined ? { requires } : {}),
      ...(value !== undefined ? { value } : {}),
      ...(options.conflictPair && m >= 2 && i < 2 ? { pair: name(1 - i) } : {}),
    };
  });
}

/** What `gc demo --json` prints last. */
export interface DemoSummary {
  beads_total: number;
  beads_done: number;
  merges: number;
  conflicts: number;
  wall_s: number;
  events: number;
  /** Demo agent and server processes alive after the city stopped (-1: could not check). */
  leftover_processes: number;
}

/** Progress of a demo run, as the live line and the summary show it. */
export interface DemoProgress {
  beads_total: number;
  beads_done: number;
  /** Beads an agent gave up on (a gate failed): they need a human. */
  beads_failed: number;
  ready: number;
  mq_depth: number;
  mq_in_flight: number;
  merges: number;
  agents_running: number;
  elapsed_s: number;
}

export function progressLine(p: DemoProgress): string {
  return (
    `beads ${p.beads_done}/${p.beads_total} done, ${p.ready} ready` +
    (p.beads_failed ? `, ${p.beads_failed} FAILED` : '') +
    ' | ' +
    `merge queue ${p.mq_depth} waiting, ${p.mq_in_flight} testing, ${p.merges} merged | ` +
    `${p.agents_running} agent(s) running | ${Math.round(p.elapsed_s)}s`
  );
}

const TEST_JS = `// The app's test: every module in src/ loads, is named after its file and
// has a numeric value, and src/index.js lists exactly the modules of src/,
// in name order. A module that builds on another fails to load until that
// one has merged.
const fs = require('fs');
const path = require('path');
const dir = path.join(__dirname, 'src');
const names = [];
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'index.js').sort()) {
  const m = require(path.join(dir, f));
  const want = path.basename(f, '.js');
  if (m.name !== want) throw new Error(f + ': name is ' + m.name + ', want ' + want);
  if (!Number.isFinite(m.value)) throw new Error(f + ': value is not a number');
  names.push(want);
}
const listed = Object.keys(require('./src/index.js'));
if (listed.join() !== names.join()) {
  throw new Error('src/index.js lists ' + listed.join(', ') + '; src/ holds ' + names.join(', '));
}
console.log('ok: ' + names.length + ' module(s)');
`;

/**
 * src/index.js of the demo rig: a line per module in name order, the
 * modules not written yet commented out. Each bead uncomments its line, so
 * two beads conflict only when their modules are neighbours.
 */
export function indexJs(modules: string[], present: ReadonlySet<string>): string {
  return [
    '// Every module of src/, in name order; modules not written yet are commented out.',
    'module.exports = {',
    ...[...modules].sort().map((m) => `  ${present.has(m) ? '' : '// '}${m}: require('./${m}'),`),
    '};',
    '',
  ].join('\n');
}

const PROMPT = `You are a coding agent of the {{.Agent}} pool in the city {{.CityName}},
working in the app rig; your session name is in $GC_SESSION_NAME. Your
current directory is your own git worktree of the rig.

Loop until told to stop:
1. Run \`gc runtime drain-check\`; if it exits 0, run \`gc runtime drain-ack\` and exit.
2. Claim work: \`gc bead claim --routed-to {{.Agent}} --json\` (null means none yet: wait 5 s).
3. Read the bead's description (\`gc bead show <id>\`) and do exactly what it asks,
   on a new branch made from main's current commit
   (\`git switch -c gc/$GC_SESSION_NAME/<id> $(git rev-parse main)\`).
4. Commit, then \`gc mq submit --bead <id>\`, and wait until
   \`gc mq status <request id>\` says merged. If it says needs-rebase, rebase on
   main, resolve the conflict (in src/index.js, the line of every module that
   exists is uncommented), and submit again.
`;

async function git(cwd: string, ...args: string[]): Promise<string> {
  return new Git(cwd).run(args);
}

/** A small real repository: test.js, a base module, the index; main checked out nowhere. */
async function makeRig(dir: string, modules: string[]): Promise<void> {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  await writeFile(
    path.join(dir, 'README.md'),
    '# app\n\nThe gc demo rig: modules in src/, each `{ name, value }`, listed in src/index.js;\n`node test.js` checks them.\n',
  );
  await writeFile(path.join(dir, 'test.js'), TEST_JS);
  await writeFile(
    path.join(dir, 'src', 'base.js'),
    "module.exports = { name: 'base', value: 0 };\n",
  );
  await writeFile(
    path.join(dir, 'src', 'index.js'),
    indexJs(['base', ...modules], new Set(['base'])),
  );
  await git(dir, 'init', '--quiet', '--initial-branch=main');
  await git(dir, 'config', 'user.name', 'gc demo');
  await git(dir, 'config', 'user.email', 'demo@gc.invalid');
  await git(dir, 'config', 'commit.gpgsign', 'false');
  await git(dir, 'add', '.');
  await git(dir, 'commit', '--quiet', '-m', 'app: test.js and the base module');
  // The queue moves main itself: keep it checked out nowhere.
  await git(dir, 'checkout', '--quiet', '--detach');
}

const toml = (s: string) => JSON.stringify(s);
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function cityToml(o: {
  provider: string;
  agents: number;
  agent: string;
  coder: string;
  workSeconds: number;
}): string {
  const lines = [
    '# The gc demo city: one rig (app), a pool of coding agents, a merge queue',
    '# with two workers that test waiting requests in batches. Reference: docs/config.md',
    '[workspace]',
    'name = "demo"',
    'prefix = "demo"',
    '',
    '[session]',
    `provider = ${toml(o.provider)}`,
    '',
    '[[rigs]]',
    'name = "app"',
    'path = "app"',
    'target = "main"',
    'merge_workers = 2',
    '# Up to 8 waiting requests tested as one candidate (see docs/mq.md).',
    'merge_batch = 8',
    '[rigs.gates.test]',
    'command = "node test.js"',
    'timeout = "1m"',
    '',
    '[[agent]]',
    'name = "coder"',
    'description = "writes the modules the beads ask for"',
    'dir = "app"',
    `max_active_sessions = ${o.agents}`,
    'drain_timeout = "2m"',
  ];
  if (o.agent === 'scripted') {
    lines.push(
      `start_command = ${toml(`${sh(process.execPath)} ${sh(o.coder)}`)}`,
      `env = { GC_TARGET = "main", GC_WORK_SECONDS = "${o.workSeconds}", GC_IDLE_SECONDS = "0.5", GC_POLL_SECONDS = "0.5" }`,
    );
  } else {
    lines.push(`provider = ${toml(o.agent)}`, 'prompt_template = "prompts/coder.md"');
  }
  return lines.join('\n') + '\n';
}

function intOption(v: string | undefined, dflt: number, where: string, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ValidationError(
      `expected a whole number from 1 to ${max}, got ${JSON.stringify(v)}`,
      {
        where,
      },
    );
  }
  return n;
}

export async function demo(g: GlobalOptions, o: DemoArgs): Promise<number | void> {
  const agents = intOption(o.agents, 8, '--agents', 64);
  const m = intOption(o.beads, 30, '--beads', 1000);
  const timeoutS = intOption(o.timeout, 600, '--timeout', 86_400);
  const workSeconds = o.workSeconds === undefined ? 1 : Number(o.workSeconds);
  if (!Number.isFinite(workSeconds) || workSeconds < 0 || workSeconds > 600) {
    throw new ValidationError(`--work-seconds must be 0 to 600, not ${o.workSeconds}`, {
      where: '--work-seconds',
    });
  }
  const agent = o.agent ?? 'scripted';
  const { PRESET_NAMES, findExecutable } = await import('../../runtime/index.js');
  const onPath = async (bin: string) =>
    (await findExecutable(bin, process.env.PATH ?? '')) !== undefined;
  const provider = o.provider ?? ((await onPath('tmux')) ? 'tmux' : 'subprocess');
  if (provider !== 'tmux' && provider !== 'subprocess') {
    throw new ValidationError(`--provider must be tmux or subprocess, not ${provider}`, {
      where: '--provider',
    });
  }
  if (agent !== 'scripted') {
    const clis = PRESET_NAMES.filter((p) => p !== 'generic');
    if (!clis.includes(agent)) {
      throw new ValidationError(
        `--agent must be scripted or an agent CLI preset (${clis.join(', ')}), not ${agent}`,
        { where: '--agent' },
      );
    }
    if (!(await onPath(agent))) {
      throw new GcError('not_found', `--agent ${agent}: the ${agent} command is not on PATH`, {
        fix: `install ${agent}, or run the demo with the scripted agents (no --agent)`,
      });
    }
    if (provider !== 'tmux') {
      throw new ValidationError(
        `--agent ${agent} runs an interactive CLI: it needs --provider tmux`,
        {
          where: '--provider',
        },
      );
    }
  }
  for (const tool of ['git', ...(provider === 'tmux' ? ['tmux'] : [])]) {
    if (!(await onPath(tool))) {
      throw new GcError('not_found', `the demo needs ${tool}, which is not on PATH`, {
        fix: `install ${tool}${tool === 'tmux' ? ', or pass --provider subprocess' : ''}`,
      });
    }
  }
  const cliDir = path.dirname(realpathSync(process.argv[1]!));
  const coder = path.resolve(cliDir, '..', '..', 'examples', 'agents', 'coder.mjs');
  if (agent === 'scripted' && !existsSync(coder)) {
    throw new GcError('not_found', `the scripted agent is missing: ${coder}`, {
      fix: 'run gc from a checkout of this repository (examples/ ships with it)',
    });
  }

  // Output: a live line on a TTY, a line log otherwise; with --json, the
  // log goes to stderr and stdout holds only the summary.
  const out = g.json ? process.stderr : process.stdout;
  const live = !g.json && process.stdout.isTTY === true;
  const say = (line: string) => {
    if (live) out.write('\r\x1b[2K');
    out.write(`${line}\n`);
  };

  const base = o.dir ? path.resolve(o.dir) : mkdtempSync(path.join(tmpdir(), 'gc-demo-'));
  const root = path.join(base, 'city');
  if (existsSync(root)) {
    throw new GcError('already_exists', `${root} already exists`, {
      fix: 'pass another --dir, or remove it',
    });
  }
  const { initCity } = await import('../../config/index.js');
  await initCity({ dir: root, name: 'demo' });
  const plan = demoPlan(m, { conflictPair: agents >= 2 });
  await makeRig(
    path.join(root, 'app'),
    plan.map((b) => b.module),
  );
  if (agent !== 'scripted') {
    mkdirSync(path.join(root, 'prompts'), { recursive: true });
    await writeFile(path.join(root, 'prompts', 'coder.md'), PROMPT);
  }
  await writeFile(
    path.join(root, 'city.toml'),
    cityToml({ provider, agents, agent, coder, workSeconds }),
  );
  say(`city: ${root}`);
  say(
    `rig app: ${path.join(root, 'app')} (test: node test.js; merge queue: 2 workers, batches of up to 8)`,
  );
  const { citySpec } = await import('../../controller/index.js');
  const { loadCityConfig } = await import('../../config/index.js');
  const cap = citySpec(await loadCityConfig(path.join(root, 'city.toml'))).workspaceCap;
  say(
    agents > cap
      ? `agents: ${agents} ${agent} coder(s) asked for, at most ${cap} at once: this machine's session cap ` +
          `(${cpus().length} cores × 10, or what free memory allows; [workspace] max_active_sessions sets it); ` +
          `on ${provider}; beads: ${m}`
      : `agents: up to ${agents} ${agent} coder(s) on ${provider}; beads: ${m}`,
  );
  // The work goes in before the city starts: straight into the store, in
  // one go, instead of one API call at a time while agents start up.
  const c0 = Date.now();
  const { openLocalCity } = await import('../../client/index.js');
  const local = await openLocalCity({ root, command: 'demo', actor: 'demo' });
  let ids: string[];
  try {
    ids = await createBeads(local, plan);
  } finally {
    await local.close();
  }
  say(
    `created ${ids.length} beads routed to the coder pool in ${((Date.now() - c0) / 1000).toFixed(1)}s (every third waits for the one before)`,
  );

  const cityOpts: GlobalOptions = { city: root };
  // The demo's own city settings win over a GC_SESSION in this shell.
  delete process.env.GC_SESSION;
  const t0 = Date.now();
  const started = await startServer(cityOpts);
  say(`city started (pid ${started?.pid}); log: ${started?.log}`);
  const client = (await connectServer(cityOpts)).city;
  if (!client) throw new GcError('unavailable', 'the demo city stopped right after it started');

  let stopping: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = `interrupted (${sig})`;
    say(`${sig}: stopping the demo city`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let summary: DemoSummary | undefined;
  let failed: string | undefined;
  try {
    let lastLine = '';
    let lastLog = 0;
    const deadline = t0 + timeoutS * 1000;
    let p: DemoProgress;
    for (;;) {
      p = await progress(client, ids.length, t0);
      const line = progressLine(p);
      if (live) out.write(`\r\x1b[2K${line}`);
      else if (line.replace(/\| \d+s$/, '') !== lastLine || Date.now() - lastLog > 10_000) {
        say(line);
        lastLog = Date.now();
      }
      lastLine = line.replace(/\| \d+s$/, '');
      if (p.beads_done >= p.beads_total) break;
      if (p.beads_failed > 0 && p.beads_done + p.beads_failed >= p.beads_total) {
        failed = `${p.beads_failed} bead(s) failed their gates (see gc bead list -l demo --json: demo.failed)`;
        break;
      }
      if (stopping) break;
      if (Date.now() > deadline) {
        failed = `not done after ${timeoutS}s`;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (live) out.write('\n');
    const wall = (Date.now() - t0) / 1000;
    const conflicts = await countEvents(client, 'mq.conflicted');
    let events: number;
    if (o.keep) events = await client.latestEventSeq();
    else {
      say('stopping the city');
      await stopServer(cityOpts, 'the demo is over');
      // Counted after the stop: the log's last word is the controller stopping.
      const { openLocalCity } = await import('../../client/index.js');
      const local = await openLocalCity({ root, command: 'demo', readonly: true });
      try {
        events = await local.latestEventSeq();
      } finally {
        await local.close();
      }
    }
    // Let the last processes of stopped sessions exit before counting.
    let leftover = leftoverProcesses(root);
    for (let i = 0; i < 20 && leftover > 0 && !o.keep; i++) {
      await new Promise((r) => setTimeout(r, 250));
      leftover = leftoverProcesses(root);
    }
    summary = {
      beads_total: p.beads_total,
      beads_done: p.beads_done,
      merges: p.merges,
      conflicts,
      wall_s: Math.round(wall * 10) / 10,
      events,
      leftover_processes: leftover,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!summary && !o.keep) await stopServer(cityOpts, 'the demo failed').catch(() => undefined);
  }

  const s = summary;
  if (!o.keep) {
    // The city is stopped: its admin key goes (the next gc start makes one).
    const { adminKeyPath } = await import('../../core/index.js');
    rmSync(adminKeyPath(root), { force: true });
  }
  // Remove only what the demo made: the city, and the temp dir when it made one.
  const made = o.dir ? root : base;
  const inspect = [
    `cd ${root}`,
    'gc status                  # the city and its beads',
    'gc events --type "mq.*"    # what the merge queue did',
    'gc mq stats                # merges, latencies, failure rates',
    'gc bead list --all -l demo # the beads',
    'git -C app log --oneline main',
    ...(o.keep ? ['gc stop                    # the city is still running'] : []),
  ];
  say('');
  say(
    `${s.beads_done}/${s.beads_total} beads done, ${s.merges} merges, ${s.conflicts} conflicts, ` +
      `${s.wall_s}s, ${s.events} events recorded, ${s.leftover_processes} processes left` +
      (o.keep ? ' (city kept running)' : ''),
  );
  if (failed || stopping) say(`the demo did not finish: ${failed ?? stopping}`);
  if (o.clean && !o.keep) {
    rmSync(made, { recursive: true, force: true });
    say(`removed ${made}`);
  } else {
    say('look around:');
    for (const l of inspect) say(`  ${l}`);
    if (!o.keep) say(`when done: rm -rf ${made}   (or run the demo with --clean)`);
  }
  // One line: scripts read the last stdout line.
  if (g.json) process.stdout.write(`${JSON.stringify(s)}\n`);
  if (stopping) return 130;
  if (failed) return 1;
}

async function createBeads(client: CityClient, plan: DemoBead[]): Promise<string[]> {
  const ids: string[] = [];
  for (const b of plan) {
    const dep = b.requires !== undefined ? ids[b.requires] : undefined;
    const bead = await client.createBead({
      title: b.title,
      description: b.description,
      priority: b.priority,
      labels: ['demo'],
      metadata: {
        'gc.routed_to': 'coder',
        'demo.file': `src/${b.module}.js`,
        ...(dep ? { 'demo.requires': plan[b.requires!]!.module } : {}),
        ...(b.value !== undefined ? { 'demo.value': String(b.value) } : {}),
        ...(b.pair ? { 'demo.pair': b.pair } : {}),
      },
      ...(dep ? { needs: [dep] } : {}),
    });
    ids.push(bead.id);
  }
  return ids;
}

async function progress(client: RemoteCity, total: number, t0: number): Promise<DemoProgress> {
  const [closed, notDone, ready, stats, st] = await Promise.all([
    client.listBeads({ label: 'demo', status: 'closed', limit: 1000 }),
    client.listBeads({ label: 'demo', status: ['open', 'in_progress'], limit: 1000 }),
    client.readyBeads({ label: 'demo', limit: 1000 }),
    client.mqStats('app'),
    client.call<{ controller: { session_counts: Record<string, number> } }>('GET', '/v0/status'),
  ]);
  const rig = stats[0];
  return {
    beads_total: total,
    beads_done: closed.items.length,
    beads_failed: notDone.items.filter((b) => b.metadata['demo.failed'] !== undefined).length,
    ready: ready.items.filter((b) => b.metadata['gc.routed_to'] === 'coder').length,
    mq_depth: rig?.depth ?? 0,
    mq_in_flight: rig?.in_flight ?? 0,
    merges: rig?.merged_total ?? 0,
    agents_running: st.controller.session_counts.running ?? 0,
    elapsed_s: (Date.now() - t0) / 1000,
  };
}

async function countEvents(client: RemoteCity, type: string): Promise<number> {
  let n = 0;
  let after = 0;
  for (;;) {
    const page = await client.listEvents({ type, afterSeq: after, limit: 10_000 });
    n += page.items.length;
    if (page.next_after_seq === null) return n;
    after = page.next_after_seq;
  }
}
