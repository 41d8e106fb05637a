/**
 * `gc formula list|show|cook`: the formulas the city's packs and its own
 * `formulas/` folder give it (formula/discover.ts), one compiled into the
 * molecule a sling would make (formula/compile.ts), and one poured.
 */
import path from 'node:path';
import { loadCityConfig } from '../../config/index.js';
import {
  compileFormula,
  discoverFormulas,
  formulaResolver,
  type CompiledFormula,
} from '../../formula/index.js';
import { formulaArgs, pouredText } from './work.js';
import { cityRoot, withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';

async function formulasOf(g: GlobalOptions) {
  const root = cityRoot(g);
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  const files = discoverFormulas(loaded);
  return { root, files, resolve: formulaResolver(files) };
}

export async function list(g: GlobalOptions): Promise<void> {
  const { root, files, resolve } = await formulasOf(g);
  const rows = files.map((f) => {
    const spec = resolve(f.name)!;
    return {
      name: f.name,
      description: spec.description,
      steps: spec.steps.length,
      file: path.relative(root, f.file),
      pack: f.pack,
      shadows: f.shadows.map((s) => path.relative(root, s)),
    };
  });
  if (g.json) printJson(rows);
  else if (!rows.length) printLine('no formulas (add formulas/NAME.toml to the city or a pack)');
  else
    printLine(
      table(
        ['FORMULA', 'STEPS', 'FILE', 'DESCRIPTION'],
        rows.map((r) => [r.name, String(r.steps), r.file, r.description]),
      ),
    );
}

export async function show(g: GlobalOptions, name: string, pairs: string[]): Promise<void> {
  const { files } = await formulasOf(g);
  const { findFormula } = await import('../../dispatch/index.js');
  const { spec, resolve } = findFormula(files, name);
  const c = compileFormula(spec, { vars: formulaArgs({ var: pairs }).vars, resolve });
  if (g.json) printJson(c);
  else printLine(render(c));
}

/**
 * `gc formula cook NAME`: pour the formula as a molecule (one transaction)
 * and route nothing: its steps wait for whoever claims them, or for a
 * `gc sling` of single steps.
 */
export async function cook(
  g: GlobalOptions,
  name: string,
  o: { var?: string[]; on?: string; title?: string; wisp?: string | boolean },
): Promise<void> {
  const args = formulaArgs(o);
  await withCity(g, 'formula cook', async (city) => {
    const r = await city.slingFormula(null, {
      ...args,
      formula: name,
      ...(o.on !== undefined ? { on: o.on } : {}),
    });
    if (g.json) printJson(r);
    else printLine(pouredText(r));
  });
}

function render(c: CompiledFormula): string {
  const depth = (parent: string): number => {
    let d = 1;
    for (let p = parent; p !== c.root.id; d++)
      p = c.steps.find((s) => s.id === p)?.parent ?? c.root.id;
    return d;
  };
  const local = (id: string) => id.slice(c.root.id.length + 1);
  const lines = [`${c.root.id} (molecule): ${c.root.title}`];
  if (c.root.description) lines.push(`  ${c.root.description}`);
  lines.push(`Steps (${c.steps.length}):`);
  for (const s of c.steps) {
    const pad = '  '.repeat(depth(s.parent));
    const needs = s.needs.length ? `  needs: ${s.needs.map(local).join(', ')}` : '';
    lines.push(`${pad}${s.id} [${s.type}] ${s.title}${needs}`);
  }
  return lines.join('\n');
}
