/**
 * Build: the `gc` and `bd` commands bundled into dist/cli/, one small entry
 * file each plus shared chunks that commands load only when they run.
 *
 * Why a bundle: agents call gc thousands of times an hour, and Node's
 * module loader pays per file. Unbundled, `gc hook` resolved and loaded
 * about 190 files; bundled with code splitting it loads a handful of chunks
 * (bench/cli.ts measures it). Type checking is `npm run typecheck`.
 *
 *   npx tsx scripts/build.ts
 */
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist');
rmSync(out, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/gc.ts', 'src/cli/bd.ts'],
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  // A native addon: loaded from node_modules at run time.
  external: ['better-sqlite3'],
  // Bundled CommonJS dependencies (commander) call require for builtins.
  banner: {
    js: "import { createRequire as __gcCreateRequire } from 'node:module'; const require = __gcCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
for (const prog of ['gc', 'bd']) chmodSync(path.join(out, 'cli', `${prog}.js`), 0o755);
