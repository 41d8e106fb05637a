/**
 * `gc sling ... --formula`, `--on`, `gc formula cook`, auto-convoys and
 * `gc bead show ROOT` on the metro fixture (no server: the CLI opens the
 * city), human and --json, with the mistakes users make. Whatever fails
 * must leave the store as it was.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MoleculeProgress } from '../src/dispatch/index.js';
import type { Bead } from '../src/store/index.js';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';

let root = '';
const gc = (...args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
const json = async <T>(...args: string[]): Promise<T> => {
  const r = await gc(...args, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};
interface Poured {
  root: Bead;
  steps: Bead[];
  target: string | null;
  convoy?: string;
}
const total = async () =>
  (await json<Bead[]>('bead', 'list', '--all', '--all-types', '--limit', '1000')).length;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-sling-formula-'));
  cpSync(path.join(REPO, 'test/fixtures/metro'), root, { recursive: true });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('gc sling --formula and gc formula cook', () => {
  it('slings a formula: steps routed to the target, a convoy over the root, progress in bead show', async () => {
    const r = await json<Poured>(
      'sling',
      'mayor',
      'ship',
      '--formula',
      '--var',
      'issue=login',
      '--var',
      'env=prod',
    );
    expect(r.target).toBe('mayor');
    expect(r.root).toMatchObject({ issue_type: 'molecule', parent: r.convoy });
    expect(r.steps.map((s) => s.metadata['gc.step_ref'])).toEqual([
      'ship.build',
      'ship.test',
      'ship.test.unit',
      'ship.test.e2e',
      'ship.deploy',
    ]);
    const leaves = r.steps.filter((s) => s.issue_type !== 'epic');
    for (const s of leaves) expect(s.metadata['gc.routed_to']).toBe('mayor');
    const ready = await json<Bead[]>('bead', 'ready');
    expect(ready.map((b) => b.title)).toContain('Build login');
    expect(ready.map((b) => b.title)).not.toContain('Deploy login to prod');

    const shown = await json<Bead & { molecule: MoleculeProgress }>('bead', 'show', r.root.id);
    expect(shown.molecule).toMatchObject({ formula: 'ship', total: 5, closed: 0 });
    await json('bead', 'close', r.steps[0]!.id);
    const human = await gc('bead', 'show', r.root.id);
    expect(human.stdout).toMatch(/Progress: {2}1\/5 step\(s\) closed, 0 in progress/);
    expect(human.stdout).toMatch(/closed\s+-\s+build\s+-\s+Build login/);
    expect(human.stdout).toMatch(/open\s+-\s+deploy\s+test\s+Deploy login to prod/);

    const text = await gc('sling', 'mayor', 'ship', '--formula', '--var', 'issue=x', '--no-convoy');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^molecule \S+ \(ship\): 4 step\(s\), routed to mayor\n/);
    expect(text.stdout).not.toMatch(/convoy/);
  });

  it('--on: a formula poured on a bead; the bead waits for it (both argument orders)', async () => {
    const bug = await json<Bead>('bead', 'create', 'the login bug');
    // Gas City's form: the bead second, --on the formula.
    const a = await json<Poured>('sling', 'mayor', bug.id, '--on', 'ship');
    expect(a.steps[0]!.title).toBe(`Build ${bug.id}`);
    const after = await json<Bead>('bead', 'show', bug.id);
    expect(after.metadata.molecule_id).toBe(a.root.id);
    expect(after.dependencies).toContainEqual({
      issue_id: bug.id,
      depends_on_id: a.root.id,
      type: 'blocks',
    });
    // The issue's form: the formula second, --on the bead.
    const other = await json<Bead>('bead', 'create', 'the logout bug');
    const b = await json<Poured>('sling', 'mayor', 'ship', '--formula', '--on', other.id);
    expect(b.root.metadata['gc.on']).toBe(other.id);
  });

  it('cook: poured, routed nowhere, no convoy; a wisp is marked', async () => {
    const r = await json<Poured>('formula', 'cook', 'ship', '--var', 'issue=c', '--wisp', '2h');
    expect(r.target).toBeNull();
    expect(r.convoy).toBeUndefined();
    expect(r.root.labels).toEqual(['wisp']);
    expect(r.root.metadata['gc.wisp_ttl_ms']).toBe(String(2 * 3600_000));
    for (const s of r.steps) expect(s.metadata['gc.routed_to']).toBeUndefined();
    const human = await gc('formula', 'cook', 'ship', '--var', 'issue=d', '--title', 'Ship d now');
    expect(human.stdout).toMatch(/^molecule \S+ \(ship\): 4 step\(s\), cooked \(nothing routed\)/);
  });

  it('a plain sling gets its own convoy, unless --no-convoy; --owned keeps it open', async () => {
    const b = await json<Bead>('bead', 'create', 'solo work');
    const r = await json<{ bead: Bead; convoy: string }>('sling', 'mayor', b.id, '--owned');
    expect(r.bead.parent).toBe(r.convoy);
    const convoy = await json<Bead>('bead', 'show', r.convoy);
    expect(convoy).toMatchObject({ title: `sling-${b.id}`, issue_type: 'convoy' });
    expect(convoy.labels).toContain('owned');
    expect(convoy.metadata.target).toBe('mayor');
    // Slung again: it already has a parent, so no second convoy.
    const again = await json<{ convoy?: string }>('sling', 'mayor', b.id);
    expect(again.convoy).toBeUndefined();
    const c = await json<Bead>('bead', 'create', 'no convoy please');
    const plain = await gc('sling', 'mayor', c.id, '--no-convoy');
    expect(plain.stdout.trim()).toBe(`${c.id} routed to mayor`);
  });

  it('mistakes: a clear error, exit non-zero, nothing made', async () => {
    const before = await total();
    const cases: [string[], RegExp][] = [
      [['sling', 'mayor', 'shp', '--formula'], /formula not found: shp[\s\S]*did you mean ship\?/],
      [
        ['sling', 'mayor', 'ship', '--formula', '--var', 'env=dev'],
        /formulas\/ship\.toml:\d+:\d+: vars\.issue: missing variable "issue"[\s\S]*env=dev: expected one of staging, prod/,
      ],
      [['sling', 'mayor', 'ship', '--formula', '--var', 'issue'], /--var: expected KEY=VALUE/],
      [['sling', 'mayr', 'ship', '--formula', '--var', 'issue=x'], /mayr/],
      [['sling', 'mayor', 'ship', '--formula', '--on', 'metr-nope'], /metr-nope/],
      [['sling', 'mayor', 'some text', '--var', 'a=b'], /--var: only goes with --formula/],
      [['sling', 'mayor', 'some text', '--owned', '--no-convoy'], /--owned needs a convoy/],
      [
        ['formula', 'cook', 'ship', '--var', 'issue=x', '--wisp', 'soon'],
        /wisp: expected a duration/,
      ],
      [
        ['formula', 'cook', 'ship', '--var', 'issue=x', '--var', 'colour=red'],
        /unknown variable "colour"/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await gc(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(await total()).toBe(before);
  });

  it("default_sling_formula: slinging a bead pours the agent's formula on it; --no-formula routes it alone", async () => {
    const city = path.join(root, 'city.toml');
    writeFileSync(
      city,
      `${readFileSync(city, 'utf8')}\n[[agent]]\nname = "porter"\nstart_command = "sleep 600"\ndefault_sling_formula = "patrol"\n`,
    );
    const warn = await gc('config', 'validate');
    expect(warn.stderr).not.toContain('default_sling_formula');
    const bead = await json<Bead>('bead', 'create', 'carry the crates');
    const r = await json<{ bead: Bead; molecule: string; formula: string; convoy?: string }>(
      'sling',
      'porter',
      bead.id,
    );
    expect(r).toMatchObject({ formula: 'patrol', target: 'porter' });
    const mol = await json<Bead & { molecule: MoleculeProgress }>('bead', 'show', r.molecule);
    expect(mol.metadata['gc.formula']).toBe('patrol');
    expect(mol.metadata['gc.on']).toBe(bead.id);
    expect((await json<Bead>('bead', 'show', bead.id)).metadata.molecule_id).toBe(r.molecule);
    const other = await json<Bead>('bead', 'create', 'just route it');
    const human = await gc('sling', 'porter', other.id, '--no-formula');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^${other.id} routed to porter \\(convoy \\S+\\)`));
    const shown = await json<Bead>('bead', 'show', other.id);
    expect(shown.metadata['gc.routed_to']).toBe('porter');
    expect(shown.metadata.molecule_id).toBeUndefined();
    const third = await json<Bead>('bead', 'create', 'once more');
    const text = await gc('sling', 'porter', third.id);
    expect(text.stdout).toMatch(
      new RegExp(
        `^${third.id}: porter's default formula patrol poured on it as molecule \\S+, its steps routed to porter`,
      ),
    );
  });
});
