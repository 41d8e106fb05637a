/**
 * `gc agent add|list|suspend|resume`: the city's agents as Gas City users
 * manage them. add writes an agent folder (`agents/<name>/`), list shows
 * every composed agent (city.toml, the city's pack, included and imported
 * packs, rig stamping), and suspend/resume set `suspended` where it takes
 * effect without touching a pack: in the agent's own city.toml table or
 * folder, else in a patch in city.toml (`[[patches.agent]]`, or the rig's
 * `[[rigs.patches]]` for an agent stamped into a rig). Each edit is checked
 * to load before it is kept; a running server picks it up by its config
 * watch.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AlreadyExistsError, NotFoundError, ValidationError, suggest } from '../../core/index.js';
import type { LoadedConfig } from '../../config/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';
import {
  checkNewName,
  insertLines,
  refuseAgents,
  setKey,
  tableBlocks,
  tomlString,
  writeChecked,
} from '../toml-edit.js';

async function load(root: string): Promise<LoadedConfig> {
  const { loadCityConfig } = await import('../../config/index.js');
  return loadCityConfig(path.join(root, 'city.toml'));
}

interface Row {
  agent: string;
  name: string;
  rig?: string;
  pack?: string;
  from: string;
  suspended: boolean;
  sessions: string;
  mode: string;
}

function rows(loaded: LoadedConfig): Row[] {
  const suspendedRigs = new Set(loaded.config.rigs.filter((r) => r.suspended).map((r) => r.name));
  return loaded.config.agent.map((a, i) => {
    const o = loaded.origins[i];
    const pool = a.max_active_sessions !== undefined || a.scale_check !== undefined;
    return {
      agent: o?.qualified ?? a.name,
      name: a.name,
      ...(a.dir ? { rig: a.dir } : {}),
      ...(o?.pack ? { pack: o.pack } : {}),
      from: o?.layers[0] ?? 'city.toml',
      suspended: a.suspended || (a.dir !== undefined && suspendedRigs.has(a.dir)),
      sessions: pool
        ? `${a.min_active_sessions}..${a.max_active_sessions ?? (a.scale_check ? 'scale_check' : 1)}`
        : '1',
      mode: a.mode ?? (a.idle_timeout || a.sleep_after_idle ? 'on_demand' : 'always'),
    };
  });
}

export async function list(g: GlobalOptions): Promise<void> {
  const { formatIssue } = await import('../../config/index.js');
  const loaded = await load(cityRoot(g));
  for (const w of loaded.warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
  const all = rows(loaded);
  if (g.json) {
    printJson(all);
    return;
  }
  if (!all.length) {
    printLine('no agents (gc agent add NAME creates one)');
    return;
  }
  printLine(
    table(
      ['AGENT', 'SESSION', 'RIG', 'SESSIONS', 'MODE', 'STATE', 'FROM'],
      all.map((r) => [
        r.agent,
        r.name,
        r.rig ?? '-',
        r.sessions,
        r.mode,
        r.suspended ? 'suspended' : 'active',
        r.from,
      ]),
    ),
  );
}

export interface AddOptions {
  rig?: string;
  provider?: string;
  startCommand?: string;
  prompt?: string;
}

/** `gc agent add NAME`: a new agent folder, `agents/NAME/` with its prompt (and agent.toml for any keys given). */
export async function add(g: GlobalOptions, name: string, o: AddOptions): Promise<void> {
  refuseAgents('agents');
  checkNewName(name);
  const root = cityRoot(g);
  const loaded = await load(root);
  const i = loaded.config.agent.findIndex((a) => a.name === name);
  if (i >= 0) {
    throw new AlreadyExistsError('agent', name, {
      fix: `it comes from ${loaded.origins[i]?.layers[0] ?? 'city.toml'}; pick another name`,
    });
  }
  if (o.rig !== undefined && !loaded.config.rigs.some((r) => r.name === o.rig)) {
    const hint = suggest(
      o.rig,
      loaded.config.rigs.map((r) => r.name),
    );
    throw new NotFoundError('rig', o.rig, {
      fix: hint ? `did you mean ${hint}?` : 'gc rig list shows the rigs; gc rig add creates one',
    });
  }
  const dir = path.join(root, 'agents', name);
  if (existsSync(dir)) {
    throw new AlreadyExistsError('agent folder', path.relative(root, dir), {
      fix: 'a folder of that name exists but defines no agent (a name starting with . or _ is skipped); remove it or pick another name',
    });
  }
  await mkdir(dir, { recursive: true });
  const keys = [
    ...(o.rig ? [`dir = ${tomlString(o.rig)}`] : []),
    ...(o.provider ? [`provider = ${tomlString(o.provider)}`] : []),
    ...(o.startCommand ? [`start_command = ${tomlString(o.startCommand)}`] : []),
  ];
  const prompt =
    o.prompt ??
    `You are {{.Agent}}${o.rig ? ', working in rig {{.Rig}} ({{.WorkDir}})' : ''} in the city {{.CityName}}.\n\nRun \`gc hook\` to see your work, \`gc mail check\` for messages.\n`;
  try {
    await writeFile(
      path.join(dir, 'prompt.template.md'),
      prompt.endsWith('\n') ? prompt : `${prompt}\n`,
    );
    if (keys.length) await writeChecked(root, path.join(dir, 'agent.toml'), `${keys.join('\n')}\n`);
    else await load(root);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const files = ['prompt.template.md', ...(keys.length ? ['agent.toml'] : [])].map((f) =>
    path.join('agents', name, f),
  );
  if (g.json) printJson({ agent: name, ...(o.rig ? { rig: o.rig } : {}), files });
  else printLine(`added agent ${name}: ${files.join(', ')}`);
}

/** `gc agent suspend|resume AGENT`. */
export async function setSuspended(
  g: GlobalOptions,
  ref: string,
  suspended: boolean,
): Promise<void> {
  refuseAgents('agents');
  const root = cityRoot(g);
  const loaded = await load(root);
  const { requireAgent } = await import('../names.js');
  const agents = loaded.config.agent.map((a, i) => ({
    name: a.name,
    rig: a.dir,
    qualified: loaded.origins[i]?.qualified,
    i,
  }));
  const { i } = requireAgent(agents, ref);
  const a = loaded.config.agent[i]!;
  const origin = loaded.origins[i]!;
  const cityFile = path.join(root, 'city.toml');
  let where: string;
  if (a.suspended !== suspended) {
    const text = await readFile(cityFile, 'utf8');
    const first = origin.layers[0] ?? '';
    const folder = /^city pack \((agents\/[^/]+\/agent\.toml)\)$/.exec(first)?.[1];
    const own = tableBlocks(text, 'agent').find((b) => b.name === a.name);
    if (first === 'city.toml' && own) {
      where = 'city.toml';
      await writeChecked(root, cityFile, setKey(text, own, 'suspended', String(suspended)));
    } else if (folder && !origin.layers.some((l) => l.startsWith('patch '))) {
      where = folder;
      const file = path.join(root, folder);
      const body = await readFile(file, 'utf8');
      const edited = /^suspended\s*=.*$/m.test(body)
        ? body.replace(/^suspended\s*=.*$/m, `suspended = ${suspended}`)
        : `${body.replace(/\n*$/, '\n')}suspended = ${suspended}\n`;
      await writeChecked(root, file, edited);
    } else if (a.dir && origin.layers.includes(`stamped into rig ${a.dir}`)) {
      // A rig's patch names the agent as its pack does (binding.name or name).
      const key = origin.qualified.slice(a.dir.length + 1);
      const rig = tableBlocks(text, 'rigs').find((b) => b.name === a.dir);
      if (!rig)
        throw new ValidationError(`rig ${a.dir} is not a plain [[rigs]] table in city.toml`);
      const patch = tableBlocks(text.split('\n').slice(0, rig.end).join('\n'), 'rigs.patches', [
        'agent',
        'name',
      ]).find((b) => b.start > rig.start && b.name === key);
      where = `city.toml [[rigs.patches]] of rig ${a.dir}`;
      await writeChecked(
        root,
        cityFile,
        patch
          ? setKey(text, patch, 'suspended', String(suspended))
          : insertLines(text, rig.end, [
              '[[rigs.patches]]',
              `agent = ${tomlString(key)}`,
              `suspended = ${suspended}`,
            ]),
      );
    } else {
      const key = origin.qualified;
      const patch = tableBlocks(text, 'patches.agent').find((b) => b.name === key);
      where = 'city.toml [[patches.agent]]';
      await writeChecked(
        root,
        cityFile,
        patch
          ? setKey(text, patch, 'suspended', String(suspended))
          : `${text.replace(/\n*$/, '\n')}\n[[patches.agent]]\nname = ${tomlString(key)}\nsuspended = ${suspended}\n`,
      );
    }
  } else where = 'unchanged';
  if (g.json) printJson({ agent: origin.qualified, name: a.name, suspended, where });
  else
    printLine(
      `agent ${origin.qualified} ${suspended ? 'suspended: its sessions stop' : 'resumed'}${where === 'unchanged' ? ' (already)' : ` (${where})`}`,
    );
}
