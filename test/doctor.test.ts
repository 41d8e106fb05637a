/**
 * `gc doctor`: the checks (config, server, sessions, store, events,
 * worktrees, pack doctor scripts), their exit status, --fix, human and
 * --json forms, on a stopped city.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, gc as runGc } from './helpers/cli.js';
import { git, makeRepo } from './helpers/git.js';

let root = '';
const gc = (args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
interface Report {
  status: string;
  checks: { name: string; status: string; message: string; details?: string[] }[];
}
const report = async (...args: string[]) => {
  const r = await gc(['doctor', ...args, '--json']);
  return { code: r.code, ...(JSON.parse(r.stdout) as Report) };
};
const byName = (r: Report) => Object.fromEntries(r.checks.map((c) => [c.name, c]));

function script(file: string, body: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-doctor-'));
  const app = path.join(root, 'app');
  makeRepo(app);
  // A worktree whose folder was deleted: git calls it prunable.
  git(app, 'worktree', 'add', '-q', path.join(root, 'gone'), '-b', 'gone');
  rmSync(path.join(root, 'gone'), { recursive: true, force: true });
  writeFileSync(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "doc"\nincludes = ["packs/tools"]\n[session]\nprovider = "subprocess"\n[[rigs]]\nname = "app"\npath = "app"\n[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n',
  );
  writeFileSync(path.join(root, 'pack.toml'), '[pack]\nname = "doc"\nschema = 2\n');
  script(path.join(root, 'doctor', 'disk', 'run.sh'), 'echo "disk has room"; exit 0');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('gc doctor', () => {
  it('reports each check; warnings exit 1; --fix prunes stale worktrees', async () => {
    mkdirSync(path.join(root, 'packs', 'tools'), { recursive: true });
    writeFileSync(path.join(root, 'packs', 'tools', 'pack.toml'), '[pack]\nname = "tools"\n');
    script(
      path.join(root, 'packs', 'tools', 'doctor', 'lint', 'run.sh'),
      'echo "3 lint warnings"; echo "see lint.log"; exit 1',
    );
    const r = await report();
    expect(r.code).toBe(1);
    expect(r.status).toBe('warn');
    const c = byName(r);
    expect(c.config).toMatchObject({ status: 'ok', message: '1 agents, 1 rigs' });
    expect(c.server).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/not running/) as unknown,
    });
    expect(c.sessions?.status).toBe('ok');
    expect(c.store?.status).toBe('ok');
    expect(c.events?.status).toBe('ok');
    expect(c['worktrees:app']).toMatchObject({ status: 'warn', message: '1 stale worktrees' });
    expect(c['doc:disk']).toMatchObject({ status: 'ok', message: 'disk has room' });
    expect(c['tools:lint']).toMatchObject({
      status: 'warn',
      message: '3 lint warnings',
      details: ['see lint.log'],
    });
    const human = await gc(['doctor']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^ok {4}config: 1 agents, 1 rigs$/m);
    expect(human.stdout).toMatch(/^WARN {2}tools:lint: 3 lint warnings$/m);
    expect(human.stdout).toMatch(/fix: gc doctor --fix prunes them/);
    const fixed = await report('--fix');
    expect(byName(fixed)['worktrees:app']).toMatchObject({
      status: 'ok',
      message: '1 stale worktrees pruned',
    });
    expect(byName(await report())['worktrees:app']?.message).toBe('no stale worktrees');
  });

  it('a failing pack script and a broken city.toml are errors (exit 2), with details', async () => {
    script(path.join(root, 'doctor', 'disk', 'run.sh'), 'echo "disk full" >&2; exit 3');
    const r = await report();
    expect(r.code).toBe(2);
    expect(byName(r)['doc:disk']).toMatchObject({ status: 'error', message: 'disk full' });
    writeFileSync(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "doc"\n[[agent]]\nname = "mayor"\nmax_active_sessions = "many"\n',
    );
    const broken = await report();
    expect(broken.code).toBe(2);
    expect(broken.checks).toEqual([
      expect.objectContaining({
        name: 'config',
        status: 'error',
        details: [expect.stringMatching(/city\.toml:5:\d+: agent\[0\]\.max_active_sessions/)],
      }),
    ]);
  });
});
