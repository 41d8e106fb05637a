/**
 * Pack composition, the building blocks (REFERENCE.md 9.1; compose-city.ts puts a city together): the agents a city gets from its own
 * pack, the packs it includes and imports, and the packs each rig includes
 * and imports, in Gas City's order: city packs (includes, then imports
 * sorted by binding) -> city patches -> rig packs -> rig patches ->
 * [global]. Inside a pack: included agents, then its own, then its patches.
 *
 * Names: an agent keeps its name when included, is `binding.name` when
 * imported (the top binding replaces nested ones), and is `rig/name` or
 * `rig/binding.name` when stamped into a rig. Those qualified names are what
 * users write; the agent's session name (`name` in the composed config)
 * spells `/` as `--` and `.` as `-` (tmux allows neither in session names).
 */
import path from 'node:path';
import {
  issueAt,
  readPack,
  type ExtraAgent,
  type Pack,
  type PackIssue,
  type PackRef,
  type PackTable,
} from './pack.js';
import { packDir, parseSource, readLock, LOCK_FILE, type LockEntry } from './pack-source.js';
import { formatPath } from './toml-positions.js';

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Unit {
  agent: ExtraAgent;
  bare: string;
  binding: string | undefined;
  packDir: string;
  packName: string;
  viaImport: boolean;
  /** How an inline city.toml agent of the same bare name is reported. */
  shadow: 'warn' | 'silent';
}

export interface Scoped {
  table: PackTable;
  binding: string | undefined;
}

interface Expansion {
  units: Unit[];
  named: Scoped[];
  globals: PackTable[];
  requires: Scoped[];
  /** Every pack folder the expansion went through, itself included. */
  packs: string[];
}

export const key = (u: { bare: string; binding: string | undefined }) =>
  u.binding ? `${u.binding}.${u.bare}` : u.bare;

/** The session-safe name of a qualified agent name. */
export function agentName(rig: string | undefined, qualified: string): string {
  return `${rig ? `${rig}--` : ''}${qualified.replaceAll('.', '-')}`;
}

const POOL_KEYS = ['max_active_sessions', 'min_active_sessions', 'scale_check'];
const MATCH_KEYS = new Set(['name', 'dir', 'agent']);

export class Composer {
  readonly errors: PackIssue[] = [];
  readonly warnings: PackIssue[] = [];
  private readonly packs = new Map<string, Promise<Pack | undefined>>();
  private lock: Map<string, LockEntry> = new Map();

  constructor(
    readonly root: string,
    readonly env: NodeJS.ProcessEnv,
    private readonly named: Raw,
  ) {
    try {
      this.lock = readLock(root);
    } catch (e) {
      this.errors.push({
        file: path.join(root, LOCK_FILE),
        path: '',
        message: `cannot read: ${(e as Error).message}`,
      });
    }
  }

  rel(p: string): string {
    return path.relative(this.root, p) || '.';
  }

  packList(): Promise<Pack | undefined>[] {
    return [...this.packs.values()];
  }

  /** The bindings each pack folder was imported under (its commands run as `gc <binding> <w>`). */
  readonly bindings = new Map<string, Set<string>>();

  pack(dir: string): Promise<Pack | undefined> {
    let p = this.packs.get(dir);
    if (!p) {
      p = readPack(dir, this.root, this.errors, this.warnings);
      this.packs.set(dir, p);
    }
    return p;
  }

  /** The folder of the pack `ref` names; undefined (with an error or, for an include, a warning) when missing. */
  resolve(ref: PackRef, required: boolean): string | undefined {
    let text = ref.ref;
    const alias = this.named[text];
    if (isObj(alias) && typeof alias.source === 'string') {
      text = alias.source;
      if (typeof alias.path === 'string' && alias.path) text += `//${alias.path}`;
      if (typeof alias.ref === 'string' && alias.ref) text += `#${alias.ref}`;
    }
    const src = parseSource(text, ref.base, this.root);
    const found = packDir(src, this.lock, this.env);
    if ('dir' in found) return found.dir;
    const issue = {
      file: ref.file,
      path: ref.path,
      ...(ref.line !== undefined ? { line: ref.line, col: ref.col } : {}),
    };
    if (required) {
      const fix =
        src.kind === 'git'
          ? 'run `gc pack fetch` to pin and cache it'
          : `check the path (relative to ${this.rel(ref.base)}, or //PATH from the city root)`;
      this.errors.push({
        ...issue,
        message: `cannot find pack ${ref.ref}: ${found.missing}; ${fix}`,
      });
    } else {
      this.warnings.push({ ...issue, message: `include skipped: ${ref.ref}: ${found.missing}` });
    }
    return undefined;
  }

  /** The agents (and named sessions, globals, requirements) of `pack` with everything it includes and imports. */
  async expand(pack: Pack, stack: readonly string[], via: PackRef | undefined): Promise<Expansion> {
    const out: Expansion = { units: [], named: [], globals: [], requires: [], packs: [] };
    if (stack.includes(pack.dir)) {
      const cycle = [...stack.slice(stack.indexOf(pack.dir)), pack.dir].map((d) => this.rel(d));
      this.errors.push({
        file: via?.file ?? pack.file,
        path: via?.path ?? '',
        ...(via?.line !== undefined ? { line: via.line, col: via.col } : {}),
        message: `pack cycle: ${cycle.join(' -> ')}; remove one of these includes or imports`,
      });
      return out;
    }
    const next = [...stack, pack.dir];
    const take = (e: Expansion, binding?: string, transitive = true) => {
      let units = e.units;
      if (binding !== undefined) {
        if (!transitive) units = units.filter((u) => !u.viaImport);
        units = units.map((u) => ({ ...u, binding, viaImport: true }));
      }
      this.merge(out.units, units);
      const bind = (s: Scoped) => (binding === undefined ? s : { ...s, binding });
      out.named.push(...e.named.map(bind));
      out.requires.push(...e.requires.map(bind));
      out.globals.push(...e.globals);
      out.packs.push(...e.packs);
    };
    for (const inc of pack.includes) {
      const dir = this.resolve(inc, false);
      const p = dir === undefined ? undefined : await this.pack(dir);
      if (p) take(await this.expand(p, next, inc));
    }
    for (const imp of pack.imports) {
      const dir = this.resolve(imp, true);
      const p = dir === undefined ? undefined : await this.pack(dir);
      if (!p) continue;
      this.bindings.set(p.dir, (this.bindings.get(p.dir) ?? new Set()).add(imp.binding));
      const e = await this.expand(p, next, imp);
      for (const u of e.units) u.shadow = imp.shadow;
      take(e, imp.binding, imp.transitive);
    }
    this.merge(
      out.units,
      pack.agents.map((a) => this.unit(a, pack)),
    );
    for (const patch of pack.patches) this.patch(out.units, patch, 'pack');
    out.named.push(...pack.namedSessions.map((table) => ({ table, binding: undefined })));
    out.requires.push(...pack.requires.map((table) => ({ table, binding: undefined })));
    if (pack.global) out.globals.push(pack.global);
    out.packs.push(pack.dir);
    return out;
  }

  unit(a: ExtraAgent, pack: Pack): Unit {
    const raw = structuredClone(a.raw);
    const bare = typeof raw.name === 'string' ? raw.name : '';
    const where = this.rel(a.file);
    return {
      agent: {
        ...a,
        raw,
        setBy: new Map(),
        origin: {
          qualified: bare,
          ...(pack.dir === this.root ? {} : { pack: pack.name }),
          layers: [
            pack.dir === this.root ? `city pack (${where})` : `pack ${pack.name} (${where})`,
          ],
        },
      },
      bare,
      binding: undefined,
      packDir: pack.dir,
      packName: pack.name,
      viaImport: false,
      shadow: 'warn',
    };
  }

  /** Add `incoming` to `into`: one name from two packs is an error unless one side has fallback = true. */
  merge(into: Unit[], incoming: readonly Unit[]): void {
    for (const u of incoming) {
      const i = into.findIndex((x) => key(x) === key(u));
      if (i < 0) {
        into.push(u);
        continue;
      }
      const prev = into[i]!;
      if (prev.packDir === u.packDir) continue; // the same pack reached twice
      const fb = (x: Unit) => x.agent.raw.fallback === true;
      if (fb(prev) && !fb(u)) into[i] = u;
      else if (fb(u)) continue;
      else {
        const at = (x: Unit) => `${this.rel(x.agent.file)} (pack ${x.packName})`;
        this.errors.push({
          ...issueAt(u.agent.file, u.agent.positions, [...u.agent.prefix, 'name'], ''),
          message: `agent "${key(u)}" is defined by two packs, ${at(prev)} and ${at(u)}; rename one, import one under a binding, or set fallback = true on the one that should yield`,
        });
      }
    }
  }

  /** Apply one `[[patches.agent]]` (kind pack or city) or rig patch to the agent it names. */
  patch(units: Unit[], t: PackTable, kind: 'pack' | 'city' | 'rig', rig?: string): void {
    const name =
      typeof t.raw.name === 'string'
        ? t.raw.name
        : typeof t.raw.agent === 'string'
          ? t.raw.agent
          : '';
    const at = (k: string) => issueAt(t.file, t.positions, [...t.prefix, k], '');
    if (!name) {
      this.errors.push({ ...at('name'), message: 'a patch needs name = "AGENT"' });
      return;
    }
    if (kind === 'city' && typeof t.raw.dir === 'string' && t.raw.dir) {
      this.errors.push({
        ...at('dir'),
        message: `city patches run before rigs are composed and cannot reach rig agents; put this patch in [[rigs.patches]] of rig "${t.raw.dir}"`,
      });
      return;
    }
    let found = units.filter((u) => key(u) === name);
    if (!found.length) found = units.filter((u) => u.bare === name);
    if (found.length !== 1) {
      const names = units.map(key);
      this.errors.push({
        ...at(typeof t.raw.name === 'string' ? 'name' : 'agent'),
        message: found.length
          ? `patch target "${name}" is ambiguous (${found.map(key).join(', ')}); write the binding`
          : `no agent "${name}" to patch${rig ? ` in rig ${rig}` : ''} (there: ${names.join(', ') || 'none'})`,
      });
      return;
    }
    const u = found[0]!;
    const raw = u.agent.raw;
    for (const [k, v] of Object.entries(t.raw)) {
      if (MATCH_KEYS.has(k)) continue;
      let target = k;
      if (k.endsWith('_append')) {
        target = k.slice(0, -'_append'.length);
        const cur = raw[target];
        if (!Array.isArray(v) || (cur !== undefined && !Array.isArray(cur))) {
          this.errors.push({
            ...at(k),
            message: `${k} appends to a list, and ${target} is not one`,
          });
          continue;
        }
        raw[target] = [...((cur as unknown[] | undefined) ?? []), ...(v as unknown[])];
      } else if (k === 'env' && isObj(v) && isObj(raw.env)) {
        raw.env = { ...raw.env, ...v };
        for (const name of Object.keys(v)) {
          const where = [...t.prefix, k, name];
          u.agent.setBy!.set(`env.${name}`, { file: t.file, path: where, positions: t.positions });
        }
        continue;
      } else raw[k] = v;
      u.agent.setBy!.set(target, { file: t.file, path: [...t.prefix, k], positions: t.positions });
    }
    const pos = t.positions.get(formatPath(t.prefix));
    u.agent.origin!.layers.push(`patch ${this.rel(t.file)}${pos ? `:${pos.line}` : ''}`);
  }

  /** `[global] session_live` added to every agent of `units`. */
  global(units: Unit[], g: PackTable): void {
    const live = g.raw.session_live;
    if (live === undefined) return;
    if (!Array.isArray(live) || live.some((x) => typeof x !== 'string')) {
      this.errors.push(
        issueAt(g.file, g.positions, [...g.prefix, 'session_live'], 'expected a list of commands'),
      );
      return;
    }
    for (const u of units) {
      const cur = u.agent.raw.session_live;
      u.agent.raw.session_live = [
        ...(Array.isArray(cur) ? (cur as unknown[]) : []),
        ...(live as unknown[]),
      ];
      u.agent.setBy!.set('session_live', {
        file: g.file,
        path: [...g.prefix, 'session_live'],
        positions: g.positions,
      });
      u.agent.origin!.layers.push(`global ${this.rel(g.file)}`);
    }
  }

  /** The agents `[[named_session]]` entries make: one session of a template, named. */
  namedSessions(units: Unit[], named: readonly Scoped[], scope: 'city' | 'rig'): Unit[] {
    const out: Unit[] = [];
    for (const { table: t, binding } of named) {
      const r = t.raw;
      const at = (k: string) => issueAt(t.file, t.positions, [...t.prefix, k], '');
      if (r.scope !== undefined && r.scope !== 'city' && r.scope !== 'rig') {
        this.errors.push({ ...at('scope'), message: 'expected "city" or "rig"' });
        continue;
      }
      if (r.scope !== undefined && r.scope !== scope) continue;
      if (typeof r.template !== 'string' || !r.template || typeof r.name !== 'string' || !r.name) {
        this.errors.push({
          ...at('template'),
          message: 'a named session needs template = "AGENT" and name = "SESSION"',
        });
        continue;
      }
      const mode = r.mode ?? 'on_demand';
      if (mode !== 'always' && mode !== 'on_demand') {
        this.errors.push({ ...at('mode'), message: 'expected "always" or "on_demand"' });
        continue;
      }
      const bare = r.template.slice(r.template.lastIndexOf('.') + 1);
      const tpl =
        units.find((u) => u.bare === bare && u.binding === binding) ??
        units.find((u) => key(u) === r.template);
      if (!tpl) {
        this.errors.push({
          ...at('template'),
          message: `no agent "${r.template}" for named session "${r.name}" (there: ${units.map(key).join(', ') || 'none'})`,
        });
        continue;
      }
      const raw = structuredClone(tpl.agent.raw);
      for (const k of POOL_KEYS) delete raw[k];
      raw.name = r.name;
      raw.mode = mode;
      const pos = t.positions.get(formatPath(t.prefix));
      out.push({
        ...tpl,
        agent: {
          ...tpl.agent,
          raw,
          setBy: new Map([
            ...tpl.agent.setBy!,
            ['mode', { file: t.file, path: [...t.prefix, 'mode'], positions: t.positions }],
            ['name', { file: t.file, path: [...t.prefix, 'name'], positions: t.positions }],
          ]),
          origin: {
            ...tpl.agent.origin!,
            layers: [
              ...tpl.agent.origin!.layers,
              `named_session ${this.rel(t.file)}${pos ? `:${pos.line}` : ''} (template ${key(tpl)})`,
            ],
          },
        },
        bare: r.name,
        binding,
      });
    }
    return out;
  }

  requirements(
    units: readonly Unit[],
    reqs: readonly Scoped[],
    scope: 'city' | 'rig',
    extra: ReadonlySet<string>,
  ): void {
    for (const { table: t } of reqs) {
      const r = t.raw;
      if ((r.scope ?? 'city') !== scope || typeof r.agent !== 'string') continue;
      const want = r.agent;
      if (extra.has(want) || units.some((u) => key(u) === want || u.bare === want)) continue;
      this.errors.push({
        ...issueAt(t.file, t.positions, [...t.prefix, 'agent'], ''),
        message: `this pack requires agent "${want}" (scope ${scope}), and the composed ${scope} has none; add it or include a pack that defines it`,
      });
    }
  }
}
