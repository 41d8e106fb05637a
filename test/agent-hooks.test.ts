/**
 * install_agent_hooks = ["claude"]: a session's work dir gets Claude Code
 * hook settings that run gc's own commands; a file already there keeps
 * everything it had; the commands named are real gc commands; a CLI gc has
 * no hooks for is a warning, not an error.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCityConfig } from '../src/config/index.js';
import { citySpec } from '../src/controller/index.js';
import { prepareWorkDir } from '../src/runtime/startup.js';
import { CONFIG_HOME, gc } from './helpers/cli.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gc-hooks-'));
  dirs.push(d);
  return d;
};

interface Settings {
  model?: string;
  hooks: Record<string, { matcher?: string; hooks: { command: string }[] }[]>;
}
const read = (dir: string) =>
  JSON.parse(readFileSync(path.join(dir, '.claude', 'settings.local.json'), 'utf8')) as Settings;

describe('install_agent_hooks', () => {
  it('writes Claude Code hooks into the work dir, once, keeping what a file already had', async () => {
    const fresh = await tmp();
    await prepareWorkDir({ work_dir: fresh, agent_hooks: ['claude'] });
    const first = read(fresh);
    expect(Object.keys(first.hooks).sort()).toEqual(['SessionStart', 'UserPromptSubmit']);
    const text = readFileSync(path.join(fresh, '.claude', 'settings.local.json'), 'utf8');
    await prepareWorkDir({ work_dir: fresh, agent_hooks: ['claude'] });
    expect(readFileSync(path.join(fresh, '.claude', 'settings.local.json'), 'utf8')).toBe(text);

    const own = await tmp();
    mkdirSync(path.join(own, '.claude'));
    const mine = { matcher: 'Bash', hooks: [{ type: 'command', command: './guard.sh' }] };
    writeFileSync(
      path.join(own, '.claude', 'settings.local.json'),
      JSON.stringify({ model: 'opus', hooks: { PreToolUse: [mine] } }),
    );
    await prepareWorkDir({ work_dir: own, agent_hooks: ['claude'] });
    const merged = read(own);
    expect(merged.model).toBe('opus');
    expect(merged.hooks.PreToolUse).toEqual([mine]);
    expect(merged.hooks.UserPromptSubmit).toEqual(first.hooks.UserPromptSubmit);

    const broken = await tmp();
    mkdirSync(path.join(broken, '.claude'));
    writeFileSync(path.join(broken, '.claude', 'settings.local.json'), '{ not json');
    await expect(prepareWorkDir({ work_dir: broken, agent_hooks: ['claude'] })).rejects.toThrow(
      /cannot add agent hooks to .*settings\.local\.json/,
    );
  });

  it('every command the hooks run is a gc command', async () => {
    const dir = await tmp();
    await prepareWorkDir({ work_dir: dir, agent_hooks: ['claude'] });
    const commands = new Set(
      Object.values(read(dir).hooks).flatMap((groups) =>
        groups.flatMap((g) => g.hooks.map((h) => h.command)),
      ),
    );
    expect(commands.size).toBeGreaterThan(0);
    for (const c of commands) {
      const [prog, ...args] = c.split(' ');
      expect(prog).toBe('gc');
      const r = await gc([...args, '--help'], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
      expect(r.code, `${c}: ${r.stderr}`).toBe(0);
    }
  });

  it('an agent CLI gc has no hooks for is a warning at its place; sessions’ starts carry the list', async () => {
    const root = await tmp();
    await writeFile(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "h"\n[[agent]]\nname = "a"\nstart_command = "x"\ninstall_agent_hooks = ["claude", "codex"]\n',
    );
    const loaded = await loadCityConfig(path.join(root, 'city.toml'), {});
    expect(loaded.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'agent[0].install_agent_hooks[1]: accepted, not supported in this build: hooks for "codex" (gc installs hooks for claude)',
    ]);
    // Each session's start carries them to the provider, which installs them in its work dir.
    expect(citySpec(loaded).agents[0]!.startFor('a', root).agent_hooks).toEqual([
      'claude',
      'codex',
    ]);
  });
});
