/**
 * Where a city's formulas are: each composed pack's `formulas/` folder
 * (`<name>.toml`, or the legacy `<name>.formula.toml`). Layers, lowest
 * first: the packs the city includes and imports, then the city's own
 * folder; a formula of a higher layer replaces a lower one of the same
 * name (listed as shadowing it).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/index.js';
import { formulaName, readFormula } from './parse.js';
import type { FormulaSpec } from './types.js';

export interface FormulaFile {
  name: string;
  file: string;
  /** The pack it comes from ("" for the city's own folder). */
  pack: string;
  /** Lower layers' files of the same name, which this one replaces. */
  shadows: string[];
}

export function discoverFormulas(loaded: Pick<LoadedConfig, 'root' | 'packs'>): FormulaFile[] {
  const packs = loaded.packs?.length ? loaded.packs : [{ name: '', dir: loaded.root }];
  const found = new Map<string, FormulaFile>();
  // packs lists the city root first: walk it last, so it wins.
  for (const p of [...packs].reverse()) {
    const dir = path.join(p.dir, 'formulas');
    if (!existsSync(dir)) continue;
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.toml'))
      // A modern file wins over a legacy one of the same name in one folder.
      .sort((a, b) => Number(b.endsWith('.formula.toml')) - Number(a.endsWith('.formula.toml')));
    for (const f of files) {
      const name = formulaName(f);
      const file = path.join(dir, f);
      const prev = found.get(name);
      const pack = p.dir === loaded.root ? '' : p.name;
      found.set(name, { name, file, pack, shadows: prev ? [...prev.shadows, prev.file] : [] });
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** A resolver for `extends` and for commands naming a formula: parsed once each. */
export function formulaResolver(
  files: readonly FormulaFile[],
): (name: string) => FormulaSpec | undefined {
  const cache = new Map<string, FormulaSpec>();
  return (name) => {
    const f = files.find((x) => x.name === name);
    if (!f) return undefined;
    let spec = cache.get(name);
    if (!spec) cache.set(name, (spec = readFormula(f.file)));
    return spec;
  };
}
