/**
 * `gc formula list|show` on the metro fixture: formulas from the city's
 * own folder and its packs (legacy names too, higher layers shadowing
 * lower), compiled trees with variables, and the mistakes users make.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';

let root = '';
const gc = (...args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
const json = async <T>(...args: string[]): Promise<T> => {
  const r = await gc(...args, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-formula-'));
  cpSync(path.join(REPO, 'test/fixtures/metro'), root, { recursive: true });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('gc formula', () => {
  it('list: every formula, where it comes from and what it shadows, human and --json', async () => {
    const rows = await json<{ name: string; steps: number; file: string; shadows: string[] }[]>(
      'formula',
      'list',
    );
    expect(rows.map((r) => [r.name, r.steps, r.file, r.shadows])).toEqual([
      ['patrol', 1, 'packs/ops/formulas/patrol.formula.toml', []],
      ['ship', 3, 'formulas/ship.toml', ['packs/base/formulas/ship.toml']],
    ]);
    const human = await gc('formula', 'list');
    expect(human.stdout).toMatch(/^FORMULA\s+STEPS\s+FILE/);
    expect(human.stdout).toMatch(/ship\s+3\s+formulas\/ship\.toml\s+Ship \{\{issue\}\} to/);
  });

  it('show: the compiled molecule; variables fill it and decide its conditions', async () => {
    const plain = await json<{ root: { id: string }; steps: { id: string; needs: string[] }[] }>(
      'formula',
      'show',
      'ship',
    );
    expect(plain.steps.map((s) => s.id)).toEqual([
      'ship.build',
      'ship.test',
      'ship.test.unit',
      'ship.deploy',
    ]);
    const prod = await json<{
      root: { description: string };
      steps: { id: string; title: string }[];
    }>('formula', 'show', 'ship', '--var', 'issue=gc-7', '--var', 'env=prod');
    expect(prod.root.description).toBe('Ship gc-7 to prod');
    expect(prod.steps.map((s) => s.id)).toContain('ship.test.e2e');
    expect(prod.steps.find((s) => s.id === 'ship.deploy')!.title).toBe('Deploy gc-7 to prod');
    const human = await gc('formula', 'show', 'ship', '--var', 'issue=gc-7');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.split('\n').slice(0, 4)).toEqual([
      'ship (molecule): ship',
      '  Ship gc-7 to staging',
      'Steps (4):',
      '  ship.build [task] Build gc-7',
    ]);
    expect(human.stdout).toContain('  ship.deploy [task] Deploy gc-7 to staging  needs: test');
    const loop = await json<{ steps: { id: string }[] }>('formula', 'show', 'patrol');
    expect(loop.steps.map((s) => s.id)).toEqual([
      'patrol.sweep',
      'patrol.sweep.iter1.look',
      'patrol.sweep.iter2.look',
    ]);
  });

  it('mistakes: an unknown formula, a bad --var, a missing or wrong variable, a broken file', async () => {
    const unknown = await gc('formula', 'show', 'shp');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/formula not found: shp/);
    expect(unknown.stderr).toMatch(/did you mean ship/);
    const badVar = await gc('formula', 'show', 'ship', '--var', 'issue');
    expect(badVar.code).not.toBe(0);
    expect(badVar.stderr).toMatch(/--var: expected KEY=VALUE, got "issue"/);
    const wrong = await gc('formula', 'show', 'ship', '--var', 'env=dev');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('formulas/ship.toml:4:1: vars.issue: missing variable "issue"');
    expect(wrong.stderr).toMatch(
      /formulas\/ship\.toml:5:1: vars\.env: env=dev: expected one of staging, prod/,
    );
    writeFileSync(
      path.join(root, 'formulas', 'broken.toml'),
      '[[steps]]\nid = "a"\nneeds = ["b"]\n',
    );
    const broken = await gc('formula', 'show', 'broken', '--json');
    expect(broken.code).not.toBe(0);
    const err = JSON.parse(broken.stderr) as { error: { message: string } };
    expect(err.error.message).toMatch(
      /broken\.toml:3:1: steps\[0\]\.needs\[0\]: needs "b", which is no step/,
    );
  });
});
