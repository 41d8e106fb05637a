/**
 * `gc demo` end to end, on both session providers, with the built gc (as a
 * user runs it), and with the work store on PostgreSQL and on MariaDB
 * (GC_DATABASE_URL, each run in a fresh database): 8 scripted coding
 * agents, 30 beads with dependencies, a real git rig and the merge queue. Checks the outcome from the city's own
 * records, not from the demo's summary: every bead closed exactly once,
 * every commit on the rig's main passed the test command and was the one
 * the queue tested, the event log replays to the store's state, and no
 * process of the demo outlives it.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalCity } from '../src/client/index.js';
import { replayBeads } from '../src/city/index.js';
import type { GcEvent } from '../src/events/index.js';
import { gcBuilt } from './helpers/cli.js';
import { Scratch, database } from './helpers/db.js';

const AGENTS = 8;
const BEADS = 30;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** Processes whose command line or environment mentions `root` (Linux /proc). */
function processesOf(root: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (cmd.includes(root) || env.split('\0').includes(`GC_CITY_ROOT=${root}`)) {
        found.push(`${pid} ${cmd.replace(/\0/g, ' ')}`);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

const servers = {
  postgres: await database('postgres'),
  mysql: await database('mysql'),
};
const scratches: Scratch[] = [];
afterAll(async () => {
  for (const s of scratches) await s.dropAll();
});

const runs: { provider: 'subprocess' | 'tmux'; store: 'sqlite' | 'postgres' | 'mysql' }[] = [
  { provider: 'subprocess', store: 'sqlite' },
  { provider: 'tmux', store: 'sqlite' },
  { provider: 'subprocess', store: 'postgres' },
  { provider: 'subprocess', store: 'mysql' },
];

for (const { provider, store } of runs) {
  const server = store === 'sqlite' ? { url: '', note: '' } : servers[store];
  const label = store === 'sqlite' ? provider : `${provider}, store on ${store}`;
  describe.skipIf(store !== 'sqlite' && !server.url)(
    `gc demo (${label})${server.note}`,
    {
      timeout: 300_000,
    },
    () => {
      it(`${AGENTS} agents do ${BEADS} beads through the merge queue; the records agree`, async () => {
        const base = mkdtempSync(path.join(tmpdir(), `gc-demo-test-${provider}-`));
        dirs.push(base);
        const root = path.join(base, 'city');
        // The city's database: a fresh one on the server, named by GC_DATABASE_URL.
        let env: NodeJS.ProcessEnv | undefined;
        if (store !== 'sqlite') {
          const scratch = new Scratch(server.url!);
          scratches.push(scratch);
          env = { ...process.env, GC_DATABASE_URL: await scratch.createDatabase() };
        }
        const r = await gcBuilt(
          [
            'demo',
            '--agents',
            String(AGENTS),
            '--beads',
            String(BEADS),
            '--provider',
            provider,
            '--dir',
            base,
            '--timeout',
            '240',
            '--json',
          ],
          env ? { env } : {},
        );
        // The server's log goes with a failure: the city's folder is removed after.
        const serverLog = () => {
          const f = path.join(root, '.gc', 'server.log');
          const lines = existsSync(f) ? readFileSync(f, 'utf8').trimEnd().split('\n') : [];
          return `server.log (last 80 lines):\n${lines.slice(-80).join('\n')}`;
        };
        if (r.code !== 0) {
          throw new Error(`gc demo exited ${r.code}\n${r.stderr}\n${r.stdout}\n${serverLog()}`);
        }
        const lines = r.stdout.trim().split('\n');
        const summary = JSON.parse(lines[lines.length - 1]!) as Record<string, number>;
        expect(summary).toMatchObject({
          beads_total: BEADS,
          beads_done: BEADS,
          merges: BEADS,
          leftover_processes: 0,
        });
        expect(Object.keys(summary).sort()).toEqual(
          [
            'beads_done',
            'beads_total',
            'conflicts',
            'events',
            'leftover_processes',
            'merges',
            'wall_s',
          ].sort(),
        );

        // Nothing of the demo outlives it (checked here too, independently):
        // no process, no admin key file, no tmux socket, no session worktree,
        // no branch of a session whose work merged.
        expect(processesOf(root)).toEqual([]);
        const { adminKeyPath } = await import('../src/core/index.js');
        expect(existsSync(adminKeyPath(root))).toBe(false);
        expect(readdirSync(path.join(root, '.gc', 'worktrees', 'app')), serverLog()).toEqual([]);
        expect(git(path.join(root, 'app'), 'branch', '--list', 'gc/*')).toBe('');
        if (provider === 'tmux') {
          const { tmuxSocketFor } = await import('../src/runtime/index.js');
          const alive = (() => {
            try {
              execFileSync('tmux', ['-L', tmuxSocketFor(root), 'list-sessions'], { stdio: 'pipe' });
              return true;
            } catch {
              return false;
            }
          })();
          expect(alive).toBe(false);
          const uid = process.getuid?.() ?? 0;
          const socketFile = path.join(
            process.env.TMUX_TMPDIR ?? '/tmp',
            `tmux-${uid}`,
            tmuxSocketFor(root),
          );
          expect(existsSync(socketFile), socketFile).toBe(false);
        }

        // The city's own records, read from its files (the city is stopped).
        const city = await openLocalCity({
          root,
          command: 'test',
          readonly: true,
          ...(env ? { env } : {}),
        });
        if (store !== 'sqlite') {
          // Nothing a second server would need stays in .gc/: it is all in the database.
          const local = [
            'beads.db',
            'mq.db',
            'auth.db',
            'api.db',
            'events.jsonl',
            'sessions.json',
            'server.secret',
          ].filter((f) => existsSync(path.join(root, '.gc', f)));
          expect(local).toEqual([]);
        }
        let events: GcEvent[] = [];
        const demoBeads: {
          id: string;
          status: string;
          attempt: number;
          assignee: string;
          metadata: Record<string, string>;
        }[] = [];
        try {
          for (let after = 0; ;) {
            const page = await city.listEvents({ afterSeq: after, limit: 10_000 });
            events = events.concat(page.items);
            if (page.next_after_seq === null) break;
            after = page.next_after_seq;
          }
          const page = await city.listBeads({
            label: 'demo',
            status: ['open', 'in_progress', 'closed'],
            limit: 1000,
          });
          demoBeads.push(...page.items);
          const merged = await city.mqList({ states: ['merged'], limit: 1000 });
          expect(new Set(merged.items.map((m) => m.bead))).toEqual(
            new Set(page.items.map((b) => b.id)),
          );
        } finally {
          await city.close();
        }
        expect(summary.events).toBe(events[events.length - 1]!.seq);
        expect(demoBeads).toHaveLength(BEADS);

        // Every bead closed exactly once, by the merge queue.
        const closes = events.filter((e) => e.type === 'bead.closed');
        for (const b of demoBeads) {
          expect(b.status).toBe('closed');
          expect(b.metadata['demo.failed']).toBeUndefined();
          const mine = closes.filter((e) => e.subject === b.id);
          expect(mine, `closes of ${b.id}`).toHaveLength(1);
          expect(mine[0]!.message).toMatch(/^merged as [0-9a-f]{40}$/);
        }

        // Conflicts (two neighbouring modules in flight at once) went back to
        // their authors, who rebased, resolved and resubmitted: every conflict
        // bead is closed, and the conflicted request's bead merged anyway.
        const conflicted = events.filter((e) => e.type === 'mq.conflicted');
        expect(conflicted).toHaveLength(summary.conflicts!);
        // The workload guarantees one: m00 and m01 are a pair whose agents
        // both branch before either submits, so the second to land conflicts.
        const beadOfRequest = new Map(
          events
            .filter((e) => e.type === 'mq.submitted')
            .map((e) => [e.subject, (e.payload as { bead?: string }).bead ?? '']),
        );
        const pair = demoBeads
          .filter((b) => ['src/m00.js', 'src/m01.js'].includes(b.metadata['demo.file'] ?? ''))
          .map((b) => b.id);
        expect(pair).toHaveLength(2);
        expect(
          conflicted.filter((e) => pair.includes(beadOfRequest.get(e.subject ?? '') ?? '')),
          'a conflict of the m00/m01 pair',
        ).not.toHaveLength(0);
        const city2 = await openLocalCity({
          root,
          command: 'test',
          readonly: true,
          ...(env ? { env } : {}),
        });
        try {
          for (const e of conflicted) {
            const p = e.payload as { conflict_bead: string; files: string[] };
            expect(p.files).toEqual(['src/index.js']);
            expect((await city2.getBead(p.conflict_bead)).status).toBe('closed');
          }
        } finally {
          await city2.close();
        }

        // The event log replays to the store's final state.
        const replayed = replayBeads(events);
        for (const b of demoBeads) {
          const rb = replayed.get(b.id);
          expect({ status: rb?.status, attempt: rb?.attempt, assignee: rb?.assignee }).toEqual({
            status: b.status,
            attempt: b.attempt,
            assignee: b.assignee,
          });
        }

        // Every commit on main after the first is one the queue merged, and
        // passes the test command when checked out on its own; every position
        // main's ref took is one the queue tested (in a batch, the commits
        // before its tip are tested as part of it: docs/mq.md).
        const repo = path.join(root, 'app');
        const commits = git(repo, 'rev-list', '--first-parent', '--reverse', 'main').split('\n');
        expect(commits).toHaveLength(BEADS + 1);
        const merged = new Set(
          events
            .filter((e) => e.type === 'mq.merged')
            .map((e) => (e.payload as { sha: string }).sha),
        );
        const tested = new Set(
          events
            .filter((e) => e.type === 'mq.gated')
            .map((e) => (e.payload as { tested: string }).tested),
        );
        expect(merged.size).toBe(BEADS);
        const positions = git(repo, 'reflog', 'show', '--format=%H', 'refs/heads/main')
          .split('\n')
          .slice(0, -1);
        expect(positions.length).toBeGreaterThan(0);
        for (const p of positions) expect(tested.has(p), `${p} passed the gates`).toBe(true);
        const check = path.join(base, 'check');
        git(repo, 'worktree', 'add', '--detach', '--quiet', check, commits[0]!);
        for (const sha of commits.slice(1)) {
          expect(merged.has(sha), `${sha} merged by the queue`).toBe(true);
          git(check, 'checkout', '--detach', '--quiet', sha);
          const out = execFileSync(process.execPath, ['test.js'], { cwd: check, encoding: 'utf8' });
          expect(out).toMatch(/^ok: \d+ module\(s\)/);
        }
        // And the last one holds every module.
        expect(
          execFileSync(process.execPath, ['test.js'], { cwd: check, encoding: 'utf8' }).trim(),
        ).toBe(`ok: ${BEADS + 1} module(s)`);
      });
    },
  );
}

describe('gc demo --clean', { timeout: 180_000 }, () => {
  it('removes the temp dir it made once the summary is printed', async () => {
    const parent = mkdtempSync(path.join(tmpdir(), 'gc-demo-clean-'));
    dirs.push(parent);
    // More agents than this machine's session cap: the demo says so.
    const { hostSessionCap } = await import('../src/controller/index.js');
    const cap = hostSessionCap(512);
    const asked = Math.min(cap + 1, 64);
    const r = await gcBuilt(
      [
        'demo',
        '--agents',
        String(asked),
        '--beads',
        '3',
        '--provider',
        'subprocess',
        '--clean',
        '--json',
      ],
      { env: { TMPDIR: parent } },
    );
    if (r.code !== 0) throw new Error(`gc demo exited ${r.code}\n${r.stderr}\n${r.stdout}`);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({
      beads_done: 3,
      leftover_processes: 0,
    });
    expect(r.stdout + r.stderr).toMatch(/removed .*gc-demo-/);
    if (asked > cap) {
      expect(r.stdout + r.stderr).toMatch(
        new RegExp(`${asked} scripted coder\\(s\\) asked for, at most \\d+ at once`),
      );
    }
    expect(r.stdout + r.stderr).toMatch(/created 3 beads routed to the coder pool in [\d.]+s/);
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe('gc demo --agent claude', { timeout: 180_000 }, () => {
  // No agent CLI account here: a stand-in named claude, first on PATH, that
  // records the arguments the claude preset gives it, prints the ready
  // prompt the preset waits for, then works like the scripted coder. What
  // is tested is the demo's wiring of an agent CLI: preset, rendered prompt
  // template, tmux start and readiness, session worktrees.
  it('drives an installed agent CLI through its preset and the rendered prompt', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'gc-demo-test-cli-'));
    dirs.push(base);
    const bin = path.join(base, 'bin');
    mkdirSync(bin);
    const argsLog = path.join(base, 'args.log');
    const coder = path.join(import.meta.dirname, '..', 'examples', 'agents', 'coder.mjs');
    const script = [
      '#!/bin/sh',
      `printf '%s\\n---\\n' "$GC_SESSION_NAME $*" >> '${argsLog}'`,
      "printf '\\342\\235\\257 ready\\n'",
      `exec '${process.execPath}' '${coder}'`,
      '',
    ].join('\n');
    writeFileSync(path.join(bin, 'claude'), script, { mode: 0o755 });
    const r = await gcBuilt(
      [
        'demo',
        '--agent',
        'claude',
        '--provider',
        'tmux',
        '--agents',
        '3',
        '--beads',
        '6',
        '--dir',
        base,
        '--timeout',
        '150',
        '--json',
      ],
      { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } },
    );
    if (r.code !== 0) throw new Error(`gc demo exited ${r.code}\n${r.stderr}\n${r.stdout}`);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(summary).toMatchObject({ beads_done: 6, merges: 6, leftover_processes: 0 });
    const calls = readFileSync(argsLog, 'utf8').split('\n---\n').filter(Boolean);
    // One call of the agent CLI per session the city started, by name.
    const city = await openLocalCity({
      root: path.join(base, 'city'),
      command: 'test',
      readonly: true,
    });
    let started: string[] = [];
    try {
      const page = await city.listEvents({ type: ['session.started'], afterSeq: 0, limit: 10_000 });
      started = page.items.map((e) => e.subject ?? '');
    } finally {
      await city.close();
    }
    expect(started.filter((s) => s.startsWith('coder-')).length).toBeGreaterThanOrEqual(2);
    expect(calls.map((c) => c.split(' ')[0]).sort()).toEqual(started.sort());
    for (const call of calls) {
      // The preset's flag, then the prompt rendered from prompts/coder.md.
      expect(call).toMatch(/^coder-\d+ --dangerously-skip-permissions You are a coding agent/);
      expect(call).toContain('of the coder pool in the city demo');
      expect(call).not.toContain('{{');
    }
  });
});
