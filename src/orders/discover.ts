/**
 * Where a city's orders are: each composed pack's `orders/` folder
 * (`<name>.toml`, or the legacy `<name>.order.toml`). A pack's orders count
 * only when the pack also has `formulas/` (as in Gas City); the city's own
 * folder always counts. A higher layer's order replaces a lower one of the
 * same name. The packs the city is made of give city orders; the packs a
 * rig includes or imports give that rig a copy of each of theirs, named
 * `<name>:rig:<rig>`, run in the rig's folder with its pool as `rig/pool`
 * (an order with `scope = "city"` is made once, for the city, instead).
 * city.toml's `[orders]` then skips some and changes others (`overrides`;
 * one naming no order is an error).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../core/index.js';
import { formatPath, type ConfigIssue, type LoadedConfig } from '../config/index.js';
import { buildOrder, orderName, readOrderRaw, type KeyOrigin, type RawOrder } from './parse.js';
import type { OrderSpec } from './types.js';

export interface Discovered {
  /** The valid orders, skipped ones included (`skipped` names them), by name. */
  orders: OrderSpec[];
  skipped: string[];
  /** Every mistake, in order files and in [orders]. */
  issues: ConfigIssue[];
}

interface Found {
  file: string;
  pack: string;
  packDir: string;
  shadows: string[];
}

interface Layer {
  name: string;
  dir: string;
}

/** The order files of some packs, listed highest first: a name's first holder wins. */
function orderFiles(packs: readonly Layer[], root: string, issues: ConfigIssue[]) {
  const found = new Map<string, Found>();
  for (const p of [...packs].reverse()) {
    const own = p.dir === root;
    const dir = path.join(p.dir, 'orders');
    if (!existsSync(dir)) continue;
    if (!own && !existsSync(path.join(p.dir, 'formulas'))) continue;
    const names = readdirSync(dir).sort(
      // A modern file wins over a legacy one of the same name in one folder.
      (a, b) => Number(b.endsWith('.order.toml')) - Number(a.endsWith('.order.toml')),
    );
    for (const f of names) {
      const file = path.join(dir, f);
      if (statSync(file).isDirectory()) {
        if (existsSync(path.join(file, 'order.toml'))) {
          issues.push({
            file: path.join(file, 'order.toml'),
            path: '',
            message: `the old folder layout: move it to orders/${f}.toml`,
          });
        }
        continue;
      }
      if (!f.endsWith('.toml')) continue;
      const name = orderName(f);
      const prev = found.get(name);
      found.set(name, {
        file,
        pack: own ? '' : p.name,
        packDir: p.dir,
        shadows: prev ? [...prev.shadows, prev.file] : [],
      });
    }
  }
  return found;
}

interface Candidate {
  base: string;
  rig: string;
  f: Found;
  r: RawOrder;
}

/** Every order of the city, with city.toml's [orders] applied. */
export function discoverOrders(
  loaded: Pick<LoadedConfig, 'root' | 'packs' | 'config' | 'sources' | 'file'>,
): Discovered {
  const issues: ConfigIssue[] = [];
  const cfg = loaded.config.orders;
  const root = loaded.root;
  const packs = loaded.packs?.length
    ? loaded.packs
    : [{ name: '', dir: root, bindings: [], city: true, rigs: [] }];
  const candidates: Candidate[] = [];
  const cityNames = new Set<string>();
  const cityFound = orderFiles(
    packs.filter((p) => p.city || p.dir === root),
    root,
    issues,
  );
  for (const [base, f] of cityFound) {
    const r = readOrderRaw(f.file, issues);
    if (!r) continue;
    candidates.push({ base, rig: '', f, r });
    cityNames.add(base);
  }
  for (const rig of loaded.config.rigs) {
    const rigFound = orderFiles(
      packs.filter((p) => p.rigs.includes(rig.name)),
      root,
      issues,
    );
    for (const [base, f] of rigFound) {
      const r = readOrderRaw(f.file, issues);
      if (!r) continue;
      if (r.raw.scope === 'city') {
        // Made once, for the city, however many rigs bring it in.
        if (!cityNames.has(base)) candidates.push({ base, rig: '', f, r });
        cityNames.add(base);
        continue;
      }
      candidates.push({ base, rig: rig.name, f, r });
    }
  }
  const rigDir = new Map(loaded.config.rigs.map((r) => [r.name, path.resolve(root, r.path)]));
  const at = (p: (string | number)[]): ConfigIssue => {
    const key = formatPath(p);
    const s = loaded.sources.get(key);
    return {
      file: s?.kind === 'file' ? s.file : loaded.file,
      path: key,
      ...(s?.kind === 'file' ? { line: s.line, col: s.col } : {}),
      message: '',
    };
  };
  const maxTimeoutMs = cfg.max_timeout ? parseDuration(cfg.max_timeout) : undefined;
  const overrides = cfg.overrides.map((o, i) => ({ o, i, used: false }));
  const orders: OrderSpec[] = [];
  for (const { base, rig, f, r } of candidates) {
    const name = rig ? `${base}:rig:${rig}` : base;
    const origin: KeyOrigin = new Map();
    for (const ov of overrides.filter((x) => x.o.name === base && (x.o.rig ?? '') === rig)) {
      ov.used = true;
      for (const [k, v] of Object.entries(ov.o)) {
        if (k === 'name' || k === 'rig' || v === undefined) continue;
        // A gate set one way replaces the file's other spelling.
        if (k === 'gate') delete r.raw.trigger;
        if (k === 'trigger') delete r.raw.gate;
        r.raw[k] = v;
        origin.set(k, at(['orders', 'overrides', ov.i, k]));
      }
    }
    const spec = buildOrder(
      r,
      {
        name,
        file: f.file,
        pack: f.pack,
        packDir: f.packDir,
        workDir: rig ? (rigDir.get(rig) ?? root) : root,
        ...(maxTimeoutMs !== undefined ? { maxTimeoutMs } : {}),
      },
      issues,
      origin,
    );
    if (!spec) continue;
    const pool = spec.pool && rig && !spec.pool.includes('/') ? `${rig}/${spec.pool}` : spec.pool;
    orders.push({
      ...spec,
      base,
      rig,
      ...(pool !== undefined ? { pool } : {}),
      shadows: f.shadows,
    });
  }
  const names = new Set(candidates.map((c) => c.base));
  for (const ov of overrides.filter((x) => !x.used)) {
    const where = ov.o.rig ? ` in rig ${ov.o.rig}` : '';
    issues.push({
      ...at(['orders', 'overrides', ov.i, 'name']),
      message: `override of "${ov.o.name}"${where}: no such order (${[...names].sort().join(', ') || 'none found'})`,
    });
  }
  const all = new Set([
    ...names,
    ...candidates.map((c) => (c.rig ? `${c.base}:rig:${c.rig}` : c.base)),
  ]);
  for (const [i, s] of cfg.skip.entries()) {
    if (!all.has(s))
      issues.push({ ...at(['orders', 'skip', i]), message: `skip "${s}": no such order` });
  }
  orders.sort((a, b) => a.name.localeCompare(b.name));
  const skip = new Set(cfg.skip);
  return {
    orders,
    skipped: orders.filter((o) => skip.has(o.name) || skip.has(o.base)).map((o) => o.name),
    issues,
  };
}

/** The city's agents as an order's pool may name them: `name`, or `binding.name` / `rig/name`. */
export function agentNames(
  loaded: Pick<LoadedConfig, 'config' | 'origins'>,
): { name: string; qualified?: string | undefined }[] {
  return loaded.config.agent.map((a, i) => ({
    name: a.name,
    qualified: loaded.origins[i]?.qualified,
  }));
}
