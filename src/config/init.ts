/** `gc init`: create city.toml and the .gc/ state directory. */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { AlreadyExistsError, ValidationError, derivePrefix } from '../core/index.js';
import { CITY_FILE } from './load.js';

export interface InitOptions {
  dir: string;
  name?: string;
  force?: boolean;
  /** The scripted worker of this installation (examples/agents/worker.sh), for the sample agent. */
  workerScript?: string;
}

export function cityTemplate(
  name: string,
  prefix: string,
  workerScript = '/path/to/gc/examples/agents/worker.sh',
): string {
  return `# Gas City configuration. Reference: docs/config.md
[workspace]
name = "${name}"
prefix = "${prefix}"

[daemon]
patrol_interval = "30s"

# An agent pool: up to 4 scripted workers that take routed work.
# [[agent]]
# name = "worker"
# start_command = ${JSON.stringify(workerScript)}
# min_active_sessions = 0
# max_active_sessions = 4
`;
}

/** Create a city. Returns the absolute city root. Refuses to overwrite unless `force`. */
export async function initCity(
  options: InitOptions,
): Promise<{ root: string; file: string; name: string }> {
  const root = resolve(options.dir);
  const file = join(root, CITY_FILE);
  if (existsSync(file) && !options.force) {
    throw new AlreadyExistsError('city', root, {
      fix: 'pass --force to overwrite city.toml (beads and events in .gc/ are kept)',
    });
  }
  const name = options.name ?? basename(root);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(name)) {
    throw new ValidationError(
      `city name ${JSON.stringify(name)} must use letters, digits, '-' and '_'; pass --name`,
      { where: '--name' },
    );
  }
  await mkdir(join(root, '.gc'), { recursive: true, mode: 0o700 });
  await writeFile(file, cityTemplate(name, derivePrefix(name), options.workerScript), 'utf8');
  await writeFile(join(root, '.gc', '.gitignore'), '*\n', 'utf8');
  return { root, file, name };
}
