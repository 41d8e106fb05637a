/**
 * Loading city.toml: TOML parse -> env overrides -> unknown-key warnings ->
 * schema validation -> cross-field checks. Every problem is reported with
 * file:line:col and the key path; every effective value knows its source.
 */
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { GcError, parseDuration, suggest } from '../core/index.js';
import { composeCity, type Composed, type ComposedPack } from './compose-city.js';
import { readFragments } from './fragments.js';
import type { AgentOrigin } from './pack.js';
import { citySchema, type CityConfig } from './schema.js';
import {
  formatPath,
  keyPositions,
  positionOf,
  type PathSegment,
  type Position,
} from './toml-positions.js';

export { CITY_FILE, findCityRoot } from '../core/index.js';

export interface ConfigIssue {
  file: string;
  path: string;
  line?: number;
  col?: number;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line !== undefined ? `${i.file}:${i.line}:${i.col ?? 1}` : i.file;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

/** city.toml is invalid. `issues` lists every problem found, each with its position. */
export class ConfigError extends GcError {
  readonly issues: ConfigIssue[];
  constructor(
    issues: ConfigIssue[],
    fix = 'edit city.toml at the positions shown, then run `gc config validate`',
  ) {
    super('config', issues.map(formatIssue).join('\n'), { details: { issues }, fix });
    this.issues = issues;
  }
}

export type ValueSource =
  | { kind: 'file'; file: string; line: number; col: number }
  | { kind: 'env'; name: string }
  | { kind: 'default' };

export interface LoadedConfig {
  file: string;
  /** Directory holding city.toml. */
  root: string;
  config: CityConfig;
  warnings: ConfigIssue[];
  /** Source of every effective leaf value, keyed by path (`daemon.patrol_interval`). */
  sources: Map<string, ValueSource>;
  /** Where each agent came from (same order as config.agent). */
  origins: AgentOrigin[];
  /** The packs composed, the city root first (loadCityConfig only). */
  packs?: ComposedPack[];
}

/** What pack composition adds to city.toml (compose.ts). */
export type CityExtras = Pick<Composed, 'agents'> &
  Partial<Pick<Composed, 'handled' | 'globalLive'>>;

/** Environment variables that override keys (Gas City compatible). */
export const ENV_OVERRIDES: readonly {
  name: string;
  path: PathSegment[];
  type: 'string' | 'port' | 'bool' | 'json';
}[] = [
  { name: 'GC_SESSION', path: ['session', 'provider'], type: 'string' },
  { name: 'GC_BEADS', path: ['beads', 'provider'], type: 'string' },
  { name: 'GC_MAIL', path: ['mail', 'provider'], type: 'string' },
  { name: 'GC_EVENTS', path: ['events', 'provider'], type: 'string' },
  { name: 'GC_DATABASE_URL', path: ['database', 'url'], type: 'string' },
  { name: 'GC_K8S_NAMESPACE', path: ['session', 'k8s', 'namespace'], type: 'string' },
  { name: 'GC_K8S_IMAGE', path: ['session', 'k8s', 'image'], type: 'string' },
  { name: 'GC_K8S_CONTEXT', path: ['session', 'k8s', 'context'], type: 'string' },
  { name: 'GC_K8S_CPU_REQUEST', path: ['session', 'k8s', 'cpu_request'], type: 'string' },
  { name: 'GC_K8S_MEM_REQUEST', path: ['session', 'k8s', 'mem_request'], type: 'string' },
  { name: 'GC_K8S_CPU_LIMIT', path: ['session', 'k8s', 'cpu_limit'], type: 'string' },
  { name: 'GC_K8S_MEM_LIMIT', path: ['session', 'k8s', 'mem_limit'], type: 'string' },
  { name: 'GC_K8S_DOLT_HOST', path: ['session', 'k8s', 'dolt_host'], type: 'string' },
  { name: 'GC_K8S_DOLT_PORT', path: ['session', 'k8s', 'dolt_port'], type: 'port' },
  { name: 'GC_K8S_API_URL', path: ['session', 'k8s', 'api_url'], type: 'string' },
  { name: 'GC_API_PORT', path: ['api', 'port'], type: 'port' },
  { name: 'GC_API_BIND', path: ['api', 'bind'], type: 'string' },
  { name: 'GC_K8S_SERVICE_ACCOUNT', path: ['session', 'k8s', 'service_account'], type: 'string' },
  { name: 'GC_K8S_PREBAKED', path: ['session', 'k8s', 'prebaked'], type: 'bool' },
  { name: 'GC_K8S_NODE_SELECTOR', path: ['session', 'k8s', 'node_selector'], type: 'json' },
];

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}
const defOf = (s: z.ZodType): SchemaDef => (s as unknown as { _zod: { def: SchemaDef } })._zod.def;

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const d = defOf(s);
    if (
      (d.type === 'optional' ||
        d.type === 'default' ||
        d.type === 'prefault' ||
        d.type === 'nullable') &&
      d.innerType
    ) {
      s = d.innerType;
    } else return s;
  }
}

/** Warn about (and drop) keys the schema does not know, suggesting the closest known key. */
function checkUnknownKeys(
  raw: unknown,
  schema: z.ZodType,
  path: PathSegment[],
  onUnknown: (path: PathSegment[], hint: string | undefined) => void,
): void {
  const s = unwrap(schema);
  const d = defOf(s);
  if (d.type === 'object' && d.shape && isObj(raw)) {
    for (const key of Object.keys(raw)) {
      const child = d.shape[key];
      if (!child) {
        onUnknown([...path, key], suggest(key, Object.keys(d.shape)));
        delete raw[key];
      } else checkUnknownKeys(raw[key], child, [...path, key], onUnknown);
    }
  } else if (d.type === 'array' && d.element && Array.isArray(raw)) {
    raw.forEach((v, i) => checkUnknownKeys(v, d.element as z.ZodType, [...path, i], onUnknown));
  } else if (d.type === 'record' && d.valueType && isObj(raw)) {
    for (const [k, v] of Object.entries(raw))
      checkUnknownKeys(v, d.valueType, [...path, k], onUnknown);
  }
}

/**
 * Gas City keys gc reads but does not act on yet (docs/gascity.md): the
 * key's name as a Gas City user writes it, or undefined for a key that is
 * simply unknown.
 */
/** Agent CLIs gc installs hooks for (install_agent_hooks; runtime/agent-hooks.ts). */
const HOOK_PROVIDERS: readonly string[] = ['claude'];

const GAS_CITY_KEYS: Record<string, readonly string[]> = {
  '': ['formulas'],
  daemon: ['formula_v2'],
};

function gasCityKey(path: readonly PathSegment[]): string | undefined {
  const names = path.filter((p): p is string => typeof p === 'string');
  const key = names[names.length - 1];
  const table = names.length === 1 ? '' : names.length === 2 ? names[0]! : undefined;
  if (key === undefined || table === undefined) return undefined;
  return GAS_CITY_KEYS[table]?.includes(key) ? (table ? `${table}.${key}` : key) : undefined;
}

function setPath(raw: Raw, path: PathSegment[], value: unknown): void {
  let cur: Raw = raw;
  for (const seg of path.slice(0, -1)) {
    const key = String(seg);
    if (!isObj(cur[key])) cur[key] = {};
    cur = cur[key] as Raw;
  }
  cur[String(path[path.length - 1])] = value;
}

function friendly(message: string, code: string, received: unknown): string {
  if (code === 'invalid_type' && received === undefined) return 'required key is missing';
  const m = /^Invalid input: expected (\w+), received (\w+)$/.exec(message);
  if (m)
    return `expected a ${m[1]}, got a ${m[2]}${received !== undefined ? ` (${JSON.stringify(received)})` : ''}`;
  return message.replace(/^Invalid input: /, '');
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/**
 * Parse and validate city.toml text. Pure: no file system access.
 * Throws ConfigError listing every problem.
 */
export function parseCityConfig(
  source: string,
  file: string,
  env: NodeJS.ProcessEnv = {},
  extras: CityExtras = { agents: [] },
): LoadedConfig {
  const extra = extras.agents;
  let raw: Raw;
  try {
    raw = parse(source);
  } catch (err) {
    if (err instanceof TomlError) {
      const first =
        err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'syntax error';
      throw new ConfigError([
        { file, path: '', line: err.line, col: err.column, message: `TOML syntax error: ${first}` },
      ]);
    }
    throw err;
  }
  const positions = keyPositions(source);
  // Agents from the city's pack.toml and agents/ folders follow city.toml's own.
  const own = Array.isArray(raw.agent) ? raw.agent.length : 0;
  if (extras.globalLive?.length && Array.isArray(raw.agent)) {
    for (const a of raw.agent as unknown[]) {
      if (!isObj(a)) continue;
      a.session_live = [
        ...(Array.isArray(a.session_live) ? (a.session_live as unknown[]) : []),
        ...extras.globalLive,
      ];
    }
  }
  if (extra.length)
    raw.agent = [
      ...(Array.isArray(raw.agent) ? (raw.agent as unknown[]) : []),
      ...extra.map((e) => e.raw),
    ];
  /** The file and in-file path of a config path (an extra agent's key is in its own file). */
  const locate = (
    path: readonly PathSegment[],
  ): { file: string; path: PathSegment[]; pos: Position | undefined } => {
    const i = path[0] === 'agent' && typeof path[1] === 'number' ? path[1] - own : -1;
    const e = i >= 0 ? extra[i] : undefined;
    if (e) {
      const set =
        e.setBy?.get(`${String(path[2])}.${String(path[3])}`) ?? e.setBy?.get(String(path[2]));
      if (set) return { file: set.file, path: set.path, pos: positionOf(set.positions, set.path) };
      const inFile = [...e.prefix, ...path.slice(2)];
      return { file: e.file, path: inFile, pos: positionOf(e.positions, inFile) };
    }
    return { file, path: [...path], pos: positionOf(positions, path) };
  };
  const issueAt = (path: PathSegment[], message: string): ConfigIssue => {
    const l = locate(path);
    return {
      file: l.file,
      path: formatPath(l.file === file ? path : l.path),
      ...(l.pos ? { line: l.pos.line, col: l.pos.col } : {}),
      message,
    };
  };

  const warnings: ConfigIssue[] = [];
  checkUnknownKeys(raw, citySchema, [], (path, hint) => {
    if (extras.handled?.(path)) return;
    const gasCity = gasCityKey(path);
    warnings.push(
      issueAt(
        path,
        gasCity
          ? `accepted, not supported in this build: ${gasCity} (a Gas City key; see docs/gascity.md)`
          : `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; ignored`,
      ),
    );
  });

  const envSet = new Map<string, string>();
  const envIssues: ConfigIssue[] = [];
  for (const o of ENV_OVERRIDES) {
    const v = env[o.name];
    if (v === undefined || v === '') continue;
    let value: unknown = v;
    if (o.type === 'port') {
      value = Number(v);
      if (!Number.isInteger(value)) {
        envIssues.push({
          file: `env ${o.name}`,
          path: formatPath(o.path),
          message: `expected a port number, got ${JSON.stringify(v)}`,
        });
        continue;
      }
    }
    if (o.type === 'bool') {
      if (v !== 'true' && v !== 'false') {
        envIssues.push({
          file: `env ${o.name}`,
          path: formatPath(o.path),
          message: `expected true or false, got ${JSON.stringify(v)}`,
        });
        continue;
      }
      value = v === 'true';
    }
    if (o.type === 'json') {
      try {
        value = JSON.parse(v);
      } catch {
        envIssues.push({
          file: `env ${o.name}`,
          path: formatPath(o.path),
          message: `expected a JSON object, got ${JSON.stringify(v)}`,
        });
        continue;
      }
    }
    setPath(raw, o.path, value);
    envSet.set(formatPath(o.path), o.name);
  }

  const result = citySchema.safeParse(raw);
  const issues: ConfigIssue[] = [...envIssues];
  if (!result.success) {
    for (const i of result.error.issues) {
      const path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
      const envName = envSet.get(formatPath(path));
      const received = valueAt(raw, path);
      const msg = friendly(i.message, i.code, received);
      issues.push(
        envName
          ? { file: `env ${envName}`, path: formatPath(path), message: msg }
          : issueAt(path, msg),
      );
    }
    throw new ConfigError(issues);
  }
  const config = result.data;
  issues.push(...crossChecks(config, issueAt, warnings));
  if (issues.length) throw new ConfigError(issues);

  const sources = new Map<string, ValueSource>();
  collectSources(
    config,
    [],
    (path) => {
      const key = formatPath(path);
      const envName = envSet.get(key);
      if (envName) return { kind: 'env', name: envName };
      const l = locate(path);
      if (valueAt(raw, path) !== undefined) {
        if (l.pos) return { kind: 'file', file: l.file, line: l.pos.line, col: l.pos.col };
        // Set by discovery (an agent folder's name or prompt), not written in a file.
        if (l.file !== file) return { kind: 'file', file: l.file, line: 0, col: 0 };
      }
      return { kind: 'default' };
    },
    sources,
  );
  const origins = config.agent.map(
    (a, i): AgentOrigin =>
      (i >= own ? extra[i - own]?.origin : undefined) ?? {
        qualified: a.dir ? `${a.dir}/${a.name}` : a.name,
        layers: [
          i < own ? 'city.toml' : relative(dirname(resolve(file)), locate(['agent', i]).file),
        ],
      },
  );
  return { file, root: dirname(resolve(file)), config, warnings, sources, origins };
}

function crossChecks(
  config: CityConfig,
  issueAt: (path: PathSegment[], message: string) => ConfigIssue,
  warnings: ConfigIssue[],
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const agents = new Map<string, number>();
  config.agent.forEach((a, i) => {
    const prev = agents.get(a.name);
    if (prev !== undefined)
      issues.push(
        issueAt(['agent', i, 'name'], `duplicate agent name "${a.name}" (first at agent[${prev}])`),
      );
    else agents.set(a.name, i);
    (a.install_agent_hooks ?? []).forEach((h, j) => {
      if (!HOOK_PROVIDERS.includes(h)) {
        warnings.push(
          issueAt(
            ['agent', i, 'install_agent_hooks', j],
            `accepted, not supported in this build: hooks for "${h}" (gc installs hooks for ${HOOK_PROVIDERS.join(', ')})`,
          ),
        );
      }
    });
    if (a.max_active_sessions !== undefined && a.min_active_sessions > a.max_active_sessions) {
      issues.push(
        issueAt(
          ['agent', i, 'min_active_sessions'],
          `min_active_sessions (${a.min_active_sessions}) is greater than max_active_sessions (${a.max_active_sessions})`,
        ),
      );
    }
  });
  const rigs = new Map<string, number>();
  config.rigs.forEach((r, i) => {
    const prev = rigs.get(r.name);
    if (prev !== undefined)
      issues.push(
        issueAt(['rigs', i, 'name'], `duplicate rig name "${r.name}" (first at rigs[${prev}])`),
      );
    else rigs.set(r.name, i);
  });
  config.agent.forEach((a, i) => {
    (a.depends_on ?? []).forEach((dep, j) => {
      if (!agents.has(dep)) {
        const hint = suggest(dep, agents.keys());
        issues.push(
          issueAt(
            ['agent', i, 'depends_on', j],
            `unknown agent "${dep}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
          ),
        );
      }
    });
    if (a.dir !== undefined && config.rigs.length > 0 && !rigs.has(a.dir)) {
      const hint = suggest(a.dir, rigs.keys());
      warnings.push(
        issueAt(
          ['agent', i, 'dir'],
          `no rig named "${a.dir}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
        ),
      );
    }
  });
  return issues;
}

function collectSources(
  value: unknown,
  path: PathSegment[],
  sourceOf: (path: PathSegment[]) => ValueSource,
  out: Map<string, ValueSource>,
): void {
  if (isObj(value)) {
    for (const [k, v] of Object.entries(value)) collectSources(v, [...path, k], sourceOf, out);
  } else if (Array.isArray(value) && value.some(isObj)) {
    value.forEach((v, i) => collectSources(v, [...path, i], sourceOf, out));
  } else {
    out.set(formatPath(path), sourceOf(path));
  }
}

/** Read and validate `<root>/city.toml`. */
export async function loadCityConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<LoadedConfig> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    throw new GcError('not_found', `cannot read ${file}: ${(err as Error).message}`, {
      fix: 'run `gc init` to create a city, or cd into one',
    });
  }
  // Its syntax errors are parseCityConfig's to report.
  let raw: Raw;
  try {
    raw = parse(source);
  } catch {
    return parseCityConfig(source, file, env);
  }
  const root = dirname(resolve(file));
  const positions = keyPositions(source);
  // include = [fragments]: more of city.toml's own agents, each at its file and line.
  const frags = await readFragments(root, raw, file, positions);
  if (frags.errors.length) throw new ConfigError(frags.errors);
  const own = Array.isArray(raw.agent) ? (raw.agent as unknown[]) : [];
  const cityRaw = frags.agents.length
    ? { ...raw, agent: [...own, ...frags.agents.map((a) => a.raw)] }
    : raw;
  const composed = await composeCity(root, file, cityRaw, positions, env);
  if (composed.errors.length) throw new ConfigError(composed.errors);
  for (const a of frags.agents) {
    if (!composed.globalLive?.length) break;
    const live = Array.isArray(a.raw.session_live) ? (a.raw.session_live as unknown[]) : [];
    a.raw.session_live = [...live, ...composed.globalLive];
  }
  const loaded = parseCityConfig(source, file, env, {
    ...composed,
    agents: [...frags.agents, ...composed.agents],
  });
  return {
    ...loaded,
    warnings: [...loaded.warnings, ...composed.warnings],
    packs: composed.packs ?? [],
  };
}

/** Milliseconds of a validated duration string. */
export function ms(duration: string): number {
  return parseDuration(duration);
}
