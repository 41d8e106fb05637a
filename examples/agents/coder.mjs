#!/usr/bin/env node
// A scripted coding agent for a rig. It behaves like a coding agent, through
// the gc CLI and git only, in its session worktree (its work dir):
//
//   1. wind down when drained (after the work in hand has merged);
//   2. claim the next ready bead routed to its agent;
//   3. make a branch from the rig's target, write the code the bead asks
//      for (bead metadata demo.file / demo.requires / demo.value; a real
//      agent reads the description instead), commit;
//   4. submit the branch to the merge queue and wait for the outcome; the
//      queue tests it, merges it and closes the bead;
//   5. when the queue reports a conflict (two neighbouring modules both
//      uncommented their lines of src/index.js), rebase on the target,
//      resolve the index, and submit again; when a gate fails, give the
//      bead up with a note.
//
// Each branch's base is noted on its bead (metadata demo.branched). A bead
// with demo.pair=<module> waits, before it submits, until the bead of that
// module has branched (or GC_PAIR_WAIT_SECONDS pass, default 120): the
// demo's guaranteed conflict (see demoPlan in src/cli/commands/demo.ts).
//
// Env (set by the controller): GC_AGENT, GC_SESSION_NAME, GC_RIG, GC_TOKEN.
// Optional: GC_TARGET (default main), GC_WORK_SECONDS (default 1),
// GC_IDLE_SECONDS (default 1, after a failed call), GC_POLL_SECONDS (default
// 1), GC_CLAIM_WAIT_SECONDS (default 5: how long one claim waits for work).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const me = process.env.GC_SESSION_NAME ?? 'coder';
const agent = process.env.GC_AGENT ?? me;
const target = process.env.GC_TARGET || 'main';
const seconds = (name, dflt) => Number(process.env[name] ?? dflt) * 1000;
const workMs = seconds('GC_WORK_SECONDS', 1);
const idleMs = seconds('GC_IDLE_SECONDS', 1);
const pollMs = seconds('GC_POLL_SECONDS', 1);
const pairWaitMs = seconds('GC_PAIR_WAIT_SECONDS', 120);
// How long one claim waits for work (the drain check runs between waits).
const claimWaitS = Math.max(1, Math.min(30, Number(process.env.GC_CLAIM_WAIT_SECONDS ?? 5)));

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 19)} ${me}: ${msg}`);

/** Run a command (argv, no shell); its stdout, or throw with its stderr. */
function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const gc = (...args) => run('gc', args);
const gcJson = (...args) => JSON.parse(gc(...args, '--json'));
const git = (...args) => run('git', args);

function drained() {
  return spawnSync('gc', ['runtime', 'drain-check'], { stdio: 'ignore' }).status === 0;
}

/** The code a bead asks for: a module exporting its name and value. */
function writeModule(bead) {
  const m = bead.metadata;
  const file = m['demo.file'];
  if (!file || !/^src\/[a-z0-9_-]+\.js$/.test(file))
    throw new Error(`bead ${bead.id}: no demo.file`);
  const name = path.basename(file, '.js');
  const lines = [`// ${bead.title} (${bead.id}), written by ${me}`];
  if (m['demo.requires']) {
    const dep = m['demo.requires'];
    lines.push(`const dep = require('./${dep}');`);
    lines.push(`module.exports = { name: '${name}', value: dep.value + 1 };`);
  } else {
    lines.push(`module.exports = { name: '${name}', value: ${Number(m['demo.value'] ?? 1)} };`);
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, lines.join('\n') + '\n');
  writeIndex();
  return file;
}

/**
 * src/index.js has a line per module, commented out until the module
 * exists: uncomment ours (or add it). Also how a conflict in it is resolved (both sides
 * uncommented a line): every line whose module exists is uncommented.
 */
function writeIndex() {
  const text = readFileSync('src/index.js', 'utf8');
  const names = new Set();
  for (const line of text.split('\n')) {
    const m = /^\s*(?:\/\/\s*)?([a-z0-9_-]+): require\('\.\/([a-z0-9_-]+)'\),$/.exec(line);
    if (m && m[1] === m[2]) names.add(m[1]);
  }
  // A module with no line yet gets one.
  for (const f of readdirSync('src')) {
    if (f.endsWith('.js') && f !== 'index.js') names.add(f.slice(0, -3));
  }
  const lines = [
    '// Every module of src/, in name order; modules not written yet are commented out.',
    'module.exports = {',
    ...[...names]
      .sort()
      .map((n) => `  ${existsSync(`src/${n}.js`) ? '' : '// '}${n}: require('./${n}'),`),
    '};',
    '',
  ];
  writeFileSync('src/index.js', lines.join('\n'));
}

/**
 * Rebase the branch on the target. When src/index.js is the only conflict,
 * resolve it and go on, as an agent would; anything else is given up
 * (false).
 */
function rebase() {
  try {
    git('rebase', '--quiet', `refs/heads/${target}`);
    return true;
  } catch {
    for (let step = 0; step < 50; step++) {
      const conflicted = git('diff', '--name-only', '--diff-filter=U').split('\n').filter(Boolean);
      if (conflicted.length === 0 || conflicted.some((f) => f !== 'src/index.js')) break;
      writeIndex();
      git('add', 'src/index.js');
      const r = spawnSync('git', ['rebase', '--continue'], {
        encoding: 'utf8',
        env: { ...process.env, GIT_EDITOR: 'true' },
      });
      if (r.status === 0) return true;
    }
    spawnSync('git', ['rebase', '--abort'], { stdio: 'ignore' });
    return false;
  }
}

/**
 * Wait for the merge queue's verdict on a request: one gc call the server
 * holds until the request leaves the queue, not a poll.
 */
async function outcome(id) {
  for (;;) {
    let r;
    try {
      r = gcJson('mq', 'status', id, '--wait', '--timeout', '300');
    } catch (e) {
      // Still queued after the timeout (exit 1), or the server restarting: ask again.
      log(
        `waiting for ${id}: ${
          String(e.stderr ?? e.message ?? e)
            .trim()
            .split('\n')[0]
        }`,
      );
      await sleep(pollMs);
      continue;
    }
    if (!['queued', 'testing', 'merging'].includes(r.state)) return r;
  }
}

/** Wait until the bead of module `pair` has a branch (or is done), up to pairWaitMs. */
async function awaitPair(pair) {
  const until = Date.now() + pairWaitMs;
  for (;;) {
    const [other] = gcJson(
      'bead',
      'list',
      '--all',
      '-l',
      'demo',
      '--meta',
      `demo.file=src/${pair}.js`,
    );
    if (other && (other.metadata['demo.branched'] || other.status === 'closed')) {
      log(`${pair} has branched: submitting`);
      return;
    }
    if (Date.now() > until) {
      log(`${pair} did not branch within ${pairWaitMs / 1000}s: submitting anyway`);
      return;
    }
    await sleep(pollMs);
  }
}

async function work(bead) {
  log(`working on ${bead.id}: ${bead.title}`);
  const branch = `gc/${me}/${bead.id}`;
  // Resolve the target once: `git switch -C B main` reads main twice (for
  // the files, then for the branch), and the queue may move it in between,
  // leaving a branch whose files are one commit behind its parent.
  const base = git('rev-parse', '--verify', `refs/heads/${target}^{commit}`).trim();
  git('switch', '--quiet', '--force', '-C', branch, base);
  gc('bead', 'update', bead.id, '--set-metadata', `demo.branched=${base}`);
  const file = writeModule(bead);
  await sleep(workMs);
  git('add', file, 'src/index.js');
  git('commit', '--quiet', '-m', `${bead.title}\n\nBead: ${bead.id}`);
  if (bead.metadata['demo.pair']) await awaitPair(bead.metadata['demo.pair']);
  for (let attempt = 1; ; attempt++) {
    const sub = gcJson('mq', 'submit', '--bead', bead.id);
    log(`submitted ${sub.id} (${branch})`);
    const r = await outcome(sub.id);
    if (r.state === 'merged') {
      log(`${bead.id} merged as ${r.merged_sha.slice(0, 10)}`);
      return;
    }
    if (r.state === 'needs-rebase' && attempt < 10) {
      log(`${sub.id} conflicts in ${r.detail}; rebasing on ${target}`);
      if (rebase()) {
        if (r.conflict_bead) gc('bead', 'close', r.conflict_bead, '-r', 'rebased and resubmitted');
        continue;
      }
    }
    // A gate failed (or the rebase did): a scripted agent cannot debug. It
    // gives the bead back routed to nobody, so no other agent repeats the
    // failure, and says why on the bead.
    log(`${sub.id} ended ${r.state} (${r.reason}): giving ${bead.id} up`);
    gc('bead', 'update', bead.id, '--set-metadata', `demo.failed=${r.state}: ${r.reason}`);
    gc('bead', 'update', bead.id, '--set-metadata', 'gc.routed_to=');
    gc('bead', 'unclaim', bead.id);
    return;
  }
}

log(`ready in ${process.cwd()}`);
for (;;) {
  if (drained()) {
    log('drained: winding down');
    gc('runtime', 'drain-ack');
    process.exit(0);
  }
  let bead = null;
  try {
    // The server holds the claim until work appears (up to the wait), so
    // an idle agent costs one gc call per wait, not one per poll.
    bead = gcJson('bead', 'claim', '--routed-to', agent, '--wait', String(claimWaitS));
  } catch (e) {
    log(`claim failed: ${String(e.stderr ?? e).trim()}`);
    await sleep(idleMs);
    continue;
  }
  if (!bead) continue;
  try {
    await work(bead);
  } catch (e) {
    log(`work on ${bead.id} failed: ${String(e.stderr ?? e.message ?? e).trim()}`);
    try {
      gc('bead', 'unclaim', bead.id);
    } catch {
      // the controller releases it when this session ends
    }
    await sleep(idleMs);
  }
}
