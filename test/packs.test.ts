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
      { name: 'reviewer', from: path.join(root, 'pack.toml') },
      { name: 'coder', from: path.join(root, 'agents', 'coder', 'agent.toml') },
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
