/**
 * The city's composition (REFERENCE.md 9.1), on top of the Composer
 * (compose.ts): city packs (includes, then imports sorted by binding) ->
 * city patches -> rig packs -> rig patches -> [global], then the names
 * users write (`rig/name`, `binding.name`) turned into session names.
 */
import {
  importsAt,
  issueAt,
  refsAt,
  tablesAt,
  type ExtraAgent,
  type Pack,
  type PackImport,
  type PackIssue,
  type PackTable,
} from './pack.js';
import { Composer, agentName, key, type Scoped, type Unit } from './compose.js';
import { formatPath, type PathSegment, type Position } from './toml-positions.js';

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Composed {
  agents: ExtraAgent[];
  warnings: PackIssue[];
  errors: PackIssue[];
  /** Keys of city.toml composition consumed (no "unknown key" warning for them). */
  handled: (path: readonly PathSegment[]) => boolean;
  /** `[global] session_live` of the city (city.toml, its pack.toml), for city.toml's own agents too. */
  globalLive: string[];
  /** Every pack composed (the city root first), for pack doctor scripts and the like. */
  packs?: ComposedPack[];
}

/** A pack the city is made of: its name, folder and the bindings it was imported under. */
export interface ComposedPack {
  name: string;
  dir: string;
  bindings: string[];
  /** The city itself is made of it (its own folder, includes, imports). */
  city: boolean;
  /** The rigs whose includes or imports bring it in. */
  rigs: string[];
}

type SetBy = NonNullable<ExtraAgent['setBy']> extends Map<string, infer V> ? V : never;

function finish(u: Unit, rig: string | undefined, stamp: SetBy | undefined): ExtraAgent {
  const qualified = `${rig ? `${rig}/` : ''}${key(u)}`;
  const raw = u.agent.raw;
  raw.name = agentName(rig, key(u));
  if (rig) {
    raw.dir = rig;
    if (stamp) u.agent.setBy!.set('dir', stamp);
  }
  const origin = u.agent.origin!;
  return {
    ...u.agent,
    origin: {
      ...origin,
      qualified,
      layers: rig ? [...origin.layers, `stamped into rig ${rig}`] : origin.layers,
    },
  };
}

/**
 * The agents city.toml's packs give the city at `root`, beyond its own
 * `[[agent]]` entries (`cityRaw` is city.toml parsed, `file` its path).
 */
export async function composeCity(
  root: string,
  file: string,
  cityRaw: Raw,
  positions: Map<string, Position>,
  env: NodeJS.ProcessEnv,
): Promise<Composed> {
  const c = new Composer(root, env, isObj(cityRaw.packs) ? cityRaw.packs : {});
  const handled = (p: readonly PathSegment[]): boolean => {
    const [a, , k] = p;
    if (p.length === 1)
      return ['imports', 'packs', 'patches', 'named_session', 'global'].includes(String(a));
    return a === 'rigs' && p.length === 3 && ['includes', 'imports', 'patches'].includes(String(k));
  };
  const globalLive: string[] = [];
  const done = (agents: ExtraAgent[]): Composed => ({
    agents,
    warnings: c.warnings,
    errors: c.errors,
    handled,
    globalLive,
  });
  const rootPack = await c.pack(root);
  if (!rootPack) return done([]);
  const ws = isObj(cityRaw.workspace) ? cityRaw.workspace : {};
  const cityImports = importsAt(cityRaw, [], file, positions, root, c.errors);
  const bound = new Set(cityImports.map((i) => i.binding));
  for (const i of rootPack.imports) {
    if (bound.has(i.binding)) {
      c.warnings.push({
        file: i.file,
        path: i.path,
        message: `import "${i.binding}" is also in city.toml; city.toml's wins`,
      });
    }
  }
  const cityPack: Pack = {
    ...rootPack,
    includes: [
      ...refsAt(ws, 'includes', ['workspace'], file, positions, root, c.errors),
      ...rootPack.includes,
    ],
    imports: [...cityImports, ...rootPack.imports.filter((i) => !bound.has(i.binding))].sort(
      (x, y) => x.binding.localeCompare(y.binding),
    ),
  };
  const city = await c.expand(cityPack, [], undefined);
  const cityTables = (k: string, at: PathSegment[], v: unknown) =>
    v === undefined
      ? []
      : tablesAt(v, at, file, positions, c.errors).map((table) => ({
          table,
          binding: undefined,
          k,
        }));
  // city.toml's own [[agent]] entries win over the composed ones of the same name.
  const inline = new Set(
    (Array.isArray(cityRaw.agent) ? cityRaw.agent : []).flatMap((a) =>
      isObj(a) && typeof a.name === 'string' ? [a.name] : [],
    ),
  );
  let units = city.units.filter((u) => {
    if (!inline.has(u.bare)) return true;
    const own = u.packDir === root && !u.binding;
    if (own && u.agent.prefix.length === 0) return false; // an agents/ folder: silently replaced
    if (u.shadow === 'warn') {
      c.warnings.push({
        file: u.agent.file,
        path: formatPath([...u.agent.prefix, 'name']),
        message: own
          ? `agent "${u.bare}" is also in city.toml; city.toml's wins`
          : `city.toml's agent "${u.bare}" shadows ${u.binding ? `"${key(u)}" (both run)` : 'this one'} from pack ${u.packName}${u.binding ? `; set shadow = "silent" on [imports.${u.binding}] to quiet this` : ''}`,
      });
    }
    return Boolean(u.binding);
  });
  const cityNamed = [
    ...city.named,
    ...cityTables('named_session', ['named_session'], cityRaw.named_session),
  ];
  // A patch naming a named session applies once that session exists (after
  // the others, so the session also inherits its patched template).
  const namedNames = (named: readonly Scoped[]) =>
    new Set(named.map((n) => n.table.raw.name).filter((n): n is string => typeof n === 'string'));
  const sessionNames = namedNames(cityNamed);
  const patchName = (t: PackTable) =>
    typeof t.raw.name === 'string'
      ? t.raw.name
      : typeof t.raw.agent === 'string'
        ? t.raw.agent
        : '';
  const patches = isObj(cityRaw.patches) ? cityRaw.patches : {};
  const cityPatches = cityTables('patch', ['patches', 'agent'], patches.agent).map((p) => p.table);
  for (const table of cityPatches.filter((t) => !sessionNames.has(patchName(t)))) {
    const name = patchName(table);
    if (inline.has(name) && !units.some((u) => key(u) === name)) {
      c.errors.push({
        ...issueAt(file, positions, [...table.prefix, 'name'], ''),
        message: `agent "${name}" is defined in city.toml: change it there instead of patching it`,
      });
      continue;
    }
    c.patch(units, table, 'city');
  }
  units = units.filter((u) => u.agent.raw.scope !== 'rig');
  units.push(...c.namedSessions(units, cityNamed, 'city'));
  for (const table of cityPatches.filter((t) => sessionNames.has(patchName(t)))) {
    c.patch(units, table, 'city');
  }
  c.requirements(units, city.requires, 'city', inline);
  const cityGlobals: PackTable[] = [
    ...(rootPack.global ? [rootPack.global] : []),
    ...(isObj(cityRaw.global)
      ? [{ raw: cityRaw.global, file, prefix: ['global'], positions }]
      : []),
  ];
  for (const g of city.globals) if (!cityGlobals.includes(g)) c.global(units, g);
  const agents: { u: Unit; rig?: string; stamp?: SetBy }[] = units.map((u) => ({ u }));
  const cityDirs = new Set(city.packs);
  const rigDirs = new Map<string, Set<string>>();

  const rigs = Array.isArray(cityRaw.rigs) ? cityRaw.rigs : [];
  for (const [i, rig] of rigs.entries()) {
    if (!isObj(rig) || typeof rig.name !== 'string') continue;
    const at: PathSegment[] = ['rigs', i];
    const rigPack: Pack = {
      dir: `${root}#rig:${rig.name}`,
      name: `rig ${rig.name}`,
      file,
      includes: refsAt(rig, 'includes', at, file, positions, root, c.errors),
      // transitive = false is ignored on a rig's imports (as in Gas City).
      imports: importsAt(rig, at, file, positions, root, c.errors).map((x): PackImport => ({
        ...x,
        transitive: true,
      })),
      agents: [],
      patches: [],
      namedSessions: [],
      global: undefined,
      requires: [],
    };
    if (!rigPack.includes.length && !rigPack.imports.length) continue;
    const e = await c.expand(rigPack, [], undefined);
    for (const d of e.packs) {
      if (d !== rigPack.dir) rigDirs.set(d, (rigDirs.get(d) ?? new Set()).add(rig.name));
    }
    let rigUnits = e.units.filter((u) => u.agent.raw.scope !== 'city');
    const rigSessions = namedNames(e.named);
    const rigPatches = tablesAt(rig.patches, [...at, 'patches'], file, positions, c.errors);
    for (const t of rigPatches.filter((t) => !rigSessions.has(patchName(t)))) {
      c.patch(rigUnits, t, 'rig', rig.name);
    }
    rigUnits = [...rigUnits, ...c.namedSessions(rigUnits, e.named, 'rig')];
    for (const t of rigPatches.filter((t) => rigSessions.has(patchName(t)))) {
      c.patch(rigUnits, t, 'rig', rig.name);
    }
    c.requirements(rigUnits, e.requires, 'rig', new Set());
    for (const g of e.globals) c.global(rigUnits, g);
    const stamp = { file, path: [...at, 'name'], positions };
    agents.push(...rigUnits.map((u) => ({ u, rig: rig.name as string, stamp })));
  }
  const all = agents.map((x) => x.u);
  for (const g of cityGlobals) {
    c.global(all, g);
    const live = g.raw.session_live;
    if (Array.isArray(live))
      globalLive.push(...live.filter((x): x is string => typeof x === 'string'));
  }
  const packs = (await Promise.all(c.packList())).flatMap((p) =>
    p
      ? [
          {
            name: p.name,
            dir: p.dir,
            bindings: [...(c.bindings.get(p.dir) ?? [])].sort(),
            city: cityDirs.has(p.dir),
            rigs: [...(rigDirs.get(p.dir) ?? [])],
          },
        ]
      : [],
  );
  return { ...done(agents.map(({ u, rig, stamp }) => finish(u, rig, stamp))), packs };
}
