/**
 * The machine-wide city registry, with the built gc: gc init registers,
 * rig add refreshes, gc run in a rig's directory outside the city finds
 * the city, register/unregister/cities with --json, and the errors.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { REPO, gcBuilt } from './helpers/cli.js';
import { makeRepo } from './helpers/git.js';
import { until } from './helpers/wait.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

interface Registered {
  name: string;
  path: string;
  rigs: { name: string; path: string }[];
  exists?: boolean;
  created?: boolean;
}

async function machine() {
  const top = realpathSync(await mkdtemp(path.join(os.tmpdir(), 'gc-cities-')));
  dirs.push(top);
  const env = { GC_CONFIG_HOME: path.join(top, 'config') };
  const gc = (args: string[], cwd = top) => gcBuilt(args, { env, cwd });
  const cities = async () => {
    const r = await gc(['cities', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Registered[];
  };
  return { top, env, gc, cities };
}

describe('the city registry', () => {
  it('gc run in a rig directory outside the city finds the city; rig add keeps the registry current', async () => {
    const { top, gc, cities } = await machine();
    const town = path.join(top, 'town');
    const init = await gc(['init', town, '--name', 'town', '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ registered: true });
    expect(await cities()).toEqual([
      expect.objectContaining({ name: 'town', path: town, rigs: [], exists: true }),
    ]);

    // A project that lives outside the city.
    const app = path.join(top, 'projects', 'app');
    makeRepo(app);
    await mkdir(path.join(app, 'src', 'deep'), { recursive: true });
    // Not a rig yet: gc in it is not in a city, and says how to fix that.
    const before = await gc(['rig', 'list'], path.join(app, 'src'));
    expect(before.code).not.toBe(0);
    expect(before.stderr).toMatch(/not in a city/);
    expect(before.stderr).toMatch(/gc register/);

    const add = await gc(['--city', town, 'rig', 'add', 'app', app]);
    expect(add.code, add.stderr).toBe(0);
    expect((await cities())[0]!.rigs).toEqual([{ name: 'app', path: app }]);

    // From deep inside the rig, with no city.toml above it.
    const list = await gc(['rig', 'list', '--json'], path.join(app, 'src', 'deep'));
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((r) => r.name)).toEqual(['app']);
    const bead = await gc(['bead', 'create', 'from the rig', '--json'], app);
    expect(bead.code, bead.stderr).toBe(0);
    const beads = await gc(['--city', town, 'bead', 'list', '--json']);
    expect(beads.stdout).toContain('from the rig');

    // Two cities claiming the same rig: gc says which, and how to pick.
    const other = path.join(top, 'other');
    expect((await gc(['init', other, '--name', 'other'])).code).toBe(0);
    expect((await gc(['--city', other, 'rig', 'add', 'app', app])).code).toBe(0);
    const both = await gc(['rig', 'list'], app);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain(`a rig of 2 registered cities: ${town}, ${other}`);
    expect(both.stderr).toMatch(/--city/);

    // Unregistered by name: the other city is the rig's only one.
    const un = await gc(['unregister', 'town', '--json']);
    expect(un.code, un.stderr).toBe(0);
    expect(JSON.parse(un.stdout)).toMatchObject({ name: 'town', path: town, removed: true });
    const now = await gc(['status', '--json'], app);
    expect(now.code, now.stderr).toBe(0);
    expect((await cities()).map((c) => c.name)).toEqual(['other']);
  });

  it('register, refresh, unregister and their errors', async () => {
    const { top, gc, cities, env } = await machine();
    const town = path.join(top, 'town');
    await mkdir(town);
    await writeFile(path.join(town, 'city.toml'), '[workspace]\nname = "town"\n');
    const first = await gc(['register', town, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ name: 'town', path: town, created: true });
    // Again, from inside the city: a refresh, not a second entry.
    const again = await gc(['register'], town);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^refreshed city "town" at /);
    expect(await cities()).toHaveLength(1);

    const notCity = await gc(['register', top]);
    expect(notCity.code).not.toBe(0);
    expect(notCity.stderr).toMatch(/city not found: .*city\.toml/s);

    const missing = await gc(['unregister', 'nosuch']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/registered city not found: nosuch/);
    expect(await cities()).toHaveLength(1);

    // A city whose directory is gone is listed as missing.
    await rm(town, { recursive: true });
    const shown = await gc(['cities']);
    expect(shown.stdout).toContain(`${town} (missing)`);
    const gone = await gc(['unregister', town]);
    expect(gone.code, gone.stderr).toBe(0);
    expect((await gc(['cities'])).stdout).toMatch(/no cities registered/);

    // A damaged registry is an error naming the file, not an empty list.
    await writeFile(path.join(env.GC_CONFIG_HOME, 'cities.json'), '{not json');
    const bad = await gc(['cities']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/city registry \S+ is not valid JSON/);
    expect(bad.stderr).toContain('cities.json');
  });
});

describe('gc init scaffolds a working city', () => {
  it('makes pack.toml, agents/mayor with its prompt, formulas/, orders/; --provider; no questions without a terminal', async () => {
    const { top, gc } = await machine();
    // A stand-in codex on PATH: the coordinator's CLI is found.
    const bin = path.join(top, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'codex'), '#!/bin/sh\nsleep 600\n');
    await chmod(path.join(bin, 'codex'), 0o755);
    const PATH = `${bin}:${process.env.PATH ?? ''}`;
    const town = path.join(top, 'town');
    const r = await gcBuilt(['init', town, '--provider', 'codex', '--json'], {
      env: { GC_CONFIG_HOME: path.join(top, 'config'), PATH },
      cwd: top,
    });
    expect(r.code, r.stderr).toBe(0);
    const made = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(made).toMatchObject({
      name: 'town',
      coordinator: 'mayor',
      provider: 'codex',
      started: false,
      registered: true,
    });
    expect(made.warnings).toBeUndefined();
    expect(made.made).toEqual([
      'pack.toml',
      'agents/mayor/prompt.template.md',
      'formulas/',
      'orders/',
    ]);
    for (const f of ['pack.toml', 'agents/mayor/prompt.template.md', 'formulas', 'orders']) {
      expect(existsSync(path.join(town, f)), f).toBe(true);
    }
    const toml = await readFile(path.join(town, 'city.toml'), 'utf8');
    expect(toml).toMatch(/\[\[agent\]\]\nname = "mayor"\nprovider = "codex"/);
    const valid = await gcBuilt(['--city', town, 'config', 'validate', '--json'], {
      env: { GC_CONFIG_HOME: path.join(top, 'config'), PATH },
    });
    expect(valid.code, valid.stdout + valid.stderr).toBe(0);
    const prime = await gc(['--city', town, 'prime', 'mayor']);
    expect(prime.stdout).toContain('You are mayor, the coordinator of the city town');

    // Re-init keeps an edited prompt; only city.toml is rewritten.
    await writeFile(path.join(town, 'agents/mayor/prompt.template.md'), 'my own words\n');
    const again = await gc(['init', town, '--force', '--provider', 'gemini']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/warning: gemini is not on PATH: the mayor agent cannot start/);
    expect(await readFile(path.join(town, 'agents/mayor/prompt.template.md'), 'utf8')).toBe(
      'my own words\n',
    );
    expect(await readFile(path.join(town, 'city.toml'), 'utf8')).toContain('provider = "gemini"');

    // An unknown provider: a usage error with a suggestion, nothing made.
    const bad = await gc(['init', path.join(top, 'nope'), '--provider', 'claud']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown agent provider "claud"/);
    expect(bad.stderr).toMatch(/did you mean "claude"/);
    expect(existsSync(path.join(top, 'nope', 'city.toml'))).toBe(false);
  });

  it('on a terminal, asks which agent CLI and whether to start', async () => {
    const { top, env } = await machine();
    const dir = path.join(top, 'asked');
    const gcJs = path.join(REPO, 'dist', 'cli', 'gc.js');
    // A pseudo-terminal (util-linux script) that a person answers.
    const child = spawn(
      'script',
      ['-qec', `${process.execPath} ${gcJs} init ${dir}`, '/dev/null'],
      {
        env: { ...process.env, ...env, GC_TOKEN: '', GC_API: '' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const answered = new Set<string>();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const [question, answer] of [
        ['Agent CLI for the coordinator', 'gemini\n'],
        ['Start the city now? [Y/n]', 'n\n'],
      ] as const) {
        if (out.includes(question) && !answered.has(question)) {
          answered.add(question);
          child.stdin.write(answer);
        }
      }
    });
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    expect(code, out).toBe(0);
    expect(answered.size, out).toBe(2);
    expect(out).toContain('coordinator: agent mayor on gemini');
    expect(out).toContain(`next: cd ${dir} && gc start`);
    expect(await readFile(path.join(dir, 'city.toml'), 'utf8')).toContain('provider = "gemini"');
  });

  it('--start starts the new city and its coordinator', async () => {
    const { top, env } = await machine();
    const town = path.join(top, 'started');
    const run = (args: string[]) =>
      gcBuilt(args, { env: { ...env, GC_SESSION: 'fake' }, cwd: top });
    const r = await run(['init', town, '--start']);
    try {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/city started|server .* started/);
      await until(
        'the coordinator in session list',
        async () => {
          const st = await run(['--city', town, 'session', 'list', '--json']);
          return st.code === 0 ? (JSON.parse(st.stdout) as { name: string }[]) : [];
        },
        (rows) => rows.some((s) => s.name === 'mayor'),
      );
    } finally {
      await run(['--city', town, 'stop']);
    }
  });
});
