import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadCityConfig } from './load.js';

let root = '';
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = '';
});

function city(files: Record<string, string>): string {
  root = mkdtempSync(path.join(tmpdir(), 'gc-pack-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return path.join(root, 'city.toml');
}

const CITY = '[workspace]\nname = "packed"\n[[agent]]\nname = "mayor"\nstart_command = "sleep 1"\n';

describe("the city's own pack: pack.toml agents and agents/ folders", () => {
  it('composes city.toml > pack.toml > agents/ by name, with prompts and sources', async () => {
    const file = city({
      'city.toml': CITY,
      'pack.toml': [
        '[pack]',
        'name = "packed"',
        'schema = 2',
        '[orders]',
        'x = 1',
        '[[agent]]',
        'name = "reviewer"',
        'start_command = "sleep 2"',
        '[[agent]]',
        'name = "mayor"',
        'start_command = "pack mayor"',
        '',
      ].join('\n'),
      'agents/coder/agent.toml': 'start_command = "sleep 3"\nmax_active_sessions = 3\n',
      'agents/coder/prompt.template.md': 'You code.\n',
      'agents/tester/prompt.md': 'You test.\n',
      'agents/reviewer/prompt.template.md': 'not used: pack.toml defines reviewer\n',
      'agents/mayor/prompt.template.md': 'not used: city.toml defines mayor\n',
      'agents/_draft/agent.toml': 'start_command = "x"\n',
      'agents/.hidden/agent.toml': 'start_command = "x"\n',
      'agents/coder/overlay/x.txt': 'x',
    });
    const loaded = await loadCityConfig(file, {});
    const agents = loaded.config.agent;
    expect(agents.map((a) => a.name)).toEqual(['mayor', 'reviewer', 'coder', 'tester']);
    expect(agents[0]!.start_command).toBe('sleep 1');
    expect(agents[1]!.prompt_template).toBeUndefined();
    expect(agents[2]).toMatchObject({
      start_command: 'sleep 3',
      max_active_sessions: 3,
      prompt_template: 'agents/coder/prompt.template.md',
    });
    expect(agents[3]!.prompt_template).toBe('agents/tester/prompt.md');
    // A folder's overlay/ is its overlay_dir.
    expect(agents[2]!.overlay_dir).toBe('agents/coder/overlay');
    expect(agents[3]!.overlay_dir).toBeUndefined();
    const coderToml = path.join(root, 'agents', 'coder', 'agent.toml');
    expect(loaded.sources.get('agent[2].max_active_sessions')).toEqual({
      kind: 'file',
      file: coderToml,
      line: 2,
      col: 1,
    });
    expect(loaded.sources.get('agent[1].start_command')).toMatchObject({
      file: path.join(root, 'pack.toml'),
      line: 8,
    });
    expect(loaded.sources.get('agent[3].name')).toMatchObject({
      file: path.join(root, 'agents', 'tester'),
    });
    const warnings = loaded.warnings.map((w) => `${path.relative(root, w.file)}: ${w.message}`);
    expect(warnings).toEqual(
      expect.arrayContaining([
        'pack.toml: accepted, not supported in this build: [orders] in a pack',
        `pack.toml: agent "mayor" is also in city.toml; city.toml's wins`,
      ]),
    );
  });

  it('mistakes say which file and where: bad types, unknown keys, a renamed folder, no pack name, bad TOML', async () => {
    const bad = async (files: Record<string, string>) => {
      const err = await loadCityConfig(city({ 'city.toml': CITY, ...files }), {}).catch(
        (e: unknown) => e,
      );
      rmSync(root, { recursive: true, force: true });
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).issues.map((i) => ({ ...i, file: path.basename(i.file) }));
    };
    expect(
      await bad({
        'agents/coder/agent.toml': 'start_command = "x"\nmax_active_sessions = "many"\n',
      }),
    ).toEqual([
      expect.objectContaining({ file: 'agent.toml', path: 'max_active_sessions', line: 2 }),
    ]);
    expect(await bad({ 'agents/coder/agent.toml': 'name = "other"\n' })).toEqual([
      expect.objectContaining({
        file: 'agent.toml',
        path: 'name',
        message: expect.stringMatching(/differs from its folder "coder"/) as unknown,
      }),
    ]);
    expect(await bad({ 'pack.toml': '[pack]\nschema = 2\n' })).toEqual([
      expect.objectContaining({ file: 'pack.toml', message: 'a pack needs [pack] name' }),
    ]);
    expect(await bad({ 'pack.toml': '[pack]\nname = "x"\nschema = 9\n' })).toEqual([
      expect.objectContaining({ file: 'pack.toml', path: 'pack.schema', line: 3 }),
    ]);
    expect(await bad({ 'pack.toml': '[pack\nname = "x"\n' })).toEqual([
      expect.objectContaining({
        file: 'pack.toml',
        line: 1,
        message: expect.stringMatching(/TOML syntax error/) as unknown,
      }),
    ]);
    expect(
      await bad({
        'pack.toml': '[pack]\nname = "x"\n[[agent]]\nname = "mayor2"\ndepends_on = ["nobody"]\n',
      }),
    ).toEqual([
      expect.objectContaining({ file: 'pack.toml', path: 'agent[0].depends_on[0]', line: 5 }),
    ]);
    const loaded = await loadCityConfig(
      city({ 'city.toml': CITY, 'agents/coder/agent.toml': 'start_comand = "x"\n' }),
      {},
    );
    expect(loaded.warnings).toEqual([
      expect.objectContaining({
        file: path.join(root, 'agents', 'coder', 'agent.toml'),
        path: 'start_comand',
        line: 1,
        message: expect.stringMatching(/unknown key \(did you mean "start_command"\?\)/) as unknown,
      }),
    ]);
  });

  it('a city agent may depend on a pack agent', async () => {
    const loaded = await loadCityConfig(
      city({
        'city.toml': CITY + 'depends_on = ["coder"]\n',
        'agents/coder/agent.toml': 'start_command = "sleep 3"\n',
      }),
      {},
    );
    expect(loaded.config.agent.map((a) => a.name)).toEqual(['mayor', 'coder']);
  });
});

describe('Gas City keys not acted on yet', () => {
  it('are accepted with a warning that says so, never "unknown key"; a typo still is one', async () => {
    const loaded = await loadCityConfig(
      city({
        'city.toml': [
          'formulas = ["f"]',
          '[workspace]',
          'name = "g"',
          '[daemon]',
          'formula_v2 = true',
          '[[rigs]]',
          'name = "app"',
          'path = "app"',
          '[[agent]]',
          'name = "mayor"',
          'default_sling_formula = "mol-work"',
          'strat_command = "x"',
          '',
        ].join('\n'),
      }),
      {},
    );
    const w = loaded.warnings.map((i) => `${i.path}: ${i.message}`);
    for (const key of ['daemon.formula_v2', 'formulas']) {
      expect(w).toContainEqual(
        expect.stringContaining(`accepted, not supported in this build: ${key} `),
      );
    }
    expect(w).toContainEqual(
      expect.stringMatching(
        /^agent\[0\]\.strat_command: unknown key \(did you mean "start_command"\?\)/,
      ),
    );
    expect(w.filter((x) => x.includes('unknown key'))).toHaveLength(1);
    // default_sling_formula is read (gc sling pours it).
    expect(w.filter((x) => x.includes('default_sling_formula'))).toEqual([]);
    expect(loaded.config.agent[0]?.default_sling_formula).toBe('mol-work');
  });
});
