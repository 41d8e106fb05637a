import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError } from './errors.js';
import { cityOfRigDir, readRegistry, registerCity, unregisterCity } from './registry.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function world() {
  const top = mkdtempSync(path.join(tmpdir(), 'gc-registry-'));
  dirs.push(top);
  const env = { GC_CONFIG_HOME: path.join(top, 'config') };
  const city = (name: string) => {
    const root = path.join(top, name);
    mkdirSync(root, { recursive: true });
    writeFileSync(path.join(root, 'city.toml'), `[workspace]\nname = "${name}"\n`);
    return root;
  };
  const dir = (...parts: string[]) => {
    const d = path.join(top, ...parts);
    mkdirSync(d, { recursive: true });
    return d;
  };
  return { top, env, city, dir };
}

describe('city registry', () => {
  it('finds the city of the deepest rig holding a directory; ignores lookalike prefixes', () => {
    const { env, city, dir } = world();
    const a = city('a');
    const b = city('b');
    const mono = dir('src', 'mono');
    const web = dir('src', 'mono', 'web');
    dir('src', 'mono', 'web', 'lib');
    const sibling = dir('src', 'mono-old');
    registerCity({ name: 'a', path: a, rigs: [{ name: 'mono', path: mono }] }, env);
    registerCity({ name: 'b', path: b, rigs: [{ name: 'web', path: web }] }, env);
    expect(cityOfRigDir(mono, env)).toEqual({ root: a, rig: 'mono' });
    expect(cityOfRigDir(path.join(web, 'lib'), env)).toEqual({ root: b, rig: 'web' });
    expect(cityOfRigDir(sibling, env)).toBeUndefined();
  });

  it('skips a city whose city.toml is gone; two cities on one rig is a conflict', () => {
    const { env, city, dir } = world();
    const a = city('a');
    const b = city('b');
    const app = dir('app');
    registerCity({ name: 'a', path: a, rigs: [{ name: 'app', path: app }] }, env);
    registerCity({ name: 'b', path: b, rigs: [{ name: 'app', path: app }] }, env);
    expect(() => cityOfRigDir(app, env)).toThrow(ConflictError);
    rmSync(path.join(b, 'city.toml'));
    expect(cityOfRigDir(app, env)).toEqual({ root: a, rig: 'app' });
  });

  it('registering again refreshes in place; unregister by path or unique name', () => {
    const { env, city, dir } = world();
    const a = city('a');
    expect(registerCity({ name: 'a', path: a, rigs: [] }, env).created).toBe(true);
    const r = registerCity({ name: 'a', path: a, rigs: [{ name: 'x', path: dir('x') }] }, env);
    expect(r.created).toBe(false);
    expect(readRegistry(env)).toHaveLength(1);
    expect(readRegistry(env)[0]!.rigs.map((x) => x.name)).toEqual(['x']);
    const twin = city('twin');
    registerCity({ name: 'a', path: twin, rigs: [] }, env);
    expect(() => unregisterCity('a', env)).toThrow(/2 registered cities are named "a"/);
    expect(unregisterCity(twin, env)?.path).toBe(twin);
    expect(unregisterCity('a', env)?.path).toBe(a);
    expect(unregisterCity('a', env)).toBeUndefined();
    expect(readRegistry(env)).toEqual([]);
  });
});
