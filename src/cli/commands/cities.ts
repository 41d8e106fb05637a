/**
 * `gc cities`, `gc register [DIR]`, `gc unregister [DIR|NAME]`: the
 * machine-wide registry of cities and their rigs (core/registry.ts), which
 * lets `gc` run in a rig's directory find its city. `gc init` registers the
 * city it makes; `gc start` and `gc rig add|remove` refresh a registered
 * city's rigs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  CITY_FILE,
  NotFoundError,
  findCityRoot,
  isRegistered,
  readRegistry,
  realPath,
  registerCity,
  registryPath,
  unregisterCity,
  type RegisteredCity,
} from '../../core/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';

/** The registry entry for the city at `root`, from its city.toml. */
async function entryOf(
  root: string,
): Promise<{ name: string; path: string; rigs: RegisteredCity['rigs'] }> {
  const { loadCityConfig } = await import('../../config/index.js');
  const { config } = await loadCityConfig(path.join(root, CITY_FILE));
  return {
    name: config.workspace.name,
    path: root,
    rigs: config.rigs.map((r) => ({ name: r.name, path: path.resolve(root, r.path) })),
  };
}

/** Record the city at `root` (its name and rigs as city.toml has them now). */
export async function registerRoot(
  root: string,
): Promise<{ city: RegisteredCity; created: boolean }> {
  return registerCity(await entryOf(root));
}

/** Refresh a registered city's entry (rigs changed); nothing for an unregistered one. */
export async function refreshRegistration(root: string): Promise<void> {
  if (isRegistered(root)) await registerRoot(root);
}

export async function register(g: GlobalOptions, dir: string | undefined): Promise<void> {
  let root: string;
  if (dir !== undefined) {
    root = realPath(dir);
    if (!existsSync(path.join(root, CITY_FILE))) {
      throw new NotFoundError('city', root, {
        fix: 'pass the directory that holds city.toml (`gc init DIR` makes one)',
      });
    }
  } else root = realPath(cityRoot(g));
  const { city, created } = await registerRoot(root);
  if (g.json) printJson({ ...city, created, registry: registryPath() });
  else {
    printLine(
      `${created ? 'registered' : 'refreshed'} city "${city.name}" at ${city.path} (${city.rigs.length} rig(s))`,
    );
  }
}

export function unregister(g: GlobalOptions, target: string | undefined): void {
  const which = target ?? findCityRoot(process.cwd()) ?? g.city;
  if (!which) {
    throw new NotFoundError('city', '(none given)', {
      fix: 'run it in the city directory, or pass the city directory or its registered name',
    });
  }
  const gone = unregisterCity(which);
  if (!gone) {
    throw new NotFoundError('registered city', which, {
      fix: '`gc cities` lists the registered cities',
    });
  }
  if (g.json) printJson({ ...gone, removed: true });
  else printLine(`unregistered city "${gone.name}" at ${gone.path} (its files are untouched)`);
}

export function list(g: GlobalOptions): void {
  const cities = readRegistry().map((c) => ({
    ...c,
    exists: existsSync(path.join(c.path, CITY_FILE)),
  }));
  if (g.json) {
    printJson(cities);
    return;
  }
  if (!cities.length) {
    printLine('no cities registered (gc init registers the city it makes; gc register adds one)');
    return;
  }
  printLine(
    table(
      ['NAME', 'PATH', 'RIGS'],
      cities.map((c) => [
        c.name,
        c.exists ? c.path : `${c.path} (missing)`,
        c.rigs.map((r) => `${r.name}=${r.path}`).join(', ') || '-',
      ]),
    ),
  );
}
