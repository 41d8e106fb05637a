/** The `gc` and `bd` shims in `.gc/bin` that agents' sessions run. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `.gc/bin/gc` and `.gc/bin/bd`: shims that run this very build of gc with
 * this node, so agents' `gc ...` calls reach the same code as the server.
 * Written to a temporary name and renamed, so servers starting together on
 * one host never leave a half-written shim.
 */
export async function writeShims(binDir: string, cliDir?: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const self = fileURLToPath(import.meta.url);
  const dir = cliDir ?? path.join(path.dirname(self), '..', 'cli');
  const ext = path.extname(self);
  // Loader flags (e.g. tsx in development) resolved to absolute URLs, so the
  // shim works from any directory.
  const loader: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = a === '--import' ? argv[++i] : a.startsWith('--import=') ? a.slice(9) : undefined;
    if (value === undefined) continue;
    const resolved = /^(\.|\/|file:)/.test(value) ? value : import.meta.resolve(value);
    loader.push('--import', resolved);
  }
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  for (const prog of ['gc', 'bd']) {
    const entry = path.join(dir, `${prog}${ext}`);
    // The hot agent commands (fast.ts) talk to the city over its socket and
    // never use TLS, while Node parses NODE_EXTRA_CA_CERTS at every start
    // (tens of ms of CPU, paid by every agent's every call).
    const script = `#!/bin/sh\ncase "$1" in hook|runtime) unset NODE_EXTRA_CA_CERTS ;; esac\nexec ${[process.execPath, ...loader, entry].map(q).join(' ')} "$@"\n`;
    const file = path.join(binDir, prog);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, script, { mode: 0o755 });
    await rename(tmp, file);
  }
}
