/**
 * Reading one pack folder (Gas City's layout, REFERENCE.md 9.1): its
 * `pack.toml` (`[pack]` name, schema and includes, `[imports.B]`,
 * `[[agent]]`, `[[patches.agent]]`, `[[named_session]]`, `[global]`) and
 * its `agents/<name>/` folders (agent.toml, the prompt in
 * `prompt.template.md`, else `prompt.md.tmpl`, else `prompt.md`). A folder
 * is skipped when its name starts with `.` or `_`, or when pack.toml has an
 * `[[agent]]` of that name. compose.ts puts packs together.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import {
  formatPath,
  keyPositions,
  positionOf,
  type PathSegment,
  type Position,
} from './toml-positions.js';

/** An agent from a file other than city.toml, for parseCityConfig to validate. */
export interface ExtraAgent {
  raw: Record<string, unknown>;
  /** The file its keys are in. */
  file: string;
  /** Where its keys are in that file (`['agent', 0]` in pack.toml, `[]` in agent.toml). */
  prefix: PathSegment[];
  positions: Map<string, Position>;
  /** Keys set by a patch, [global] or a named session: where that was written. */
  setBy?: Map<string, { file: string; path: PathSegment[]; positions: Map<string, Position> }>;
  origin?: AgentOrigin;
}

/** Where a composed agent came from, for `gc config show` and `gc config explain`. */
export interface AgentOrigin {
  /** The name Gas City users write: `name`, `binding.name`, `rig/name`, `rig/binding.name`. */
  qualified: string;
  /** The pack that defined it (its name), when not city.toml. */
  pack?: string;
  /** Each layer that shaped it, first to last: "pack base (packs/base/pack.toml)", "patch city.toml:12", ... */
  layers: string[];
}

export interface PackIssue {
  file: string;
  path: string;
  line?: number;
  col?: number;
  message: string;
}

/** A reference to another pack, where it was written. */
export interface PackRef {
  ref: string;
  file: string;
  path: string;
  line?: number;
  col?: number;
  /** The folder the reference is relative to. */
  base: string;
}

export interface PackImport extends PackRef {
  binding: string;
  transitive: boolean;
  shadow: 'warn' | 'silent';
}

/** A table (patch, named session) and where it was written. */
export interface PackTable {
  raw: Record<string, unknown>;
  file: string;
  prefix: PathSegment[];
  positions: Map<string, Position>;
}

export interface Pack {
  dir: string;
  name: string;
  /** pack.toml, or the folder when it has none (the city root). */
  file: string;
  includes: PackRef[];
  imports: PackImport[];
  agents: ExtraAgent[];
  patches: PackTable[];
  namedSessions: PackTable[];
  global: PackTable | undefined;
  requires: PackTable[];
}

const PROMPT_FILES = ['prompt.template.md', 'prompt.md.tmpl', 'prompt.md'];
const PACK_KEYS = new Set(['pack', 'agent', 'imports', 'patches', 'named_session', 'global']);
/** Agent keys holding paths, relative to the pack that declares them. */
const PATH_KEYS = ['prompt_template', 'session_setup_script', 'overlay_dir', 'namepool'];

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function readToml(
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

export function issueAt(
  file: string,
  positions: Map<string, Position>,
  at: PathSegment[],
  message: string,
): PackIssue {
  const p = positionOf(positions, at);
  return { file, path: formatPath(at), ...(p ? { line: p.line, col: p.col } : {}), message };
}

/** Paths an agent of the pack at `dir` names, made relative to the city root. */
function rebase(raw: Raw, dir: string, root: string): Raw {
  if (dir === root) return raw;
  const out = { ...raw };
  for (const k of PATH_KEYS) {
    const v = out[k];
    if (typeof v === 'string' && v) out[k] = path.relative(root, path.resolve(dir, v));
  }
  return out;
}

/** The references a table lists under `key` (an array of strings). */
export function refsAt(
  raw: Raw,
  key: string,
  at: PathSegment[],
  file: string,
  positions: Map<string, Position>,
  base: string,
  errors: PackIssue[],
): PackRef[] {
  const v = raw[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x)) {
    errors.push(issueAt(file, positions, [...at, key], 'expected a list of pack paths or URLs'));
    return [];
  }
  return (v as string[]).map((ref, i) => ({
    ref,
    base,
    ...issueAt(file, positions, [...at, key, i], ''),
  }));
}

/** The `[imports.B]` tables of `raw[key]` (at `at` in `file`). */
export function importsAt(
  raw: Raw,
  at: PathSegment[],
  file: string,
  positions: Map<string, Position>,
  base: string,
  errors: PackIssue[],
): PackImport[] {
  const v = raw.imports;
  if (v === undefined) return [];
  if (!isObj(v)) {
    errors.push(issueAt(file, positions, [...at, 'imports'], 'expected [imports.NAME] tables'));
    return [];
  }
  const out: PackImport[] = [];
  for (const [binding, imp] of Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) {
    const where = [...at, 'imports', binding];
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(binding)) {
      errors.push(issueAt(file, positions, where, 'import names use letters, digits, - and _'));
      continue;
    }
    if (!isObj(imp) || typeof imp.source !== 'string' || !imp.source) {
      errors.push(issueAt(file, positions, where, 'an import needs source = "PATH_OR_URL"'));
      continue;
    }
    if (imp.shadow !== undefined && imp.shadow !== 'warn' && imp.shadow !== 'silent') {
      errors.push(issueAt(file, positions, [...where, 'shadow'], 'expected "warn" or "silent"'));
      continue;
    }
    out.push({
      ref: imp.source,
      base,
      binding,
      transitive: imp.transitive !== false,
      shadow: imp.shadow === 'silent' ? 'silent' : 'warn',
      ...issueAt(file, positions, [...where, 'source'], ''),
    });
  }
  return out;
}

/** The tables of `raw[key]` (an array of tables) at `at`. */
export function tablesAt(
  raw: unknown,
  at: PathSegment[],
  file: string,
  positions: Map<string, Position>,
  errors: PackIssue[],
): PackTable[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || !raw.every(isObj)) {
    errors.push(issueAt(file, positions, at, 'expected an array of tables ([[...]])'));
    return [];
  }
  return raw.map((t, i) => ({ raw: t, file, prefix: [...at, i], positions }));
}

/**
 * The pack in `dir`. `root` is the city root: its pack.toml is optional,
 * any other pack needs one. Problems go to `errors` and `warnings`.
 */
export async function readPack(
  dir: string,
  root: string,
  errors: PackIssue[],
  warnings: PackIssue[],
): Promise<Pack | undefined> {
  const file = path.join(dir, 'pack.toml');
  const pack: Pack = {
    dir,
    name: path.basename(dir),
    file: dir,
    includes: [],
    imports: [],
    agents: [],
    patches: [],
    namedSessions: [],
    global: undefined,
    requires: [],
  };
  const taken = new Set<string>();
  if (existsSync(file)) {
    const t = await readToml(file, errors);
    if (!t) return undefined;
    const { raw, positions } = t;
    pack.file = file;
    const meta = raw.pack;
    if (!isObj(meta) || typeof meta.name !== 'string' || !meta.name) {
      errors.push({
        ...issueAt(file, positions, ['pack'], ''),
        path: 'pack.name',
        message: 'a pack needs [pack] name',
      });
      return undefined;
    }
    pack.name = meta.name;
    if (meta.schema !== undefined) {
      if (typeof meta.schema !== 'number' || meta.schema < 1 || meta.schema > 2) {
        errors.push(
          issueAt(
            file,
            positions,
            ['pack', 'schema'],
            `schema ${JSON.stringify(meta.schema)} is not supported (1 or 2)`,
          ),
        );
      }
    }
    pack.includes = refsAt(meta, 'includes', ['pack'], file, positions, dir, errors);
    pack.requires = tablesAt(meta.requires, ['pack', 'requires'], file, positions, errors);
    pack.imports = importsAt(raw, [], file, positions, dir, errors);
    for (const key of Object.keys(raw)) {
      if (PACK_KEYS.has(key)) continue;
      warnings.push(
        issueAt(
          file,
          positions,
          [key],
          `accepted, not supported in this build: [${key}] in a pack`,
        ),
      );
    }
    const patches = isObj(raw.patches) ? raw.patches : {};
    pack.patches = tablesAt(patches.agent, ['patches', 'agent'], file, positions, errors);
    pack.namedSessions = tablesAt(raw.named_session, ['named_session'], file, positions, errors);
    if (raw.global !== undefined) {
      if (isObj(raw.global)) pack.global = { raw: raw.global, file, prefix: ['global'], positions };
      else errors.push(issueAt(file, positions, ['global'], 'expected a [global] table'));
    }
    for (const t of tablesAt(raw.agent, ['agent'], file, positions, errors)) {
      const name = typeof t.raw.name === 'string' ? t.raw.name : '';
      if (name && taken.has(name)) {
        errors.push(
          issueAt(
            file,
            positions,
            [...t.prefix, 'name'],
            `agent "${name}" is defined twice in this pack`,
          ),
        );
        continue;
      }
      if (name) taken.add(name);
      pack.agents.push({ ...t, raw: rebase(t.raw, dir, root) });
    }
  } else if (dir !== root) {
    errors.push({ file: dir, path: '', message: 'not a pack: it has no pack.toml' });
    return undefined;
  }
  await readAgentFolders(dir, root, taken, pack.agents, errors);
  return pack;
}

async function readAgentFolders(
  dir: string,
  root: string,
  taken: Set<string>,
  out: ExtraAgent[],
  errors: PackIssue[],
): Promise<void> {
  const agentsDir = path.join(dir, 'agents');
  if (!existsSync(agentsDir)) return;
  for (const entry of (await readdir(agentsDir)).sort()) {
    if (entry.startsWith('.') || entry.startsWith('_')) continue;
    const folder = path.join(agentsDir, entry);
    if (!(await stat(folder)).isDirectory()) continue;
    if (taken.has(entry)) continue;
    const tomlFile = path.join(folder, 'agent.toml');
    let raw: Raw = {};
    let positions = new Map<string, Position>();
    let file = folder;
    if (existsSync(tomlFile)) {
      const t = await readToml(tomlFile, errors);
      if (!t) continue;
      ({ raw, positions } = t);
      file = tomlFile;
      if (raw.name !== undefined && raw.name !== entry) {
        errors.push(
          issueAt(
            tomlFile,
            positions,
            ['name'],
            `name ${JSON.stringify(raw.name)} differs from its folder "${entry}" (the folder names the agent)`,
          ),
        );
        continue;
      }
    }
    raw = { ...raw, name: entry };
    // Paths in agent.toml resolve from the pack (from the city root in the city's own pack).
    raw = rebase(raw, dir, root);
    if (raw.prompt_template === undefined) {
      const prompt = PROMPT_FILES.find((f) => existsSync(path.join(folder, f)));
      if (prompt) raw.prompt_template = path.relative(root, path.join(folder, prompt));
    }
    if (raw.overlay_dir === undefined && existsSync(path.join(folder, 'overlay'))) {
      raw.overlay_dir = path.relative(root, path.join(folder, 'overlay'));
    }
    if (raw.namepool === undefined && existsSync(path.join(folder, 'namepool.txt'))) {
      raw.namepool = path.relative(root, path.join(folder, 'namepool.txt'));
    }
    taken.add(entry);
    out.push({ raw, file, prefix: [], positions });
  }
}
