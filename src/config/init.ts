/**
 * `gc init`: create city.toml and the .gc/ state directory, and (for the
 * CLI) the layout of a working city: pack.toml, agents/ with a
 * coordinating agent and its prompt, formulas/ and orders/.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AlreadyExistsError, ValidationError, derivePrefix } from '../core/index.js';
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
}> {
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
