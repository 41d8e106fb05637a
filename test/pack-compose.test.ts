/**
 * Pack composition through the CLI: the metro fixture (imports, includes,
 * rig stamping, patches, named sessions, [global]) shown by `gc config
 * show --json` and `gc config explain`, slinging to a stamped rig agent by
 * its Gas City name, and a git pack pinned by `gc pack fetch` that loads
 * offline afterwards.
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';
import { git, makeRepo } from './helpers/git.js';

let tmp = '';
let root = '';
const env = () => ({ GC_CONFIG_HOME: CONFIG_HOME, GC_HOME: path.join(tmp, 'gchome') });
const gc = (args: string[]) => runGc(['--city', root, ...args], { env: env() });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gc-compose-'));
  root = path.join(tmp, 'metro');
  cpSync(path.join(REPO, 'test/fixtures/metro'), root, { recursive: true });
  makeRepo(path.join(root, 'front'));
  makeRepo(path.join(root, 'back'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface ShownAgent {
  name: string;
  qualified: string;
  rig?: string;
  pack?: string;
  layers: string[];
}

describe('a city composed from packs', () => {
  it('gc config show --json lists every composed agent, its Gas City name, pack and layers', async () => {
    const shown = json<{ agents: ShownAgent[] }>(await gc(['config', 'show', '--json']));
    expect(shown.agents.map((a) => a.qualified)).toEqual([
      'mayor',
      'deacon',
      'ops.watcher',
      'ops.mayor',
      'night-watch',
      'front/polecat',
      'front/refinery',
      'front/witness',
      'front/merger',
      'back/rp.polecat',
      'back/rp.refinery',
      'back/rp.witness',
      'back/rp.merger',
    ]);
    expect(shown.agents[9]).toMatchObject({
      name: 'back--rp-polecat',
      rig: 'back',
      pack: 'rigpack',
      layers: expect.arrayContaining(['stamped into rig back']) as unknown,
    });
    const valid = await gc(['config', 'validate']);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toMatch(/valid \(13 agents, 2 rigs\)/);
  });

  it('gc config explain AGENT shows the layers and where each field came from', async () => {
    const human = await gc(['config', 'explain', 'front/polecat']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(
      /^agent front\/polecat \(session name front--polecat\) in rig front/,
    );
    expect(human.stdout).toMatch(/ {2}patch city\.toml:33\n/);
    expect(human.stdout).toMatch(/max_active_sessions += 5 {2}# .*city\.toml:35/);
    expect(human.stdout).toMatch(
      /start_command += "sleep 600" {2}# .*packs\/rigpack\/pack\.toml:8/,
    );
    expect(human.stdout).toMatch(/dir += "front" {2}# .*city\.toml:29/);
    const j = json<{ agent: string; name: string; rig: string; fields: { key: string }[] }>(
      await gc(['config', 'explain', 'back--rp-merger', '--json']),
    );
    expect(j).toMatchObject({ agent: 'back/rp.merger', name: 'back--rp-merger', rig: 'back' });
    expect(j.fields.map((f) => f.key)).toEqual(expect.arrayContaining(['mode', 'session_live']));
    const typo = await gc(['config', 'explain', 'front/polecta']);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/front\/polecta[\s\S]*did you mean front\/polecat/);
  });

  it("a pack agent's prompt renders with Gas City variables and template fragments (the city's own win), then workspace.global_fragments", async () => {
    const r = await gc(['prime', 'front/witness']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `I am front/witness in rig front (${path.join(root, 'front')}).\nWork in ${path.join(root, 'front')}; the city says: gc mail inbox\n\nthe city says: gc mail inbox\n\n`,
    );
  });

  it('gc sling routes to a stamped rig agent by its Gas City name', async () => {
    const r = json<{ created: { id: string } }>(
      await gc(['sling', 'back/rp.refinery', 'merge the queue', '--json']),
    );
    const shown = json<unknown>(await gc(['bead', 'show', r.created.id, '--json']));
    const bead = (Array.isArray(shown) ? shown[0] : shown) as { metadata: Record<string, string> };
    expect(bead.metadata['gc.routed_to']).toBe('back--rp-refinery');
    // The agent finds it by the name its prompt gives ({{.Agent}}).
    const ready = json<{ id: string }[]>(
      await gc(['bead', 'ready', '--routed-to', 'back/rp.refinery', '--json']),
    );
    expect(ready.map((b) => b.id)).toEqual([r.created.id]);
    const city = json<{ created: { id: string } }>(
      await gc(['sling', 'ops.watcher', 'watch the night', '--json']),
    );
    const b2 = json<unknown>(await gc(['bead', 'show', city.created.id, '--json']));
    expect(
      ((Array.isArray(b2) ? b2[0] : b2) as { metadata: Record<string, string> }).metadata[
        'gc.routed_to'
      ],
    ).toBe('ops-watcher');
  });
});

describe('a git pack: gc pack fetch pins and caches it, then it loads offline', () => {
  it('is refused until fetched, loads from the cache after, and --update moves the pin', async () => {
    const repo = path.join(tmp, 'upstream');
    const first = makeRepo(repo, {
      'packs/gastown/pack.toml':
        '[pack]\nname = "gastown"\nschema = 2\n[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n',
    });
    const cityToml = path.join(root, 'city.toml');
    const src = `file://${repo}//packs/gastown`;
    writeFileSync(
      cityToml,
      readFileSync(cityToml, 'utf8').replace(
        '[imports.ops]',
        `[imports.gt]\nsource = "${src}"\n\n[imports.ops]`,
      ),
    );

    const before = await gc(['config', 'show', '--json']);
    expect(before.code).not.toBe(0);
    expect(before.stderr).toContain('is not pinned in packs.lock; run `gc pack fetch`');

    const fetched = json<{ packs: { source: string; commit: string; status: string }[] }>(
      await gc(['pack', 'fetch', '--json']),
    );
    expect(fetched.packs).toEqual([
      expect.objectContaining({ source: src, commit: first, status: 'fetched' }),
    ]);
    expect(readFileSync(path.join(root, 'packs.lock'), 'utf8')).toContain(
      `[packs.${JSON.stringify(src)}]\ncommit = "${first}"`,
    );
    // A second fetch has nothing to do.
    const again = await gc(['pack', 'fetch']);
    expect(again.stdout).toMatch(/^cached +file:\/\//);

    // The upstream moves on; --update pins the new commit.
    writeFileSync(
      path.join(repo, 'packs/gastown/pack.toml'),
      '[pack]\nname = "gastown"\nschema = 2\n[[agent]]\nname = "mayor"\nstart_command = "sleep 700"\n',
    );
    git(repo, 'commit', '-q', '-am', 'second');
    const second = git(repo, 'rev-parse', 'HEAD');
    const updated = json<{ packs: { commit: string; status: string }[] }>(
      await gc(['pack', 'fetch', '--update', '--json']),
    );
    expect(updated.packs[0]).toMatchObject({ commit: second, status: 'fetched' });

    // Offline: the upstream is gone, the city still loads from the cache.
    await rm(repo, { recursive: true, force: true });
    expect(existsSync(repo)).toBe(false);
    const shown = json<{
      agents: ShownAgent[];
      config: { agent: { name: string; start_command: string }[] };
    }>(await gc(['config', 'show', '--json']));
    const gt = shown.agents.find((a) => a.qualified === 'gt.mayor');
    expect(gt).toMatchObject({ name: 'gt-mayor', pack: 'gastown' });
    expect(shown.config.agent.find((a) => a.name === 'gt-mayor')?.start_command).toBe('sleep 700');
  });
});
