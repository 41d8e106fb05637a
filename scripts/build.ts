/**
 * Build: the `gc` and `bd` commands bundled into dist/cli/, one small entry
 * file each plus shared chunks that commands load only when they run.
 *
 * Why a bundle: agents call gc thousands of times an hour, and Node's
 * module loader pays per file. Unbundled, `gc hook` resolved and loaded
 * about 190 files; bundled with code splitting it loads a handful of chunks
 * (bench/cli.ts measures it). The city server gets its own unsplit
 * bundle, gc-server.js. Type checking is `npm run typecheck`.
 *
 *   npx tsx scripts/build.ts
 */
import { build, type BuildOptions } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist');
rmSync(out, { recursive: true, force: true });

const common: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // A native addon, the database drivers (loaded only by a city on a
  // database server) and the Kubernetes client (only by the k8s provider):
  // from node_modules at run time.
  external: ['better-sqlite3', 'pg', 'pg-native', 'mysql2', '@kubernetes/client-node'],
  // Bundled CommonJS dependencies (commander) call require for builtins.
  banner: {
    js: "import { createRequire as __gcCreateRequire } from 'node:module'; const require = __gcCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
};

// The commands: split, so each loads only what it uses.
await build({
  ...common,
  entryPoints: ['src/cli/gc.ts', 'src/cli/bd.ts'],
  outdir: 'dist/cli',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});
// The city server (`gc start` runs it): one file, read whole at start, so
// a server that runs for weeks never loads a chunk a later build replaced.
await build({
  ...common,
  entryPoints: ['src/cli/gc.ts'],
  outfile: 'dist/cli/gc-server.js',
});
for (const prog of ['gc', 'bd', 'gc-server']) chmodSync(path.join(out, 'cli', `${prog}.js`), 0o755);
