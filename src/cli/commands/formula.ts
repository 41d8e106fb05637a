/**
 * `gc formula list|show`: the formulas the city's packs and its own
 * `formulas/` folder give it (formula/discover.ts), and one compiled into
 * the molecule a sling would make (formula/compile.ts).
 */
import path from 'node:path';
import { NotFoundError, ValidationError, suggest } from '../../core/index.js';
import { loadCityConfig } from '../../config/index.js';
import {
  compileFormula,
  discoverFormulas,
  formulaResolver,
  type CompiledFormula,
} from '../../formula/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
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

function parseVars(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) {
      throw new ValidationError(`expected KEY=VALUE, got ${JSON.stringify(p)}`, { where: '--var' });
    }
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

export async function show(g: GlobalOptions, name: string, pairs: string[]): Promise<void> {
  const vars = parseVars(pairs);
  const { files, resolve } = await formulasOf(g);
  const spec = resolve(name);
  if (!spec) {
    const guess = suggest(
      name,
      files.map((f) => f.name),
    );
    throw new NotFoundError('formula', name, {
      fix: guess
        ? `did you mean ${guess}? gc formula list shows them`
        : 'gc formula list shows them',
    });
  }
  const c = compileFormula(spec, { vars, resolve });
  if (g.json) printJson(c);
  else printLine(render(c));
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
