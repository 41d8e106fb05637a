/**
 * The city's own pack (Gas City's layout): agents declared in the city's
 * pack.toml and agents discovered in its `agents/<name>/` folders join the
 * agents of city.toml. For a name defined twice, city.toml's [[agent]]
 * wins over pack.toml's, which wins over a discovered folder (REFERENCE.md
 * 9.1). A folder's agent is named after the folder; its agent.toml holds
 * its keys, and its prompt is `prompt.template.md` (else `prompt.md.tmpl`,
 * else `prompt.md`). Relative paths in either file resolve from the city
 * root, as in city.toml. What a pack may hold beyond that (imports,
 * includes, patches, named sessions, [global], overlays, name pools) is
 * reported as accepted but not supported in this build.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { keyPositions, type PathSegment, type Position } from './toml-positions.js';

/** An agent from a file other than city.toml, for parseCityConfig to validate. */
export interface ExtraAgent {
  raw: Record<string, unknown>;
  /** The file its keys are in. */
  file: string;
  /** Where its keys are in that file (`['agent', 0]` in pack.toml, `[]` in agent.toml). */
  prefix: PathSegment[];
  positions: Map<string, Position>;
}

export interface PackIssue {
  file: string;
  path: string;
  line?: number;
  col?: number;
  message: string;
}

export interface CityPack {
  agents: ExtraAgent[];
  warnings: PackIssue[];
  errors: PackIssue[];
}

const PROMPT_FILES = ['prompt.template.md', 'prompt.md.tmpl', 'prompt.md'];
const PACK_KEYS_SUPPORTED = new Set(['pack', 'agent']);

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readToml(
  file: string,
  errors: PackIssue[],
): Promise<{ raw: Raw; positions: Map<string, Position> } | undefined> {
  const source = await readFile(file, 'utf8');
  try {
    return { raw: parse(source), positions: keyPositions(source) };
  } catch (err) {
    if (err instanceof TomlError) {
      const first =
        err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'syntax error';
      errors.push({
        file,
        path: '',
        line: err.line,
        col: err.column,
        message: `TOML syntax error: ${first}`,
      });
      return undefined;
    }
    throw err;
  }
}

const at = (positions: Map<string, Position>, key: string) => {
  const p = positions.get(key);
  return p ? { line: p.line, col: p.col } : {};
};

/** The agents of the city's pack.toml and agents/ folders not already in city.toml. */
export async function cityPack(root: string, cityAgents: ReadonlySet<string>): Promise<CityPack> {
  const out: CityPack = { agents: [], warnings: [], errors: [] };
  const taken = new Set(cityAgents);
  const packFile = path.join(root, 'pack.toml');
  if (existsSync(packFile)) {
    const pack = await readToml(packFile, out.errors);
    if (pack) {
      const { raw, positions } = pack;
      const meta = raw.pack;
      if (!isObj(meta) || typeof meta.name !== 'string' || !meta.name) {
        out.errors.push({
          file: packFile,
          path: 'pack.name',
          ...at(positions, 'pack'),
          message: 'a pack needs [pack] name',
        });
      }
      if (isObj(meta) && meta.schema !== undefined) {
        if (typeof meta.schema !== 'number' || meta.schema < 1 || meta.schema > 2) {
          out.errors.push({
            file: packFile,
            path: 'pack.schema',
            ...at(positions, 'pack.schema'),
            message: `schema ${JSON.stringify(meta.schema)} is not supported (1 or 2)`,
          });
        }
      }
      for (const key of Object.keys(raw)) {
        if (PACK_KEYS_SUPPORTED.has(key)) continue;
        out.warnings.push({
          file: packFile,
          path: key,
          ...at(positions, key),
          message: `accepted, not supported in this build: [${key}] in a pack`,
        });
      }
      const agents = Array.isArray(raw.agent) ? raw.agent : [];
      agents.forEach((a, j) => {
        if (!isObj(a)) return;
        const name = typeof a.name === 'string' ? a.name : '';
        if (name && taken.has(name)) {
          out.warnings.push({
            file: packFile,
            path: `agent[${j}]`,
            ...at(positions, `agent[${j}].name`),
            message: `agent "${name}" is also in city.toml; city.toml's wins`,
          });
          return;
        }
        if (name) taken.add(name);
        out.agents.push({ raw: a, file: packFile, prefix: ['agent', j], positions });
      });
    }
  }
  const agentsDir = path.join(root, 'agents');
  if (!existsSync(agentsDir)) return out;
  for (const entry of (await readdir(agentsDir)).sort()) {
    if (entry.startsWith('.') || entry.startsWith('_')) continue;
    const dir = path.join(agentsDir, entry);
    if (!(await stat(dir)).isDirectory()) continue;
    if (taken.has(entry)) continue;
    const tomlFile = path.join(dir, 'agent.toml');
    let raw: Raw = {};
    let positions = new Map<string, Position>();
    let file = dir;
    if (existsSync(tomlFile)) {
      const t = await readToml(tomlFile, out.errors);
      if (!t) continue;
      ({ raw, positions } = t);
      file = tomlFile;
      if (raw.name !== undefined && raw.name !== entry) {
        out.errors.push({
          file: tomlFile,
          path: 'name',
          ...at(positions, 'name'),
          message: `name ${JSON.stringify(raw.name)} differs from its folder "${entry}" (the folder names the agent)`,
        });
        continue;
      }
    }
    raw = { ...raw, name: entry };
    if (raw.prompt_template === undefined) {
      const prompt = PROMPT_FILES.find((f) => existsSync(path.join(dir, f)));
      if (prompt) raw.prompt_template = path.posix.join('agents', entry, prompt);
    }
    for (const extra of ['overlay', 'namepool.txt']) {
      if (existsSync(path.join(dir, extra))) {
        out.warnings.push({
          file: path.join(dir, extra),
          path: `agents/${entry}`,
          message: `accepted, not supported in this build: an agent's ${extra}`,
        });
      }
    }
    taken.add(entry);
    out.agents.push({ raw, file, prefix: [], positions });
  }
  return out;
}
