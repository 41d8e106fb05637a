/**
 * `gc agent add|list|suspend|resume` and `gc rig add --include` on the metro
 * fixture (agents from city.toml, folders, included and imported packs,
 * rigs and named sessions): each edit lands where it takes effect and the
 * city still loads; the mistakes users make get errors that say how to fix them.
 */
import { cpSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';
import { makeRepo } from './helpers/git.js';

let tmp = '';
let root = '';
const gc = (args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};
interface Row {
  agent: string;
  name: string;
  rig?: string;
  suspended: boolean;
  sessions: string;
  mode: string;
}
const listed = async () => json<Row[]>(await gc(['agent', 'list', '--json']));
const row = async (agent: string) => (await listed()).find((r) => r.agent === agent);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gc-agent-cli-'));
  root = path.join(tmp, 'metro');
  cpSync(path.join(REPO, 'test/fixtures/metro'), root, { recursive: true });
  makeRepo(path.join(root, 'front'));
  makeRepo(path.join(root, 'back'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('gc agent', () => {
  it('list shows every composed agent, human and --json', async () => {
    const rows = await listed();
    expect(rows).toHaveLength(13);
    expect(rows.find((r) => r.agent === 'front/polecat')).toMatchObject({
      name: 'front--polecat',
      rig: 'front',
      sessions: '0..5',
      suspended: false,
    });
    expect(rows.find((r) => r.agent === 'back/rp.merger')?.mode).toBe('on_demand');
    const human = await gc(['agent', 'list']);
    expect(human.stdout).toMatch(/^AGENT +SESSION +RIG/);
    expect(human.stdout).toMatch(/back\/rp\.polecat +back--rp-polecat +back +0\.\.2/);
  });

  it('add creates an agent folder; a taken name, an unknown rig and a bad name are refused', async () => {
    const r = json<{ agent: string; files: string[] }>(
      await gc([
        'agent',
        'add',
        'reviewer',
        '--rig',
        'front',
        '--start-command',
        'sleep 600',
        '--json',
      ]),
    );
    expect(r.files).toEqual(['agents/reviewer/prompt.template.md', 'agents/reviewer/agent.toml']);
    expect(await row('reviewer')).toMatchObject({ name: 'reviewer', rig: 'front' });
    const again = await gc(['agent', 'add', '--name', 'reviewer']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/reviewer[\s\S]*agents\/reviewer\/agent\.toml/);
    const taken = await gc(['agent', 'add', 'deacon']);
    expect(taken.stderr).toMatch(/deacon[\s\S]*pack base/);
    const rig = await gc(['agent', 'add', 'helper', '--rig', 'frnt']);
    expect(rig.code).not.toBe(0);
    expect(rig.stderr).toMatch(/frnt[\s\S]*did you mean front/);
    const bad = await gc(['agent', 'add', 'no good']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/NAME/);
    expect((await listed()).some((x) => x.agent === 'helper')).toBe(false);
  });

  it('suspend and resume write where it takes effect, for every kind of agent', async () => {
    const cases: [string, RegExp][] = [
      ['mayor', /\(city\.toml\)/],
      ['deacon', /\(city\.toml \[\[patches\.agent\]\]\)/],
      // First the named session: suspending its template (next) suspends it too.
      ['night-watch', /\(city\.toml \[\[patches\.agent\]\]\)/],
      ['ops.watcher', /\(city\.toml \[\[patches\.agent\]\]\)/],
      ['front/polecat', /\(city\.toml \[\[rigs\.patches\]\] of rig front\)/],
      ['back/rp.refinery', /\(city\.toml \[\[rigs\.patches\]\] of rig back\)/],
      ['reviewer', /\(agents\/reviewer\/agent\.toml\)/],
    ];
    for (const [agent, where] of cases) {
      const r = await gc(['agent', 'suspend', agent]);
      expect(r.code, `${agent}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(where);
      expect((await row(agent))?.suspended, agent).toBe(true);
    }
    // Only those, and back/rp.merger (a named session of back/rp.refinery): the rest still run.
    expect(
      (await listed())
        .filter((r) => r.suspended)
        .map((r) => r.agent)
        .sort(),
    ).toEqual([...cases.map(([a]) => a), 'back/rp.merger'].sort());
    const text = readFileSync(path.join(root, 'city.toml'), 'utf8');
    expect(text).toContain('[[patches.agent]]\nname = "ops.watcher"\nsuspended = true');
    expect(text).toMatch(
      /name = "back"\npath = "back"\n\n\[rigs\.imports\.rp\]\nsource = "packs\/rigpack"\n\n\[\[rigs\.patches\]\]\nagent = "rp\.refinery"\nsuspended = true/,
    );
    const resumed = json<{ suspended: boolean; where: string }>(
      await gc(['agent', 'resume', 'back/rp.refinery', '--json']),
    );
    expect(resumed).toMatchObject({ suspended: false });
    expect((await row('back/rp.refinery'))?.suspended).toBe(false);
    expect((await gc(['agent', 'resume', 'back/rp.refinery'])).stdout).toMatch(/\(already\)/);
    const typo = await gc(['agent', 'suspend', 'front/polecta']);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/did you mean front\/polecat/);
    expect((await gc(['config', 'validate'])).code).toBe(0);
  });
});

describe('gc rig add --include', () => {
  it("stamps the pack's agents into the new rig; a folder that is not a pack is refused", async () => {
    const repo = path.join(tmp, 'side');
    makeRepo(repo);
    const added = json<{ includes: string[] }>(
      await gc(['rig', 'add', repo, '--include', 'packs/rigpack', '--json']),
    );
    expect(added.includes).toEqual(['packs/rigpack']);
    expect((await listed()).filter((r) => r.rig === 'side').map((r) => r.agent)).toEqual([
      'side/polecat',
      'side/refinery',
      'side/witness',
      'side/merger',
    ]);
    const bad = await gc(['rig', 'add', repo, '--name', 'other', '--include', 'packs/none']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--include[\s\S]*no pack at/);
    // Without --include: workspace.default_rig_includes; a plain relative path is from the city root.
    makeRepo(path.join(root, 'side2'));
    const defaulted = json<{ name: string; includes: string[] }>(
      await gc(['rig', 'add', 'side2', '--json']),
    );
    expect(defaulted).toMatchObject({ name: 'side2', includes: ['packs/rigpack'] });
    expect((await listed()).filter((r) => r.rig === 'side2')).toHaveLength(4);
    expect((await gc(['rig', 'remove', 'side2'])).code).toBe(0);
    // Its stamped agents go with it.
    const removed = await gc(['rig', 'remove', 'side']);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await listed()).some((r) => r.rig === 'side')).toBe(false);
  });
});
