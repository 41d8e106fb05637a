import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadCityConfig } from './load.js';

const METRO = path.resolve(import.meta.dirname, '../../test/fixtures/metro');

let root = '';
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = '';
});

function city(files: Record<string, string>): string {
  root = mkdtempSync(path.join(tmpdir(), 'gc-compose-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return path.join(root, 'city.toml');
}

async function issues(files: Record<string, string>): Promise<string[]> {
  const err = await loadCityConfig(city(files), {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return (err as ConfigError).issues.map(
    (i) => `${path.relative(root, i.file)}:${i.line ?? 0}: ${i.path}: ${i.message}`,
  );
}

const pack = (name: string, body = '') => `[pack]\nname = "${name}"\nschema = 2\n${body}`;
const agent = (name: string, extra = '') =>
  `[[agent]]\nname = "${name}"\nstart_command = "sleep 600"\n${extra}`;

describe('pack composition (REFERENCE.md 9.1) on the metro fixture', () => {
  it('composes includes, imports, rig stamping, patches, named sessions and [global] as predicted', async () => {
    const loaded = await loadCityConfig(path.join(METRO, 'city.toml'), {});
    const rows = loaded.config.agent.map((a, i) => [
      loaded.origins[i]!.qualified,
      a.name,
      a.dir ?? '',
    ]);
    expect(rows).toEqual([
      ['mayor', 'mayor', ''],
      ['deacon', 'deacon', ''],
      ['ops.watcher', 'ops-watcher', ''],
      ['ops.mayor', 'ops-mayor', ''],
      ['night-watch', 'night-watch', ''],
      ['front/polecat', 'front--polecat', 'front'],
      ['front/refinery', 'front--refinery', 'front'],
      ['front/witness', 'front--witness', 'front'],
      ['front/merger', 'front--merger', 'front'],
      ['back/rp.polecat', 'back--rp-polecat', 'back'],
      ['back/rp.refinery', 'back--rp-refinery', 'back'],
      ['back/rp.witness', 'back--rp-witness', 'back'],
      ['back/rp.merger', 'back--rp-merger', 'back'],
    ]);
    const by = (n: string) => loaded.config.agent.find((a) => a.name === n)!;
    // City patch: env merges, *_append appends; then [global] from rig pack and city.
    expect(by('deacon').env).toEqual({ LEVEL: '2', KEEP: 'yes' });
    expect(by('deacon').session_live).toEqual([
      'echo base',
      'tmux set -g status off',
      'echo city-global',
    ]);
    expect(by('mayor').session_live).toEqual(['echo city-global']);
    expect(by('front--polecat').session_live).toEqual(['echo rig-global', 'echo city-global']);
    // A rig patch reaches only its rig's copy.
    expect(by('front--polecat').max_active_sessions).toBe(5);
    expect(by('back--rp-polecat').max_active_sessions).toBe(2);
    // Named sessions: one session of the template, its pool keys dropped.
    expect(by('night-watch')).toMatchObject({ mode: 'always', start_command: 'sleep 600' });
    expect(by('back--rp-merger').mode).toBe('on_demand');
    // A pack's folder prompt resolves from the pack, relative to the city root.
    expect(by('front--witness').prompt_template).toBe(
      'packs/rigpack/agents/witness/prompt.template.md',
    );
    // Scope: rigonly (scope rig) is not a city agent; citywide (scope city) is in no rig.
    expect(loaded.config.agent.some((a) => /rigonly|citywide/.test(a.name))).toBe(false);
    // Sources: a patched key points at the patch, the rest at the pack.
    expect(loaded.sources.get('agent[1].env.LEVEL')).toMatchObject({
      file: path.join(METRO, 'city.toml'),
      line: 17,
    });
    expect(loaded.sources.get('agent[1].env.KEEP')).toMatchObject({
      file: path.join(METRO, 'packs/base/pack.toml'),
    });
    expect(loaded.origins[5]!.layers).toEqual([
      'pack rigpack (packs/rigpack/pack.toml)',
      'patch city.toml:33',
      'global packs/rigpack/pack.toml',
      'global city.toml',
      'stamped into rig front',
    ]);
    expect(loaded.warnings.map((w) => w.message)).toEqual([
      'city.toml\'s agent "mayor" shadows "ops.mayor" (both run) from pack ops; set shadow = "silent" on [imports.ops] to quiet this',
    ]);
  });
});

describe('composition mistakes say where and how to fix them', () => {
  const CITY = '[workspace]\nname = "c"\n';

  it('a missing import is fatal, a missing include is skipped with a warning', async () => {
    expect(await issues({ 'city.toml': `${CITY}[imports.x]\nsource = "packs/nope"\n` })).toEqual([
      expect.stringMatching(
        /^city\.toml:4: imports\.x\.source: cannot find pack packs\/nope: no folder .*; check the path/,
      ),
    ]);
    const loaded = await loadCityConfig(
      city({ 'city.toml': CITY.replace('"c"\n', '"c"\nincludes = ["packs/gone"]\n') }),
      {},
    );
    expect(loaded.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/^include skipped: packs\/gone: no folder/),
    ]);
  });

  it('[pack] requires: met by the whole composed city (or rig), else an error at the requirement', async () => {
    const needy = pack(
      'needy',
      '[[pack.requires]]\nagent = "mayor"\n[[pack.requires]]\nscope = "rig"\nagent = "refinery"\n',
    );
    // Unmet: no mayor in the city, no refinery in the rig.
    expect(
      await issues({
        'city.toml': `${CITY}includes = ["packs/needy"]\n[[rigs]]\nname = "r"\npath = "r"\nincludes = ["packs/needy"]\n`,
        'packs/needy/pack.toml': needy,
        'r/.keep': '',
      }),
    ).toEqual([
      expect.stringMatching(
        /^packs\/needy\/pack\.toml:5: pack\.requires\[0\]\.agent: this pack requires agent "mayor" \(scope city\), and the composed city has none; add it/,
      ),
      expect.stringMatching(
        /^packs\/needy\/pack\.toml:8: pack\.requires\[1\]\.agent: this pack requires agent "refinery" \(scope rig\)/,
      ),
    ]);
    // Met: city.toml's own mayor, and a refinery from another pack of the rig.
    const loaded = await loadCityConfig(
      city({
        'city.toml': `${CITY}includes = ["packs/needy"]\n${agent('mayor')}[[rigs]]\nname = "r"\npath = "r"\nincludes = ["packs/needy", "packs/mq"]\n`,
        'packs/needy/pack.toml': needy,
        'packs/mq/pack.toml': pack('mq', agent('refinery', 'scope = "rig"\n')),
        'r/.keep': '',
      }),
      {},
    );
    expect(loaded.config.agent.map((a) => a.name)).toContain('r--refinery');
  });

  it('a pack cycle names the chain', async () => {
    expect(
      await issues({
        'city.toml': `${CITY}[imports.a]\nsource = "packs/a"\n`,
        'packs/a/pack.toml': pack('a', '[imports.b]\nsource = "../b"\n'),
        'packs/b/pack.toml': pack('b', 'includes = ["../a"]\n'),
      }),
    ).toEqual([
      expect.stringContaining(
        'packs/b/pack.toml:4: pack.includes[0]: pack cycle: packs/a -> packs/b -> packs/a; remove one',
      ),
    ]);
  });

  it('one agent name from two packs clashes unless one side is a fallback', async () => {
    const files = {
      'city.toml': CITY.replace('"c"\n', '"c"\nincludes = ["packs/a", "packs/b"]\n'),
      'packs/a/pack.toml': pack('a', agent('worker')),
      'packs/b/pack.toml': pack('b', agent('worker')),
    };
    expect(await issues(files)).toEqual([
      expect.stringContaining(
        'agent "worker" is defined by two packs, packs/a/pack.toml (pack a) and packs/b/pack.toml (pack b); rename one',
      ),
    ]);
    const loaded = await loadCityConfig(
      city({ ...files, 'packs/a/pack.toml': pack('a', agent('worker', 'fallback = true\n')) }),
      {},
    );
    expect(loaded.config.agent.map((a) => a.name)).toEqual(['worker']);
    expect(loaded.origins[0]!.pack).toBe('b');
  });

  it('a patch must match: no such agent, a rig agent from a city patch', async () => {
    const base = {
      'packs/a/pack.toml': pack('a', agent('worker')),
      'app/.keep': '',
    };
    expect(
      await issues({
        ...base,
        'city.toml': `${CITY}[imports.a]\nsource = "packs/a"\n[[patches.agent]]\nname = "wroker"\nenv = { A = "1" }\n`,
      }),
    ).toEqual([expect.stringContaining('patches.agent[0].name: no agent "wroker" to patch')]);
    expect(
      await issues({
        ...base,
        'city.toml': `${CITY}[[rigs]]\nname = "app"\npath = "app"\nincludes = ["packs/a"]\n[[patches.agent]]\ndir = "app"\nname = "worker"\n`,
      }),
    ).toEqual([expect.stringContaining('put this patch in [[rigs.patches]] of rig "app"')]);
  });

  it('a named session needs a template that exists; a remote pack must be fetched', async () => {
    expect(
      await issues({
        'city.toml': `${CITY}[[named_session]]\ntemplate = "ghost"\nname = "s"\n`,
      }),
    ).toEqual([expect.stringContaining('no agent "ghost" for named session "s"')]);
    expect(
      await issues({
        'city.toml': `${CITY}[imports.gt]\nsource = "https://example.invalid/packs.git//gastown"\n`,
      }),
    ).toEqual([
      expect.stringContaining(
        'is not pinned in packs.lock; run `gc pack fetch` to pin and cache it',
      ),
    ]);
  });
});

describe('include = [fragments]', () => {
  const CITY = '[workspace]\nname = "c"\n';

  it('adds the fragments’ agents as city.toml’s own: after its inline ones, over a pack’s, at their own file and line', async () => {
    const loaded = await loadCityConfig(
      city({
        'city.toml': `include = ["more/agents.toml"]\n${CITY}includes = ["packs/p"]\n${agent('mayor')}`,
        'more/agents.toml': `${agent('coder', 'max_active_sessions = 3\n')}${agent('deacon', 'env = { FROM = "fragment" }\n')}`,
        'packs/p/pack.toml': pack('p', agent('deacon', 'env = { FROM = "pack" }\n')),
      }),
      {},
    );
    expect(loaded.config.agent.map((a) => a.name)).toEqual(['mayor', 'coder', 'deacon']);
    expect(loaded.config.agent[2]!.env).toEqual({ FROM: 'fragment' });
    expect(loaded.origins.map((o) => o.layers[0])).toEqual([
      'city.toml',
      'more/agents.toml',
      'more/agents.toml',
    ]);
    // A mistake in a fragment is reported there.
    expect(
      await issues({
        'city.toml': `include = ["agents.toml"]\n${CITY}`,
        'agents.toml': `${agent('a')}${agent('b', 'max_active_sessions = "many"\n')}`,
      }),
    ).toEqual([
      expect.stringMatching(/^agents\.toml:7: agent\[1\]\.max_active_sessions: expected a number/),
    ]);
  });

  it('a missing fragment, a syntax error, or a key other than [[agent]] says where and what to do', async () => {
    expect(await issues({ 'city.toml': `include = ["gone.toml"]\n${CITY}` })).toEqual([
      expect.stringMatching(
        /^city\.toml:1: include\[0\]: cannot read fragment gone\.toml: ENOENT; fix the path/,
      ),
    ]);
    expect(
      await issues({ 'city.toml': `include = ["bad.toml"]\n${CITY}`, 'bad.toml': '[[agent]\n' }),
    ).toEqual([expect.stringMatching(/^bad\.toml:1: : TOML syntax error/)]);
    expect(
      await issues({
        'city.toml': `include = ["rigs.toml"]\n${CITY}`,
        'rigs.toml': `${agent('a')}[[rigs]]\nname = "r"\npath = "r"\n`,
      }),
    ).toEqual([
      expect.stringMatching(
        /^rigs\.toml:4: rigs\[0\]: a fragment holds \[\[agent\]\] tables only in this build; move rigs to city\.toml/,
      ),
    ]);
  });
});

describe('agent folders', () => {
  it("an agent folder's namepool.txt is its namepool unless agent.toml names one (from the pack folder)", async () => {
    const loaded = await loadCityConfig(
      city({
        'city.toml': '[workspace]\nname = "c"\nincludes = ["packs/p"]\n',
        'packs/p/pack.toml': pack('p'),
        'packs/p/agents/polecat/agent.toml': 'start_command = "x"\nmax_active_sessions = 2\n',
        'packs/p/agents/polecat/namepool.txt': 'Toast\n',
        'packs/p/agents/rictus/agent.toml': 'start_command = "x"\nnamepool = "mine.txt"\n',
        'packs/p/agents/rictus/namepool.txt': 'Other\n',
      }),
      {},
    );
    expect(loaded.config.agent.map((a) => [a.name, a.namepool])).toEqual([
      ['polecat', 'packs/p/agents/polecat/namepool.txt'],
      ['rictus', 'packs/p/mine.txt'],
    ]);
    expect(loaded.warnings).toEqual([]);
  });
});
