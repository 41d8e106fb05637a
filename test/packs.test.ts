/**
 * The city's own pack through the CLI: agents from pack.toml and agents/
 * folders (the layout gc init writes) show in gc config show with where
 * they came from, validate reports a folder's mistakes at its file, and
 * gc prime renders a folder agent's prompt.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gc } from './helpers/cli.js';

let root = '';
beforeAll(async () => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'gc-packs-'));
  root = path.join(parent, 'town');
  const init = await gc(['init', root, '--no-start', '--provider', 'generic']);
  expect(init.code, init.stderr).toBe(0);
  await mkdir(path.join(root, 'agents', 'coder'), { recursive: true });
  await writeFile(
    path.join(root, 'agents', 'coder', 'agent.toml'),
    'start_command = "sleep 600"\nmax_active_sessions = 2\n',
  );
  await writeFile(
    path.join(root, 'agents', 'coder', 'prompt.template.md'),
    'I am {{.SessionName}} of {{.Agent}}, working in {{.WorkDir}}.\n',
  );
  await writeFile(
    path.join(root, 'pack.toml'),
    '[pack]\nname = "town"\nschema = 2\n[[agent]]\nname = "reviewer"\nstart_command = "sleep 600"\n',
  );
});
afterAll(async () => {
  await rm(path.dirname(root), { recursive: true, force: true });
});

describe('packs through the CLI', () => {
  it('gc config show lists every composed agent and where it came from', async () => {
    const r = await gc(['--city', root, 'config', 'show', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      agents: { name: string; from: string }[];
      sources: Record<string, { file?: string; line?: number }>;
    };
    expect(out.agents).toEqual([
      expect.objectContaining({ name: 'mayor', from: path.join(root, 'city.toml') }),
      {
        name: 'reviewer',
        qualified: 'reviewer',
        from: path.join(root, 'pack.toml'),
        layers: ['city pack (pack.toml)'],
      },
      {
        name: 'coder',
        qualified: 'coder',
        from: path.join(root, 'agents', 'coder', 'agent.toml'),
        layers: ['city pack (agents/coder/agent.toml)'],
      },
    ]);
    const human = await gc(['--city', root, 'config', 'show']);
    expect(human.stdout).toMatch(
      new RegExp(
        `agent\\[2\\]\\.max_active_sessions += 2 +# ${path.join(root, 'agents', 'coder', 'agent.toml')}:2`,
      ),
    );
    const valid = await gc(['--city', root, 'config', 'validate']);
    expect(valid.stdout).toMatch(/valid \(3 agents, 0 rigs\)/);
  });

  it("gc prime renders a folder agent's own prompt", async () => {
    const r = await gc(['--city', root, 'prime', 'coder']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^I am coder(-1)? of coder, working in /);
  });

  it('a mistake in a folder agent is reported at its file and line, and nothing runs', async () => {
    const file = path.join(root, 'agents', 'bad', 'agent.toml');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, 'start_command = "x"\nmax_active_sessions = "lots"\n');
    try {
      const r = await gc(['--city', root, 'config', 'validate']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}:2:1: max_active_sessions: expected a number`);
      const j = await gc(['--city', root, 'config', 'validate', '--json']);
      expect(JSON.parse(j.stdout)).toMatchObject({
        valid: false,
        errors: [{ file, path: 'max_active_sessions', line: 2 }],
      });
    } finally {
      await rm(path.dirname(file), { recursive: true, force: true });
    }
  });
});

describe('gc init --from', () => {
  it('a pack: a new city whose own pack is a copy of it, its agents composed', async () => {
    const parent = path.dirname(root);
    const pack = path.join(parent, 'shared-pack');
    await mkdir(path.join(pack, 'agents', 'tester'), { recursive: true });
    await mkdir(path.join(pack, 'formulas'), { recursive: true });
    await writeFile(
      path.join(pack, 'pack.toml'),
      '[pack]\nname = "shared"\nschema = 2\n[[agent]]\nname = "planner"\nstart_command = "sleep 600"\n',
    );
    await writeFile(
      path.join(pack, 'agents', 'tester', 'agent.toml'),
      'start_command = "sleep 600"\n',
    );
    await writeFile(path.join(pack, 'formulas', 'review.formula.toml'), 'formula = "review"\n');
    const city = path.join(parent, 'from-pack');
    const r = await gc(['init', city, '--from', pack, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { name: string; agents: string[]; made: string[] };
    expect(out.name).toBe('from-pack');
    expect(out.agents).toEqual(['planner', 'tester']);
    expect(out.made).toEqual(
      expect.arrayContaining(['agents', 'formulas', 'pack.toml', 'city.toml']),
    );
    const shown = JSON.parse((await gc(['--city', city, 'config', 'show', '--json'])).stdout) as {
      agents: { name: string; from: string }[];
    };
    expect(shown.agents.map((a) => a.from)).toEqual([
      path.join(city, 'pack.toml'),
      path.join(city, 'agents', 'tester', 'agent.toml'),
    ]);
  });

  it('a city: a copy without its .gc/ state, renamed; the mistakes users make', async () => {
    const parent = path.dirname(root);
    const copy = path.join(parent, 'copy-town');
    const r = await gc(['init', copy, '--from', root]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^created city "copy-town" at .* from /);
    expect(r.stdout).toMatch(/agents: mayor, reviewer, coder/);
    const shown = JSON.parse((await gc(['--city', copy, 'config', 'show', '--json'])).stdout) as {
      config: { workspace: { name: string } };
    };
    expect(shown.config.workspace.name).toBe('copy-town');
    const { readdir } = await import('node:fs/promises');
    // Only the new city's own state: no beads database of the original.
    expect((await readdir(path.join(copy, '.gc'))).filter((f) => f.startsWith('beads'))).toEqual(
      [],
    );

    const nowhere = await gc([
      'init',
      path.join(parent, 'x1'),
      '--from',
      path.join(parent, 'nope'),
    ]);
    expect(nowhere.code).not.toBe(0);
    expect(nowhere.stderr).toMatch(/nope/);
    expect(nowhere.stderr).toMatch(/city \(city\.toml\) or of a pack \(pack\.toml\)/);
    const empty = path.join(parent, 'empty');
    await mkdir(empty);
    const neither = await gc(['init', path.join(parent, 'x2'), '--from', empty]);
    expect(neither.stderr).toMatch(/holds neither city\.toml nor pack\.toml/);
    const again = await gc(['init', copy, '--from', root]);
    expect(again.stderr).toMatch(/--force/);
    const inside = await gc(['init', path.join(root, 'sub'), '--from', root]);
    expect(inside.stderr).toMatch(/overlap/);
    const both = await gc(['init', path.join(parent, 'x3'), '--from', root, '--provider', 'codex']);
    expect(both.stderr).toMatch(/--provider/);
  });
});
