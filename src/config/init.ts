/**
 * `gc init`: create city.toml and the .gc/ state directory, and (for the
 * CLI) the layout of a working city: pack.toml, agents/ with a
 * coordinating agent and its prompt, formulas/ and orders/.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { AlreadyExistsError, NotFoundError, ValidationError, derivePrefix } from '../core/index.js';
import { CITY_FILE } from './load.js';

export interface InitOptions {
  dir: string;
  name?: string;
  force?: boolean;
  /** The scripted worker of this installation (examples/agents/worker.sh), for the sample agent. */
  workerScript?: string;
  /**
   * Scaffold a working city: a coordinating agent ("mayor") on this agent
   * CLI preset, its prompt in agents/mayor/, pack.toml, formulas/, orders/.
   */
  scaffold?: { provider: string };
  /**
   * Start from an existing city (a copy of it, without its .gc/ state) or
   * a pack (a new city whose own pack is a copy of it). No scaffold then.
   */
  from?: string;
}

/** What `gc init --from` never copies: state, history, installs. */
const NOT_COPIED = new Set(['.gc', '.git', 'node_modules']);

async function copyTree(src: string, dst: string): Promise<string[]> {
  const made: string[] = [];
  for (const e of (await readdir(src)).sort()) {
    if (NOT_COPIED.has(e)) continue;
    await cp(join(src, e), join(dst, e), {
      recursive: true,
      filter: (p) => !NOT_COPIED.has(basename(p)),
    });
    made.push(e);
  }
  return made;
}

/** Where `--from` points: a city (city.toml) or a pack (pack.toml). */
function fromKind(src: string): 'city' | 'pack' {
  if (!existsSync(src)) {
    throw new NotFoundError('city or pack', src, {
      fix: 'give the directory of a city (city.toml) or of a pack (pack.toml)',
    });
  }
  if (existsSync(join(src, CITY_FILE))) return 'city';
  if (existsSync(join(src, 'pack.toml'))) return 'pack';
  throw new ValidationError(`${src} holds neither city.toml nor pack.toml`, {
    where: '--from',
    fix: 'give the directory of a city (city.toml) or of a pack (pack.toml)',
  });
}

/** The coordinating agent `gc init` makes. */
export const COORDINATOR = 'mayor';

/** The coordinating agent's prompt (a template: see docs/controller.md, Prompts). */
export const COORDINATOR_PROMPT = `You are {{.SessionName}}, the coordinator of the city {{.CityName}} ({{.CityRoot}}).
You do not write code yourself: you turn what the humans ask for into work items
(beads), hand them to the agents of the city, and keep the humans informed.

- Humans write to you by mail: \`gc mail inbox\` reads it, \`gc mail reply <id> -m ...\` answers.
- Break a request into beads: \`gc bead create "<title>" -d "<what done looks like>"\`;
  order them with \`--needs <id>\` where one must land before another.
- Route each bead to an agent or pool: \`gc sling <agent> <bead>\` (\`gc config show\`
  lists the agents; \`gc rig list\` the projects they work in).
- Watch progress: \`gc bead list\`, \`gc status\`, \`gc mq list\` (merges), \`gc events\`.
- When an agent is stuck or a merge fails, read its mail and its bead, then
  re-route, split the bead, or ask the humans.
- If \`gc runtime drain-check\` exits 0, finish what you are doing, run
  \`gc runtime drain-ack\` and exit.
`;

export function cityTemplate(
  name: string,
  prefix: string,
  workerScript = '/path/to/gc/examples/agents/worker.sh',
  provider?: string,
): string {
  const coordinator = provider
    ? `
# The coordinating agent: takes requests by mail and routes the work.
# Its prompt: agents/${COORDINATOR}/prompt.template.md.
[[agent]]
name = "${COORDINATOR}"
provider = "${provider}"
prompt_template = "agents/${COORDINATOR}/prompt.template.md"
`
    : '';
  return `# Gas City configuration. Reference: docs/config.md
[workspace]
name = "${name}"
prefix = "${prefix}"

[daemon]
patrol_interval = "30s"
${coordinator}
# An agent pool: up to 4 scripted workers that take routed work.
# [[agent]]
# name = "worker"
# start_command = ${JSON.stringify(workerScript)}
# min_active_sessions = 0
# max_active_sessions = 4
`;
}

/** Create a city. Returns the absolute city root. Refuses to overwrite unless `force`. */
export async function initCity(options: InitOptions): Promise<{
  root: string;
  file: string;
  name: string;
  /** Scaffold files and directories made (relative to root). */
  made: string[];
  coordinator?: string;
  provider?: string;
  /** With `from`: the city or pack it was made from. */
  from?: string;
}> {
  const root = resolve(options.dir);
  const file = join(root, CITY_FILE);
  if (existsSync(file) && !options.force) {
    throw new AlreadyExistsError('city', root, {
      fix: 'pass --force to overwrite city.toml (beads and events in .gc/ are kept)',
    });
  }
  if (options.from !== undefined) return initFrom(options, root, file);
  const name = options.name ?? basename(root);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(name)) {
    throw new ValidationError(
      `city name ${JSON.stringify(name)} must use letters, digits, '-' and '_'; pass --name`,
      { where: '--name' },
    );
  }
  await mkdir(join(root, '.gc'), { recursive: true, mode: 0o700 });
  const provider = options.scaffold?.provider;
  await writeFile(
    file,
    cityTemplate(name, derivePrefix(name), options.workerScript, provider),
    'utf8',
  );
  await writeFile(join(root, '.gc', '.gitignore'), '*\n', 'utf8');
  const made: string[] = [];
  if (provider) {
    // What exists is kept (a --force re-init rewrites city.toml only).
    const keep = async (rel: string, text: string) => {
      const at = join(root, rel);
      if (existsSync(at)) return;
      await mkdir(dirname(at), { recursive: true });
      await writeFile(at, text, 'utf8');
      made.push(rel);
    };
    await keep(
      'pack.toml',
      `# The city's own pack: its agents/, formulas/ and orders/ live beside it.\n[pack]\nname = "${name}"\nschema = 2\n`,
    );
    await keep(join('agents', COORDINATOR, 'prompt.template.md'), COORDINATOR_PROMPT);
    for (const dir of ['formulas', 'orders']) {
      if (!existsSync(join(root, dir))) {
        await mkdir(join(root, dir));
        made.push(`${dir}/`);
      }
    }
  }
  return { root, file, name, made, ...(provider ? { coordinator: COORDINATOR, provider } : {}) };
}

/** `gc init --from SRC`: a copy of a city, or a new city around a copy of a pack. */
async function initFrom(
  options: InitOptions,
  root: string,
  file: string,
): Promise<{ root: string; file: string; name: string; made: string[]; from: string }> {
  const src = resolve(options.from!);
  const kind = fromKind(src);
  if (root === src || root.startsWith(src + sep) || src.startsWith(root + sep)) {
    throw new ValidationError(`${root} and ${src} overlap`, {
      where: '--from',
      fix: 'make the new city in a directory of its own',
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
  const made = await copyTree(src, root);
  if (kind === 'city') {
    // The copy is a new city: its own name (and bead prefix when it had none of its own).
    const text = await readFile(file, 'utf8');
    const renamed = renameWorkspace(text, name);
    if (renamed === undefined) {
      throw new ValidationError(`cannot find [workspace] name in ${file}`, {
        where: 'workspace.name',
        fix: 'set it by hand',
      });
    }
    await writeFile(file, renamed, 'utf8');
  } else {
    await writeFile(file, cityTemplate(name, derivePrefix(name), options.workerScript), 'utf8');
    made.push(CITY_FILE);
  }
  await writeFile(join(root, '.gc', '.gitignore'), '*\n', 'utf8');
  return { root, file, name, made, from: src };
}

/** city.toml text with [workspace] name set to `name`; undefined when it has no such line. */
export function renameWorkspace(text: string, name: string): string | undefined {
  const lines = text.split('\n');
  let table = '';
  for (let i = 0; i < lines.length; i++) {
    const header = /^\s*\[([^\]]+)\]\s*(#.*)?$/.exec(lines[i]!);
    if (header) {
      table = header[1]!.trim();
      continue;
    }
    if (table === 'workspace' && /^\s*name\s*=/.test(lines[i]!)) {
      lines[i] = `name = ${JSON.stringify(name)}`;
      return lines.join('\n');
    }
  }
  return undefined;
}
