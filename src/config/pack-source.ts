/**
 * Where a pack reference points (REFERENCE.md 9.1 "Sources"). A local
 * reference is a path relative to the file that names it (`//x` is relative
 * to the city root). A remote one is a git repository (`git@...`,
 * `ssh://`, `https://`, `http://`, `git://`, `file://` or `github.com/...`)
 * with an optional `//sub/dir` inside it and `#ref`. The loader never
 * clones: a remote pack is read from the cache
 * (`$GC_HOME/cache/repos/<sha256(url + commit)>`, GC_HOME defaulting to
 * `~/.gc`), at the commit `packs.lock` pins for it (or the commit its
 * `#ref` names in full); `gc pack fetch` fills the cache and the lock.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse } from 'smol-toml';

export type PackSource =
  | { kind: 'local'; dir: string }
  | { kind: 'git'; source: string; url: string; sub: string; ref: string | undefined };

const REMOTE = /^(git@|ssh:\/\/|https?:\/\/|git:\/\/|file:\/\/|github\.com\/)/;
export const LOCK_FILE = 'packs.lock';

/** The pack `ref` names, written in a file in `declaringDir` of the city at `root`. */
export function parseSource(ref: string, declaringDir: string, root: string): PackSource {
  if (!REMOTE.test(ref)) {
    const dir = ref.startsWith('//')
      ? path.resolve(root, ref.slice(2))
      : path.resolve(declaringDir, ref);
    return { kind: 'local', dir };
  }
  let rest = ref;
  let gitRef: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    gitRef = rest.slice(hash + 1) || undefined;
    rest = rest.slice(0, hash);
  }
  // `//` after the host part separates the repository from a folder inside it.
  const scheme = rest.indexOf('://');
  const from = scheme >= 0 ? scheme + 3 : 0;
  const split = rest.indexOf('//', from);
  let url = split >= 0 ? rest.slice(0, split) : rest;
  const sub = split >= 0 ? rest.slice(split + 2) : '';
  if (url.startsWith('github.com/')) url = `https://${url}`;
  return { kind: 'git', source: ref, url, sub, ref: gitRef };
}

export function gcHome(env: NodeJS.ProcessEnv): string {
  return env.GC_HOME || path.join(env.HOME || homedir(), '.gc');
}

/** The cache folder of `url` at `commit`. */
export function cacheDir(env: NodeJS.ProcessEnv, url: string, commit: string): string {
  const key = createHash('sha256').update(`${url}${commit}`).digest('hex');
  return path.join(gcHome(env), 'cache', 'repos', key);
}

export interface LockEntry {
  commit: string;
  url?: string;
  ref?: string;
}

/** `packs.lock` of the city at `root`: source as written -> pinned commit. */
export function readLock(root: string): Map<string, LockEntry> {
  const file = path.join(root, LOCK_FILE);
  const out = new Map<string, LockEntry>();
  if (!existsSync(file)) return out;
  const raw = parse(readFileSync(file, 'utf8')) as { packs?: Record<string, LockEntry> };
  for (const [src, e] of Object.entries(raw.packs ?? {})) {
    if (typeof e?.commit === 'string') out.set(src, e);
  }
  return out;
}

/** `packs.lock` text for `entries` (sorted, so it diffs well). */
export function renderLock(entries: ReadonlyMap<string, LockEntry>): string {
  const lines = ['# Written by `gc pack fetch`: the commit each remote pack source is pinned to.'];
  for (const src of [...entries.keys()].sort()) {
    const e = entries.get(src)!;
    lines.push('', `[packs.${JSON.stringify(src)}]`, `commit = ${JSON.stringify(e.commit)}`);
    if (e.url) lines.push(`url = ${JSON.stringify(e.url)}`);
    if (e.ref) lines.push(`ref = ${JSON.stringify(e.ref)}`);
  }
  return `${lines.join('\n')}\n`;
}

const FULL_SHA = /^[0-9a-f]{40}$/;

/**
 * The folder a source's pack is in, or why it is not available: a remote
 * needs a pinned commit (packs.lock, or a full commit as its #ref) and a
 * cached checkout of it.
 */
export function packDir(
  src: PackSource,
  lock: ReadonlyMap<string, LockEntry>,
  env: NodeJS.ProcessEnv,
): { dir: string } | { missing: string } {
  if (src.kind === 'local') {
    return existsSync(src.dir) ? { dir: src.dir } : { missing: `no folder ${src.dir}` };
  }
  const commit = src.ref && FULL_SHA.test(src.ref) ? src.ref : lock.get(src.source)?.commit;
  if (!commit) return { missing: `${src.source} is not pinned in ${LOCK_FILE}` };
  const checkout = cacheDir(env, src.url, commit);
  if (!existsSync(checkout)) {
    return { missing: `${src.source} at ${commit.slice(0, 12)} is not in the cache (${checkout})` };
  }
  const dir = path.join(checkout, src.sub);
  return existsSync(dir) ? { dir } : { missing: `${src.source} has no folder ${src.sub}` };
}
