/**
 * `gc rig add|list|remove|status`: the city's projects (git repositories).
 * add and remove edit city.toml in place (the rest of the file, comments
 * included, is kept) and check the result loads before keeping it; a
 * running server picks the change up by its config watch.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AlreadyExistsError,
  ConflictError,
  GcError,
  NotFoundError,
  ValidationError,
} from '../../core/index.js';
import { Git } from '../../git/index.js';
import { cityRoot, requireServer, withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';
import {
  checkNewName,
  refuseAgents,
  setKey,
  tableBlocks,
  tomlString,
  writeChecked,
  type TableBlock,
} from '../toml-edit.js';

/** city.toml edited, checked and kept; a registered city's rigs refreshed in the registry. */
async function rewrite(root: string, edit: (text: string) => string): Promise<void> {
  await rewriteFile(root, edit);
  const { refreshRegistration } = await import('./cities.js');
  await refreshRegistration(root);
}

async function rewriteFile(root: string, edit: (text: string) => string): Promise<void> {
  const file = path.join(root, 'city.toml');
  await writeChecked(root, file, edit(await readFile(file, 'utf8')));
}

export interface AddOptions {
  target?: string;
  prefix?: string;
  workers?: string;
  test?: string;
  gate?: string[];
  include?: string[];
}

const GATES = ['setup', 'typecheck', 'lint', 'test'] as const;

/** --test and --gate NAME=COMMAND as gate name -> command, checked. */
function gatesOf(o: AddOptions): Map<string, string> {
  const gates = new Map<string, string>();
  for (const spec of o.gate ?? []) {
    const i = spec.indexOf('=');
    const name = i > 0 ? spec.slice(0, i) : '';
    const command = i > 0 ? spec.slice(i + 1).trim() : '';
    if (!(GATES as readonly string[]).includes(name) || !command) {
      throw new ValidationError(
        `expected NAME=COMMAND with NAME one of ${GATES.join(', ')}, got ${JSON.stringify(spec)}`,
        { where: '--gate' },
      );
    }
    gates.set(name, command);
  }
  if (o.test !== undefined) {
    if (!o.test.trim()) throw new ValidationError('must not be empty', { where: '--test' });
    gates.set('test', o.test.trim());
  }
  return gates;
}

/**
 * `gc rig add PATH [--name N]` (Gas City's form: the name defaults to the
 * directory's) or `gc rig add NAME PATH` (this CLI's first form).
 */
export function addArgs(
  first: string,
  second: string | undefined,
  name: string | undefined,
): { name: string; repo: string } {
  if (second !== undefined) {
    if (name !== undefined && name !== first) {
      throw new ValidationError(`--name ${name} and NAME ${first} disagree`, {
        where: '--name',
        fix: 'give the name once: gc rig add PATH --name N',
      });
    }
    return { name: first, repo: second };
  }
  const derived = path
    .basename(path.resolve(first))
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63);
  return { name: name ?? derived, repo: first };
}

export async function add(
  g: GlobalOptions,
  name: string,
  repoPath: string,
  o: AddOptions,
): Promise<void> {
  refuseAgents('rigs');
  checkNewName(name);
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  if (loaded.config.rigs.some((r) => r.name === name)) {
    throw new AlreadyExistsError('rig', name);
  }
  // As Gas City: absolute as given, `.`-prefixed from here, anything else from the city root.
  const abs = path.isAbsolute(repoPath)
    ? repoPath
    : repoPath.startsWith('.')
      ? path.resolve(repoPath)
      : path.resolve(root, repoPath);
  const include = o.include ?? loaded.config.workspace.default_rig_includes;
  if (!existsSync(abs)) throw new ValidationError(`${abs} does not exist`, { where: 'PATH' });
  const git = new Git(abs);
  const top = await git.exec(['rev-parse', '--show-toplevel']);
  if (top.code !== 0) {
    throw new ValidationError(`${abs} is not a git repository`, {
      where: 'PATH',
      fix: `git init ${abs}, or give the path of an existing repository`,
    });
  }
  const target = o.target ?? 'main';
  const targetHead = await git.resolve(`refs/heads/${target}`);
  const workers = o.workers === undefined ? undefined : Number(o.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1 && workers <= 32)) {
    throw new ValidationError('must be 1..32', { where: '--workers' });
  }
  const gates = gatesOf(o);
  const { parseSource } = await import('../../config/index.js');
  for (const inc of include ?? []) {
    const src = parseSource(inc, root, root);
    if (src.kind === 'local' && !existsSync(path.join(src.dir, 'pack.toml'))) {
      throw new ValidationError(`no pack at ${src.dir} (it has no pack.toml)`, {
        where: '--include',
        fix: 'give the folder of a pack, relative to the city root (or //PATH), or a git URL',
      });
    }
  }
  const rel = path.relative(root, abs);
  const stored = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  const block =
    `\n[[rigs]]\nname = ${tomlString(name)}\npath = ${tomlString(stored)}\ntarget = ${tomlString(target)}\n` +
    (o.prefix ? `prefix = ${tomlString(o.prefix)}\n` : '') +
    (workers !== undefined ? `merge_workers = ${workers}\n` : '') +
    (include?.length ? `includes = [${include.map(tomlString).join(', ')}]\n` : '') +
    [...gates]
      .map(([gate, command]) => `[rigs.gates.${gate}]\ncommand = ${tomlString(command)}\n`)
      .join('');
  await rewrite(root, (text) => `${text.replace(/\n*$/, '\n')}${block}`);
  if (g.json) {
    printJson({
      name,
      path: stored,
      target,
      target_exists: targetHead !== undefined,
      includes: include ?? [],
      gates: Object.fromEntries(gates),
    });
    return;
  }
  printLine(
    `added rig ${name} (${abs}, target ${target})` +
      (gates.size ? `; gates: ${[...gates.keys()].join(', ')}` : '; no gates: add --test CMD'),
  );
  if (!targetHead) {
    process.stderr.write(
      `warning: ${abs} has no branch ${target} yet; the merge queue waits until it exists (or use --target)\n`,
    );
  }
  const current = await git.currentBranch();
  if (current === target) {
    process.stderr.write(
      `warning: ${target} is checked out in ${abs}; the merge queue moves that branch, so that checkout will look stale. Check out another branch there (or use a bare repository).\n`,
    );
  }
}

/** The plain `[[rigs]]` table of rig `name` in city.toml (not one from an include). */
function rigBlock(text: string, name: string): TableBlock {
  const block = tableBlocks(text, 'rigs').find((b) => b.name === name);
  if (!block) {
    throw new GcError(
      'unsupported',
      `rig ${name} is not a plain [[rigs]] table in city.toml (an include?); edit it by hand`,
    );
  }
  return block;
}

export async function remove(g: GlobalOptions, name: string): Promise<void> {
  refuseAgents('rigs');
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  if (!loaded.config.rigs.some((r) => r.name === name)) throw new NotFoundError('rig', name);
  // Agents stamped into the rig by its own includes go with it; others must move first.
  const users = loaded.config.agent
    .filter(
      (a, i) => a.dir === name && !loaded.origins[i]?.layers.includes(`stamped into rig ${name}`),
    )
    .map((a) => a.name);
  if (users.length) {
    throw new ConflictError(`agents ${users.join(', ')} work in rig ${name}`, {
      fix: 'remove those agents (or move them to another rig) first',
    });
  }
  await rewrite(root, (text) => {
    const block = rigBlock(text, name);
    const lines = text.split('\n');
    lines.splice(block.start, block.end - block.start);
    return lines.join('\n').replace(/\n{3,}/g, '\n\n');
  });
  if (g.json) printJson({ removed: name });
  else printLine(`removed rig ${name} (its repository and worktrees are left as they are)`);
}

/**
 * `gc rig suspend|resume NAME`: set the rig's `suspended` in city.toml. The
 * server watches the file: a suspended rig's agents are stopped and not
 * started again until it is resumed.
 */
export async function setSuspended(
  g: GlobalOptions,
  name: string,
  suspended: boolean,
): Promise<void> {
  refuseAgents('rigs');
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const { rigs } = (await loadCityConfig(path.join(root, 'city.toml'))).config;
  const rig = rigs.find((r) => r.name === name);
  if (!rig) {
    throw new NotFoundError('rig', name, { fix: 'gc rig list shows the rigs' });
  }
  if (rig.suspended !== suspended) {
    await rewrite(root, (text) =>
      setKey(text, rigBlock(text, name), 'suspended', String(suspended)),
    );
  }
  if (g.json) printJson({ rig: name, suspended });
  else printLine(`rig ${name} ${suspended ? 'suspended: its agents stop' : 'resumed'}`);
}

export async function list(g: GlobalOptions): Promise<void> {
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const { rigs } = (await loadCityConfig(path.join(root, 'city.toml'))).config;
  if (g.json) {
    printJson(rigs);
    return;
  }
  if (!rigs.length) {
    printLine('no rigs (gc rig add NAME PATH)');
    return;
  }
  printLine(
    table(
      ['NAME', 'PATH', 'TARGET', 'STYLE', 'WORKERS', 'GATES'],
      rigs.map((r) => [
        r.name,
        r.path,
        r.target,
        r.merge_style,
        String(r.merge_workers),
        Object.keys(r.gates).join(',') || '-',
      ]),
    ),
  );
}

export async function status(g: GlobalOptions, name: string | undefined): Promise<void> {
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const { rigs } = (await loadCityConfig(path.join(root, 'city.toml'))).config;
  const chosen = name ? rigs.filter((r) => r.name === name) : rigs;
  if (name && !chosen.length) throw new NotFoundError('rig', name);
  await withCity(
    g,
    'rig status',
    async (city) => {
      const stats = new Map((await city.mqStats()).map((s) => [s.rig, s]));
      const out = [];
      for (const r of chosen) {
        const abs = path.resolve(root, r.path);
        const git = new Git(abs);
        const exists = existsSync(abs);
        const head = exists
          ? await git.resolve(`refs/heads/${r.target}`).catch(() => undefined)
          : undefined;
        const wtDir = path.join(root, '.gc', 'worktrees', r.name);
        const worktrees = existsSync(wtDir) ? readdirSync(wtDir).length : 0;
        out.push({
          name: r.name,
          path: abs,
          exists,
          target: r.target,
          target_head: head ?? null,
          suspended: r.suspended,
          worktrees,
          mq: stats.get(r.name) ?? null,
        });
      }
      if (g.json) {
        printJson(out);
        return;
      }
      for (const s of out) {
        printLine(
          `${s.name}: ${s.path}${s.exists ? '' : ' (missing!)'}; ${s.target} at ${s.target_head?.slice(0, 10) ?? 'none'}; ${s.worktrees} session worktree(s)${s.suspended ? '; suspended' : ''}`,
        );
        if (s.mq) {
          printLine(
            `  merge queue: ${s.mq.depth} queued, ${s.mq.in_flight} in flight, ${s.mq.merged_total} merged (${s.mq.merged_last_hour} in the last hour), conflicts ${Math.round(s.mq.conflict_rate * 100)}%`,
          );
        }
      }
    },
    { readonly: true },
  );
}

/**
 * `gc rig restart NAME`: every running session of the rig's agents drains
 * and starts fresh (through the running city).
 */
export async function restart(g: GlobalOptions, name: string): Promise<void> {
  const city = await requireServer(g);
  const r = await city.call<{ rig: string; sessions: string[] }>(
    'POST',
    `/v0/rigs/${encodeURIComponent(name)}/restart`,
  );
  if (g.json) printJson(r);
  else
    printLine(
      r.sessions.length
        ? `restarting ${r.sessions.length} sessions of rig ${name}: ${r.sessions.join(', ')} (each drains, then starts fresh)`
        : `rig ${name} has no running sessions`,
    );
}
