/**
 * A CI-sized fleet end to end on real tmux: a city of 200 sessions starts,
 * every one runs, the city stops, and nothing is left behind (no session in
 * the city's tmux server, no process naming the city in its environment).
 * Counts and states only; the timings are bench/fleet.ts's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/api/index.js';
import { leftoverProcesses } from '../src/cli/commands/demo-procs.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { until } from './helpers/wait.js';

const N = 200;
let root = '';
let server: CityServer | undefined;

afterAll(async () => {
  await server?.stop('test');
  if (root) await rm(root, { recursive: true, force: true });
});

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
        'shutdown_timeout = "5s"',
        '[[agent]]',
        'name = "w"',
        'start_command = "sleep 100000"',
        `min_active_sessions = ${N}`,
        `max_active_sessions = ${N}`,
        '',
      ].join('\n'),
    );
    server = await CityServer.start({ root, log: () => undefined });
    const running = () =>
      server!.controller.status().sessions.filter((s) => s.state === 'running').length;
    await until('every session to run', running, (n) => n === N, 240_000, 500);
    expect((await server.provider.listRunning('')).length).toBeGreaterThanOrEqual(N);
    // The check below sees the sessions' processes while they run.
    expect(leftoverProcesses(root)).toBeGreaterThanOrEqual(N);
    // Status stays bounded: counts for all, at most 100 sessions listed; --all pages them all.
    const gc = (args: string[]) => gcBuilt(['--city', root, ...args]);
    const text = await gc(['status']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${N} sessions (${N} running)`);
    expect(text.stdout).toContain(`gc status --all lists all ${N}`);
    expect(text.stdout.split('\n').length).toBeLessThan(30);
    const bounded = JSON.parse((await gc(['status', '--json'])).stdout) as {
      controller: { sessions: unknown[]; session_counts: { running: number } };
    };
    expect(bounded.controller.sessions).toHaveLength(100);
    expect(bounded.controller.session_counts.running).toBe(N);
    const all = JSON.parse((await gc(['status', '--all', '--json'])).stdout) as {
      controller: { sessions: { name: string }[] };
    };
    expect(new Set(all.controller.sessions.map((x) => x.name)).size).toBe(N);
    const s = server;
    server = undefined;
    await s.stop('test');
    await until(
      'nothing of the city to be left',
      () => leftoverProcesses(root),
      (n) => n === 0,
      30_000,
      250,
    );
  }, 300_000);
});
