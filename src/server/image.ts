/**
 * `gc build-image`: a Docker build context that bakes gc and the city
 * (city.toml, packs, prompts, formulas, orders: everything but .gc/ and
 * .git/) into two images: the agent image (tmux, git, gc; the pod's
 * command comes from the provider) and the controller image (the city
 * server, `gc start --foreground`). Both hold the city at the same path,
 * so the work dirs the controller hands to pods exist in them.
 */
import { chmod, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NotFoundError, ValidationError } from '../core/index.js';

export interface ImageContextOptions {
  /** The city directory (holds city.toml). */
  city: string;
  /** Where the context is written (replaced). */
  out: string;
  /** The gc package root (holds package.json and dist/). */
  gcRoot: string;
  /** Where the city lives in the images. */
  cityPath: string;
  /** Base image with Node 20. */
  base: string;
}

export interface ImageContext {
  dir: string;
  files: string[];
  dockerfiles: { agent: string; controller: string };
}

const SKIP = new Set(['.gc', '.git', 'node_modules']);

/** The package root of the running gc: the nearest package.json above `from` with dist/cli/gc.js. */
export function gcPackageRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (
      existsSync(path.join(dir, 'package.json')) &&
      existsSync(path.join(dir, 'dist', 'cli', 'gc.js'))
    ) {
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) {
      throw new NotFoundError('gc build', from, { fix: 'build gc first: npm run build' });
    }
    dir = up;
  }
}

const RUNTIME = [
  'RUN apt-get update \\',
  ' && apt-get install -y --no-install-recommends tmux git procps ca-certificates \\',
  ' && rm -rf /var/lib/apt/lists/*',
];

function dockerfile(o: ImageContextOptions, role: 'agent' | 'controller'): string {
  return [
    `# gc ${role} image: gc and the city baked in (written by gc build-image).`,
    `FROM ${o.base}`,
    ...RUNTIME,
    'WORKDIR /opt/gc',
    'COPY gc/package.json gc/package.json',
    'RUN cd gc && npm install --omit=dev --no-audit --no-fund',
    'COPY gc/ gc/',
    'COPY entrypoint.sh ./',
    'RUN ln -s /opt/gc/entrypoint.sh /usr/local/bin/gc',
    `COPY city/ ${o.cityPath}/`,
    `WORKDIR ${o.cityPath}`,
    ...(role === 'controller'
      ? ['ENTRYPOINT ["/opt/gc/entrypoint.sh"]', 'CMD ["start", "--foreground"]']
      : ['# The agent pod command is set by the k8s provider (tmux session main).']),
    '',
  ].join('\n');
}

/** The entrypoint: the baked gc, found next to this script. */
const ENTRYPOINT = `#!/bin/sh
# Runs the gc baked next to this script (written by gc build-image).
here=$(cd "$(dirname "$0")" && pwd)
exec node "$here/gc/dist/cli/gc.js" "$@"
`;

export async function writeImageContext(o: ImageContextOptions): Promise<ImageContext> {
  if (!existsSync(path.join(o.city, 'city.toml'))) {
    throw new NotFoundError('city', o.city, { fix: 'pass --city DIR, the directory of city.toml' });
  }
  if (!path.posix.isAbsolute(o.cityPath)) {
    throw new ValidationError(`${o.cityPath} is not an absolute path`, { where: '--city-path' });
  }
  const out = path.resolve(o.out);
  if (path.resolve(o.city).startsWith(out + path.sep) || path.resolve(o.city) === out) {
    throw new ValidationError('the output directory would hold the city itself', {
      where: '--out',
    });
  }
  await rm(out, { recursive: true, force: true });
  await mkdir(path.join(out, 'gc'), { recursive: true });
  await cp(path.join(o.gcRoot, 'dist'), path.join(out, 'gc', 'dist'), {
    recursive: true,
    filter: (src) => !src.endsWith('.map'),
  });
  const pkg = JSON.parse(await readFile(path.join(o.gcRoot, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    dependencies?: Record<string, string>;
  };
  // Only what the bundle leaves out (native addon, database drivers) is installed.
  const deps = Object.fromEntries(
    ['better-sqlite3', 'pg', 'mysql2', '@kubernetes/client-node']
      .filter((d) => pkg.dependencies?.[d])
      .map((d) => [d, pkg.dependencies![d]!]),
  );
  await writeFile(
    path.join(out, 'gc', 'package.json'),
    `${JSON.stringify({ name: pkg.name, version: pkg.version, private: true, type: 'module', dependencies: deps }, null, 2)}\n`,
  );
  // Entry by entry: the context may itself be under the city's .gc/.
  await mkdir(path.join(out, 'city'));
  for (const e of await readdir(o.city)) {
    if (SKIP.has(e)) continue;
    await cp(path.join(o.city, e), path.join(out, 'city', e), {
      recursive: true,
      filter: (src) => !SKIP.has(path.basename(src)),
    });
  }
  await writeFile(path.join(out, 'entrypoint.sh'), ENTRYPOINT);
  await chmod(path.join(out, 'entrypoint.sh'), 0o755);
  await writeFile(path.join(out, 'Dockerfile.agent'), dockerfile(o, 'agent'));
  await writeFile(path.join(out, 'Dockerfile.controller'), dockerfile(o, 'controller'));
  await writeFile(path.join(out, '.dockerignore'), '**/*.map\n');
  return {
    dir: out,
    files: ['Dockerfile.agent', 'Dockerfile.controller', 'entrypoint.sh', 'gc/', 'city/'],
    dockerfiles: {
      agent: path.join(out, 'Dockerfile.agent'),
      controller: path.join(out, 'Dockerfile.controller'),
    },
  };
}
