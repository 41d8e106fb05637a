/**
 * Where a city's orders are: each composed pack's `orders/` folder
 * (`<name>.toml`, or the legacy `<name>.order.toml`). A pack's orders count
 * only when the pack also has `formulas/` (as in Gas City); the city's own
 * folder always counts. A higher layer's order replaces a lower one of the
 * same name. city.toml's `[orders]` then skips some and changes others
 * (`overrides`; one naming no order is an error).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../core/index.js';
import { formatPath, type ConfigIssue, type LoadedConfig } from '../config/index.js';
import { buildOrder, orderName, readOrderRaw, type KeyOrigin } from './parse.js';
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

function orderFiles(loaded: Pick<LoadedConfig, 'root' | 'packs'>, issues: ConfigIssue[]) {
  const packs = loaded.packs?.length ? loaded.packs : [{ name: '', dir: loaded.root }];
  const found = new Map<string, Found>();
  // packs lists the city root first: walk it last, so it wins.
  for (const p of [...packs].reverse()) {
    const own = p.dir === loaded.root;
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

/** Every order of the city, with city.toml's [orders] applied. */
export function discoverOrders(
  loaded: Pick<LoadedConfig, 'root' | 'packs' | 'config' | 'sources' | 'file'>,
): Discovered {
  const issues: ConfigIssue[] = [];
  const cfg = loaded.config.orders;
  const found = orderFiles(loaded, issues);
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
  for (const [name, f] of found) {
    const r = readOrderRaw(f.file, issues);
    if (!r) continue;
    const origin: KeyOrigin = new Map();
    for (const ov of overrides.filter((x) => x.o.name === name && !x.o.rig)) {
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
        ...(maxTimeoutMs !== undefined ? { maxTimeoutMs } : {}),
      },
      issues,
      origin,
    );
    if (spec) orders.push({ ...spec, shadows: f.shadows });
  }
  for (const ov of overrides.filter((x) => !x.used)) {
    issues.push({
      ...at(['orders', 'overrides', ov.i, 'name']),
      message: ov.o.rig
        ? `override of "${ov.o.name}" in rig ${ov.o.rig}: rig copies of orders are not made by this build`
        : `override of "${ov.o.name}": no such order (${[...found.keys()].sort().join(', ') || 'none found'})`,
    });
  }
  const names = new Set(found.keys());
  for (const [i, s] of cfg.skip.entries()) {
    if (!names.has(s)) {
      issues.push({ ...at(['orders', 'skip', i]), message: `skip "${s}": no such order` });
    }
  }
  orders.sort((a, b) => a.name.localeCompare(b.name));
  return { orders, skipped: cfg.skip.filter((s) => names.has(s)), issues };
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
