/**
 * `gc pack fetch [--update]`: pin every remote pack the city names (in
 * city.toml, its pack.toml, and the packs those reach) in packs.lock and
 * check each pinned commit out into the cache, so loading the city never
 * needs the network. A source already pinned and cached is left alone
 * unless `--update` asks for its ref's (or default branch's) newest commit.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'smol-toml';
import { ValidationError } from '../../core/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The pack references (includes and import sources) a parsed pack.toml or city.toml holds. */
function refsOf(raw: Raw): string[] {
  const out: string[] = [];
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const imports = (v: unknown) =>
    isObj(v)
      ? Object.values(v).flatMap((i) =>
          isObj(i) && typeof i.source === 'string' ? [i.source] : [],
        )
      : [];
  if (isObj(raw.pack)) out.push(...strings(raw.pack.includes));
  if (isObj(raw.workspace)) out.push(...strings(raw.workspace.includes));
  out.push(...imports(raw.imports));
  for (const rig of Array.isArray(raw.rigs) ? raw.rigs : []) {
    if (isObj(rig)) out.push(...strings(rig.includes), ...imports(rig.imports));
  }
  return out;
}

async function readRaw(file: string): Promise<Raw | undefined> {
  if (!existsSync(file)) return undefined;
  try {
    return parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new ValidationError(`cannot read: ${(e as Error).message}`, { where: file });
  }
}

export interface FetchedPack {
  source: string;
  commit: string;
  dir: string;
  status: 'fetched' | 'cached';
}

export async function fetchPacks(g: GlobalOptions, o: { update?: boolean }): Promise<void> {
  const { Git } = await import('../../git/index.js');
  const { parseSource, cacheDir, readLock, renderLock, LOCK_FILE } =
    await import('../../config/index.js');
  const root = cityRoot(g);
  const cityRaw = (await readRaw(path.join(root, 'city.toml'))) ?? {};
  const aliases = isObj(cityRaw.packs) ? cityRaw.packs : {};
  const lock = readLock(root);
  const results: FetchedPack[] = [];
  const seen = new Set<string>();
  // Breadth-first over pack folders: [folder the refs are relative to, refs].
  const queue: [string, string[]][] = [[root, refsOf(cityRaw)]];
  const rootPack = await readRaw(path.join(root, 'pack.toml'));
  if (rootPack) queue.push([root, refsOf(rootPack)]);
  while (queue.length) {
    const [base, refs] = queue.shift()!;
    for (let ref of refs) {
      const alias = aliases[ref];
      if (isObj(alias) && typeof alias.source === 'string') {
        ref = alias.source;
        if (typeof alias.path === 'string' && alias.path) ref += `//${alias.path}`;
        if (typeof alias.ref === 'string' && alias.ref) ref += `#${alias.ref}`;
      }
      const src = parseSource(ref, base, root);
      const key = src.kind === 'git' ? src.source : src.dir;
      if (seen.has(key)) continue;
      seen.add(key);
      let dir: string;
      if (src.kind === 'local') {
        dir = src.dir;
      } else {
        const pinned = /^[0-9a-f]{40}$/.test(src.ref ?? '')
          ? src.ref!
          : lock.get(src.source)?.commit;
        const cached = pinned !== undefined && existsSync(cacheDir(process.env, src.url, pinned));
        let commit: string;
        if (cached && !o.update) {
          commit = pinned;
          results.push({ source: src.source, commit, dir: '', status: 'cached' });
        } else {
          const tmpParent = path.join(path.dirname(cacheDir(process.env, src.url, 'x')), '.tmp');
          await mkdir(tmpParent, { recursive: true });
          const tmp = await mkdtemp(path.join(tmpParent, 'clone-'));
          try {
            await new Git(tmpParent).run(['clone', '--quiet', '--no-checkout', src.url, tmp]);
            const repo = new Git(tmp);
            const want = o.update || pinned === undefined ? (src.ref ?? 'HEAD') : pinned;
            const resolved = (await repo.resolve(want)) ?? (await repo.resolve(`origin/${want}`));
            if (!resolved) {
              throw new ValidationError(
                `${src.url} has no commit, branch or tag ${JSON.stringify(want)}`,
                {
                  where: src.source,
                },
              );
            }
            commit = resolved;
            await repo.run(['checkout', '--quiet', '--detach', commit]);
            const dest = cacheDir(process.env, src.url, commit);
            if (existsSync(dest)) await rm(tmp, { recursive: true, force: true });
            else await rename(tmp, dest);
          } catch (e) {
            await rm(tmp, { recursive: true, force: true });
            throw e;
          }
          lock.set(src.source, { commit, url: src.url, ...(src.ref ? { ref: src.ref } : {}) });
          results.push({ source: src.source, commit, dir: '', status: 'fetched' });
        }
        dir = path.join(cacheDir(process.env, src.url, commit), src.sub);
        results[results.length - 1]!.dir = dir;
        if (!existsSync(dir)) {
          throw new ValidationError(`${src.source}: the repository has no folder ${src.sub}`, {
            where: src.source,
          });
        }
      }
      const packRaw = await readRaw(path.join(dir, 'pack.toml'));
      if (packRaw) queue.push([dir, refsOf(packRaw)]);
    }
  }
  if (results.length) await writeFile(path.join(root, LOCK_FILE), renderLock(lock));
  if (g.json) {
    printJson({ lock: path.join(root, LOCK_FILE), packs: results });
    return;
  }
  if (!results.length) {
    printLine('no remote packs: nothing to fetch');
    return;
  }
  for (const r of results)
    printLine(`${r.status.padEnd(7)} ${r.source} @ ${r.commit.slice(0, 12)}`);
  printLine(`pinned in ${path.join(root, LOCK_FILE)}`);
}
