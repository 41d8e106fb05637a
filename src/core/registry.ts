/**
 * The machine-wide registry of cities: where each city and its rigs live,
 * so `gc` run in a rig's directory (which usually lives outside the city
 * directory) finds the city the rig belongs to. One JSON file under the
 * user's config home (`cities.json`, mode 0600), written whole through a
 * temporary file and a rename, so a reader never sees half a file. Kept in
 * core with no dependencies: every CLI call that is not inside a city
 * directory reads it.
 */
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { ConflictError, GcError } from './errors.js';
import { CITY_FILE, configHome } from './paths.js';

export interface RegisteredRig {
  name: string;
  /** Absolute, real path of the rig's directory. */
  path: string;
}

export interface RegisteredCity {
  name: string;
  /** Absolute, real path of the city root (the directory of city.toml). */
  path: string;
  rigs: RegisteredRig[];
  /** When it was registered or last refreshed (ISO 8601). */
  updated_at: string;
}

interface RegistryFile {
  version: 1;
  cities: RegisteredCity[];
}

export function registryPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configHome(env), 'cities.json');
}

/** A path as the registry keeps it: absolute and, when it exists, real. */
export function realPath(p: string): string {
  const abs = path.resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

/** The registered cities, in registration order; none when the file is missing. */
export function readRegistry(env: NodeJS.ProcessEnv = process.env): RegisteredCity[] {
  const file = registryPath(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  let parsed: Partial<RegistryFile>;
  try {
    parsed = JSON.parse(text) as Partial<RegistryFile>;
  } catch (e) {
    throw new GcError('invalid', `the city registry ${file} is not valid JSON: ${String(e)}`, {
      details: { file },
      fix: 'fix or remove the file, then `gc register` each city again',
    });
  }
  if (!Array.isArray(parsed.cities)) {
    throw new GcError('invalid', `the city registry ${file} has no "cities" list`, {
      details: { file },
      fix: 'fix or remove the file, then `gc register` each city again',
    });
  }
  return parsed.cities.filter(
    (c): c is RegisteredCity =>
      typeof c?.name === 'string' && typeof c.path === 'string' && Array.isArray(c.rigs),
  );
}

function writeRegistry(cities: RegisteredCity[], env: NodeJS.ProcessEnv): void {
  const file = registryPath(env);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ version: 1, cities }, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * Record (or refresh) a city and its rigs. A city is known by its path
 * (two cities may share a name). Returns the entry and whether it was new.
 */
export function registerCity(
  city: { name: string; path: string; rigs: readonly RegisteredRig[] },
  env: NodeJS.ProcessEnv = process.env,
): { city: RegisteredCity; created: boolean } {
  const cities = readRegistry(env);
  const at = realPath(city.path);
  const entry: RegisteredCity = {
    name: city.name,
    path: at,
    rigs: city.rigs.map((r) => ({ name: r.name, path: realPath(r.path) })),
    updated_at: new Date().toISOString(),
  };
  const i = cities.findIndex((c) => c.path === at);
  if (i >= 0) cities[i] = entry;
  else cities.push(entry);
  writeRegistry(cities, env);
  return { city: entry, created: i < 0 };
}

/**
 * Remove the city registered at `pathOrName` (its directory, or a name only
 * one registered city has); the entry removed, or undefined.
 */
export function unregisterCity(
  pathOrName: string,
  env: NodeJS.ProcessEnv = process.env,
): RegisteredCity | undefined {
  const cities = readRegistry(env);
  const at = realPath(pathOrName);
  let i = cities.findIndex((c) => c.path === at);
  if (i < 0) {
    const named = cities.filter((c) => c.name === pathOrName);
    if (named.length > 1) {
      throw new ConflictError(
        `${named.length} registered cities are named ${JSON.stringify(pathOrName)}: ${named.map((c) => c.path).join(', ')}`,
        {
          details: { name: pathOrName, paths: named.map((c) => c.path) },
          fix: 'name the city by its directory',
        },
      );
    }
    i = named.length ? cities.indexOf(named[0]!) : -1;
  }
  if (i < 0) return undefined;
  const [gone] = cities.splice(i, 1);
  writeRegistry(cities, env);
  return gone;
}

/** Whether the city at `root` is registered. */
export function isRegistered(root: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const at = realPath(root);
  return readRegistry(env).some((c) => c.path === at);
}

const inside = (dir: string, base: string) => dir === base || dir.startsWith(base + path.sep);

/**
 * The root of the registered city one of whose rigs holds `dir` (the
 * deepest rig wins), or undefined. Cities whose city.toml is gone are
 * skipped. Two cities claiming the same rig directory is a ConflictError
 * naming both: pass --city.
 */
export function cityOfRigDir(
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): { root: string; rig: string } | undefined {
  const at = realPath(dir);
  let best: { root: string; rig: string; depth: number }[] = [];
  for (const c of readRegistry(env)) {
    if (!existsSync(path.join(c.path, CITY_FILE))) continue;
    for (const r of c.rigs) {
      if (!inside(at, r.path)) continue;
      const depth = r.path.length;
      if (!best.length || depth > best[0]!.depth) best = [{ root: c.path, rig: r.name, depth }];
      else if (depth === best[0]!.depth && !best.some((b) => b.root === c.path)) {
        best.push({ root: c.path, rig: r.name, depth });
      }
    }
  }
  if (best.length > 1) {
    throw new ConflictError(
      `this directory is a rig of ${best.length} registered cities: ${best.map((b) => b.root).join(', ')}`,
      {
        details: { dir: at, cities: best.map((b) => b.root) },
        fix: 'pass --city DIR (or set GC_CITY_ROOT) to pick one',
      },
    );
  }
  const one = best[0];
  return one ? { root: one.root, rig: one.rig } : undefined;
}
