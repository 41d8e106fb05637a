/**
 * Spawning never kills the server: with no file descriptors left, every way
 * gc starts a program fails with an error its caller handles, and the
 * process lives on. And no code in src spawns except through core/spawn.ts.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, TSX } from '../helpers/cli.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return sources(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.test.ts') ? [p] : [];
  });
}

describe('spawning', () => {
  it('only core/spawn.ts imports node:child_process in src', () => {
    const offenders = sources(path.join(REPO, 'src'))
      .filter((f) => /['"](node:)?child_process['"]/.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(REPO, f));
    expect(offenders).toEqual(['src/core/spawn.ts']);
  });

  it('with every fd in use, spawns fail cleanly and the process survives', () => {
    const script = path.join(REPO, 'test/hostile/fixtures/emfile.ts');
    // Soft and hard limit both, so node cannot raise it again.
    const r = spawnSync(
      '/bin/sh',
      ['-c', 'ulimit -n 256 && exec "$0" --import "$1" "$2"', process.execPath, TSX, script],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.stderr).not.toMatch(/Unhandled|uncaught/i);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      held: number;
      results: Record<string, string>;
      after: number;
    };
    expect(out.held).toBeGreaterThan(50);
    // Each attempt failed with EMFILE (or similar), none crashed.
    for (const [name, v] of Object.entries(out.results)) {
      expect(v, name).not.toBe('ran');
    }
    expect(out.after).toBe(0);
  });
});
