/**
 * Where gc's files are: the city root (the nearest city.toml) and a human's
 * admin key for a city (outside the city, under the user's config home,
 * mode 0600, named after the city's real path; written by the city's key
 * ring, read by every client). Kept here, with no dependencies, so a CLI
 * call that only talks to the server loads nothing more to find its city
 * and its key.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** The file that makes a directory a city. */
export const CITY_FILE = 'city.toml';

/** Directory of the nearest city.toml at or above `start`, or undefined. */
export function findCityRoot(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, CITY_FILE))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The user's gc config home: $GC_CONFIG_HOME, else $XDG_CONFIG_HOME/gc, else ~/.config/gc. */
export function configHome(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.GC_CONFIG_HOME || path.join(env.XDG_CONFIG_HOME || path.join(homedir(), '.config'), 'gc')
  );
}

/** Where the human's admin key for the city at `root` lives: outside the city, mode 0600. */
export function adminKeyPath(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = configHome(env);
  let real = path.resolve(root);
  try {
    real = realpathSync(real);
  } catch {
    // not created yet
  }
  const id = createHash('sha256').update(real).digest('hex').slice(0, 16);
  return path.join(
    base,
    'keys',
    `${path.basename(real).replace(/[^A-Za-z0-9_-]/g, '') || 'city'}-${id}.key`,
  );
}

/** The admin key of a city, or undefined when the file is missing. */
export function readAdminKey(
  root: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  try {
    return readFileSync(adminKeyPath(root, env), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The file an `exec:SCRIPT` provider runs. A path with a slash is relative
 * to the city root; a bare name is the city root's file of that name when
 * there is one, else the first executable of that name on PATH (Gas City
 * finds bare names on PATH). Unfound bare names resolve under the root, so
 * the error names a path.
 */
export function resolveScript(
  script: string,
  root: string,
  searchPath: string = process.env.PATH ?? '',
): string {
  if (script.includes('/')) return path.resolve(root, script);
  const local = path.resolve(root, script);
  if (existsSync(local)) return local;
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, script);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return local;
}
