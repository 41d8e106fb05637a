/**
 * Stopping process trees with the shared reaper: many trees stopped at once
 * share their process-table scans, children are found by parent, group and
 * session, and a tree that ignores SIGTERM is killed after its grace.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { runFile, startProcess } from '../core/index.js';
import { killTree, listProcesses, pidAlive, processTree, reaperScans } from './proc.js';

/** A shell in its own process group with two sleeping children; its pid. */
async function tree(ignoreTerm = false): Promise<number> {
  const p = startProcess(
    'sh',
    ['-c', `${ignoreTerm ? "trap '' TERM; " : ''}sleep 300 & sleep 300 & wait`],
    { detached: true, stdio: 'ignore' },
  );
  const pid = await p.started;
  // Wait until both children exist.
  for (let i = 0; i < 200; i++) {
    if (processTree(pid, await listProcesses()).length >= 3) return pid;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the tree did not start');
}

describe('killTree', () => {
  it('stops 40 trees at once with a shared scan per poll, leaving nothing', async () => {
    const roots = await Promise.all(Array.from({ length: 40 }, () => tree()));
    const members = processTree(roots[0]!, await listProcesses()).map((p) => p.pid);
    const scans0 = reaperScans();
    await Promise.all(roots.map((r) => killTree(r, 5000)));
    const scans = reaperScans() - scans0;
    // One scan per poll for all 40, not 40 per poll.
    expect(scans).toBeLessThan(40);
    const left = await listProcesses();
    for (const r of roots) expect(processTree(r, left).filter((p) => p.state !== 'Z')).toEqual([]);
    for (const m of members) expect(await pidAlive(m)).toBe(false);
  });

  it('a tree that ignores SIGTERM is killed when its grace ends', async () => {
    const root = await tree(true);
    await killTree(root, 300);
    const left = processTree(root, await listProcesses()).filter((p) => p.state !== 'Z');
    expect(left).toEqual([]);
  });

  it('a tree that is already gone resolves at once', async () => {
    const root = await tree();
    await killTree(root, 1000);
    await killTree(root, 1000);
    expect(await pidAlive(root)).toBe(false);
  });
});

describe('listProcesses', () => {
  it('reads every process even when the descriptor limit is far below the process count', async () => {
    // A child with 100 descriptors lists a host with hundreds of processes
    // (40 sleepers are added so there are always more than its limit). A
    // scan that opened every /proc file at once ran out of descriptors and
    // dropped the processes it could not open as if they had exited.
    const sleepers = Array.from({ length: 40 }, () =>
      startProcess('sleep', ['300'], { stdio: 'ignore' }),
    );
    const pids = await Promise.all(sleepers.map((s) => s.started));
    try {
      const script = [
        "import { listProcesses } from './src/runtime/proc.ts';",
        'const procs = await listProcesses(true);',
        'process.stdout.write(JSON.stringify(procs.map((p) => p.pid)));',
      ].join('\n');
      const r = await runFile(
        'sh',
        [
          '-c',
          'ulimit -n 100 && exec "$0" --import tsx --input-type=module -e "$1"',
          process.execPath,
          script,
        ],
        { cwd: path.resolve(import.meta.dirname, '../..') },
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const listed = new Set(JSON.parse(r.stdout) as number[]);
      for (const pid of pids) expect(listed.has(pid)).toBe(true);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    }
  });
});
