import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runGate } from './gates.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('runGate', () => {
  it('tells the gate’s process group before the event loop turns, so a server killed at once still left a record', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-gate-'));
    dirs.push(dir);
    const told: number[] = [];
    const run = runGate(
      { name: 'test', command: 'echo $$ > pid', timeoutMs: 10_000 },
      dir,
      {},
      new AbortController().signal,
      (pgid) => told.push(pgid),
    );
    // No await between the start and this check: the record must already exist.
    expect(told).toHaveLength(1);
    const r = await run;
    expect(r.ok, r.tail).toBe(true);
    expect(Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim())).toBe(told[0]);
  });

  it('a command that cannot start tells nothing and fails', async () => {
    const told: number[] = [];
    const r = await runGate(
      { name: 'test', command: 'true', timeoutMs: 10_000 },
      '/nonexistent/gc-gate-dir',
      {},
      new AbortController().signal,
      (pgid) => told.push(pgid),
    );
    expect(r.ok).toBe(false);
    expect(told).toEqual([]);
  });
});
