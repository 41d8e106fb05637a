/**
 * Pack commands: `gc <binding> <w>` runs a composed pack's
 * commands/<w>/run.sh with the arguments as given, in the caller's
 * directory, its exit status gc's; gc's own commands and typos are not
 * affected.
 */
import { cpSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';

let root = '';
const gc = (args: string[], env: Record<string, string> = {}, cwd?: string) =>
  runGc(args, { env: { GC_CONFIG_HOME: CONFIG_HOME, ...env }, ...(cwd ? { cwd } : {}) });

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-pack-cmd-'));
  cpSync(path.join(REPO, 'test/fixtures/metro'), root, { recursive: true });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('gc <binding> <command>', () => {
  it('runs the imported pack’s command with its arguments untouched, in the caller’s directory', async () => {
    const front = path.join(root, 'front');
    const r = await gc(['ops', 'report', 'one', 'two words', '$(rm -rf /)'], {}, front);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      `report in ops for metro from ${front}`,
      'arg: one',
      'arg: two words',
      'arg: $(rm -rf /)',
      '',
    ]);
  });

  it('passes the script’s exit status on; --city works; an included pack goes by its name', async () => {
    const failed = await gc(['--city', root, 'ops', 'report'], { REPORT_EXIT: '3' });
    expect(failed.code).toBe(3);
    const hello = await gc(['--city', root, 'base', 'hello']);
    expect(hello.code, hello.stderr).toBe(0);
    expect(hello.stdout).toBe('hello from base\n');
  });

  it('lists a pack’s commands; an unknown one and a typo of gc’s own are usage errors', async () => {
    const list = await gc(['--city', root, 'ops', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ pack: 'ops', binding: 'ops', commands: ['report'] });
    const human = await gc(['--city', root, 'ops']);
    expect(human.stdout).toContain('report');
    const unknown = await gc(['--city', root, 'ops', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/pack ops has no command "nope" .*; its commands: report/);
    const typo = await gc(['--city', root, 'statsu']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/Did you mean status/);
    // gc's own commands are never taken by a pack.
    const version = await gc(['--city', root, 'version']);
    expect(version.code, version.stderr).toBe(0);
  });
});
