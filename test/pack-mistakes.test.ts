/**
 * The mistakes Gas City users make with packs, through the CLI: a missing
 * pack, a pack cycle, one agent name from two packs, an unknown sling
 * target. Each is refused by `gc config validate` (human and --json) and
 * by the commands that load the city, with the file, line and a fix.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, gc } from './helpers/cli.js';

const roots: string[] = [];
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function city(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'gc-pack-mistake-'));
  roots.push(root);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return root;
}
const run = (root: string, args: string[]) =>
  gc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
const pack = (name: string, body = '') => `[pack]\nname = "${name}"\nschema = 2\n${body}`;
const CITY = '[workspace]\nname = "c"\n';

interface Validation {
  valid: boolean;
  errors: { file: string; path: string; line?: number; message: string }[];
}

const cases: [string, Record<string, string>, string, RegExp][] = [
  [
    'a missing pack',
    { 'city.toml': `${CITY}[imports.ops]\nsource = "packs/ops"\n` },
    'city.toml',
    /cannot find pack packs\/ops: .*; check the path/,
  ],
  [
    'a pack cycle',
    {
      'city.toml': `${CITY}[imports.a]\nsource = "packs/a"\n`,
      'packs/a/pack.toml': pack('a', '[imports.b]\nsource = "../b"\n'),
      'packs/b/pack.toml': pack('b', 'includes = ["../a"]\n'),
    },
    'packs/b/pack.toml',
    /pack cycle: packs\/a -> packs\/b -> packs\/a; remove one of these includes or imports/,
  ],
  [
    'one agent name from two packs',
    {
      'city.toml': `${CITY}includes = ["packs/a", "packs/b"]\n`,
      'packs/a/pack.toml': pack('a', '[[agent]]\nname = "worker"\nstart_command = "x"\n'),
      'packs/b/pack.toml': pack('b', '[[agent]]\nname = "worker"\nstart_command = "y"\n'),
    },
    'packs/b/pack.toml',
    /agent "worker" is defined by two packs, .*; rename one, import one under a binding, or set fallback = true/,
  ],
];

describe('pack mistakes through the CLI', () => {
  for (const [what, files, where, message] of cases) {
    it(`${what}: gc config validate says where and how to fix it, human and --json; other commands refuse too`, async () => {
      const root = await city(files);
      const human = await run(root, ['config', 'validate']);
      expect(human.code).toBe(2);
      expect(human.stderr).toMatch(message);
      expect(human.stderr).toContain(path.join(root, where));
      const json = await run(root, ['config', 'validate', '--json']);
      expect(json.code).toBe(2);
      const v = JSON.parse(json.stdout) as Validation;
      expect(v.valid).toBe(false);
      expect(v.errors).toHaveLength(1);
      expect(v.errors[0]!.file).toBe(path.join(root, where));
      expect(v.errors[0]!.message).toMatch(message);
      expect(v.errors[0]!.line).toBeGreaterThan(0);
      const show = await run(root, ['config', 'show']);
      expect(show.code).not.toBe(0);
      expect(show.stderr).toMatch(message);
    });
  }

  it('an unknown sling target names the agents there are', async () => {
    const root = await city({
      'city.toml': `${CITY}includes = ["packs/a"]\n`,
      'packs/a/pack.toml': pack('a', '[[agent]]\nname = "worker"\nstart_command = "x"\n'),
    });
    const r = await run(root, ['sling', 'wokrer', 'fix the login page']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/wokrer/);
    expect(r.stderr).toMatch(/worker/);
    const j = await run(root, ['sling', 'wokrer', 'fix the login page', '--json']);
    expect(j.code).not.toBe(0);
    expect((JSON.parse(j.stderr) as { error: { message: string } }).error.message).toMatch(
      /wokrer/,
    );
  });
});
