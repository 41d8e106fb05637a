/**
 * A CI-sized fleet end to end on real tmux: a city of 200 sessions starts
 * (`gc start`, a real background server), every one runs, `gc stop` on a
 * terminal stops it and shows its progress, and nothing is left behind (no
 * session in the city's tmux server, no process naming the city in its
 * environment). Counts and states only; the timings are bench/fleet.ts's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { leftoverProcesses } from '../src/cli/commands/demo-procs.js';
import { CONFIG_HOME, gcBuilt, gcBuiltOnTty } from './helpers/cli.js';
import { until } from './helpers/wait.js';

const N = 200;
let root = '';
let running = false;
const gc = (args: string[]) => gcBuilt(['--city', root, ...args]);

afterAll(async () => {
  if (running) await gc(['stop']);
  if (root) await rm(root, { recursive: true, force: true });
});

interface Status {
  controller: { sessions: { name: string }[]; session_counts: { running?: number } };
}
const status = async (...args: string[]): Promise<Status> => {
  const r = await gc(['status', '--json', ...args]);
  if (r.code !== 0) throw new Error(`gc status: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
};

describe('a fleet of 200 tmux sessions', () => {
  it('all start, all stop, nothing is left', async () => {
    process.env.GC_CONFIG_HOME = CONFIG_HOME;
    root = await mkdtemp(path.join(os.tmpdir(), 'gc-fleet-'));
    await writeFile(
      path.join(root, 'city.toml'),
      [
        '[workspace]',
        'name = "fleet"',
        `max_active_sessions = ${N + 10}`,
        '[session]',
        'provider = "tmux"',
        '[daemon]',
        'patrol_interval = "2s"',
        `max_wakes_per_tick = ${N}`,
        'shutdown_timeout = "3s"',
        '[[agent]]',
        'name = "w"',
        // Deaf to the shutdown's interrupt: the grace runs out, so the
        // progress has a phase to show for seconds, then the rest are stopped.
        `start_command = "trap '' INT; sleep 100000"`,
        `min_active_sessions = ${N}`,
        `max_active_sessions = ${N}`,
        '',
      ].join('\n'),
    );
    const started = await gc(['start']);
    expect(started.code, started.stderr).toBe(0);
    running = true;
    await until(
      'every session to run',
      async () => (await status()).controller.session_counts.running ?? 0,
      (n) => n === N,
      240_000,
      1000,
    );
    // The check below sees the sessions' processes while they run.
    expect(leftoverProcesses(root)).toBeGreaterThanOrEqual(N);
    // Status stays bounded: counts for all, at most 100 sessions listed; --all pages them all.
    const text = await gc(['status']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${N} sessions (${N} running)`);
    expect(text.stdout).toContain(`gc status --all lists all ${N}`);
    expect(text.stdout.split('\n').length).toBeLessThan(30);
    const bounded = await status();
    expect(bounded.controller.sessions).toHaveLength(100);
    expect(bounded.controller.session_counts.running).toBe(N);
    const all = await status('--all');
    expect(new Set(all.controller.sessions.map((x) => x.name)).size).toBe(N);
    // gc stop on a terminal: the shutdown's progress, then the result.
    const stop = await gcBuiltOnTty(['--city', root, 'stop']);
    running = false;
    expect(stop.code, stop.stdout + stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(new RegExp(`stopping: .*of ${N} session\\(s\\)`));
    expect(stop.stdout).toMatch(/city stopped \(pid \d+\)/);
    await until(
      'nothing of the city to be left',
      () => leftoverProcesses(root),
      (n) => n === 0,
      30_000,
      250,
    );
  }, 300_000);
});
