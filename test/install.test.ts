/**
 * The install path the README gives: `npm pack`, then `npm install -g` of
 * the tarball into a fresh prefix. The installed gc answers --version and
 * runs a small demo from there (its own node_modules, its own examples).
 * Slow (better-sqlite3 builds from source), so it runs alone in its file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';

const run = promisify(execFile);
const work = mkdtempSync(path.join(tmpdir(), 'gc-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack, then npm install -g into a fresh prefix', { timeout: 900_000 }, () => {
  it('installs a gc that answers --version and runs the demo', async () => {
    const version = (
      JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const env = { ...process.env, npm_config_nodedir: '/usr', npm_config_fund: 'false' };
    // dist/ is already built (the test setup): packing must not rebuild it
    // under the other test files that use it.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], {
      cwd: REPO,
      env,
    });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBe(`gascity-ts-${version}.tgz`);
    const prefix = path.join(work, 'prefix');
    await run(
      'npm',
      [
        'install',
        '-g',
        '--allow-scripts=better-sqlite3',
        '--no-audit',
        '--prefix',
        prefix,
        path.join(work, tarball!),
      ],
      { cwd: work, env, maxBuffer: 16 * 1024 * 1024 },
    );
    const gc = path.join(prefix, 'bin', 'gc');
    expect((await run(gc, ['--version'], { env })).stdout.trim()).toBe(version);
    const demo = await run(
      gc,
      ['demo', '--agents', '2', '--beads', '3', '--provider', 'subprocess', '--clean', '--json'],
      { cwd: work, env: { ...env, TMPDIR: work }, maxBuffer: 16 * 1024 * 1024 },
    );
    const summary = JSON.parse(demo.stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(summary).toMatchObject({ beads_total: 3, beads_done: 3, leftover_processes: 0 });
  });
});
