/**
 * Import rules from ARCHITECTURE.md, checked on every CI run:
 * 1. No import cycles between files in src/ (type-only imports included).
 * 2. A module imports another module only through its index.ts.
 * 3. Dependencies point down the layers; nothing imports cli.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '..', 'src');

/** Lower rank = lower layer. A module may import only modules of lower rank. */
const RANK: Record<string, number> = {
  core: 0,
  config: 1,
  store: 1,
  events: 1,
  mail: 2,
  city: 2,
  runtime: 1,
  git: 1,
  telemetry: 1,
  controller: 3,
  dispatch: 3,
  refinery: 3,
  patrol: 3,
  api: 4,
  client: 5,
  dashboard: 5,
  cli: 6,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

const all = files(SRC);
const graph = new Map<string, string[]>();
const problems: string[] = [];
const moduleOf = (file: string): string => relative(SRC, file).split('/')[0] ?? '';

for (const file of all) {
  const text = readFileSync(file, 'utf8');
  const deps: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (!spec) continue;
    const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    const isTest = file.endsWith('.test.ts') || file.endsWith('conformance.ts');
    if (relative(SRC, target).startsWith('..')) {
      // Tests may use helpers from test/; shipped code must stay inside src/.
      if (!isTest) problems.push(`${relative(SRC, file)}: imports ${spec}, outside src/`);
      continue;
    }
    deps.push(target);
    const from = moduleOf(file);
    const to = moduleOf(target);
    if (from !== to) {
      if (relative(join(SRC, to), target) !== 'index.ts' && !isTest) {
        problems.push(
          `${relative(SRC, file)}: imports ${relative(SRC, target)}; import ${to}/index.ts instead`,
        );
      }
      const rf = RANK[from];
      const rt = RANK[to];
      if (rf === undefined || rt === undefined)
        problems.push(
          `${relative(SRC, file)}: module ${rf === undefined ? from : to} has no layer in scripts/check-imports.ts`,
        );
      else if (rt >= rf)
        problems.push(
          `${relative(SRC, file)}: ${from} (layer ${rf}) must not import ${to} (layer ${rt})`,
        );
    }
  }
  graph.set(file, deps);
}

// Cycle detection (iterative DFS with colors).
const color = new Map<string, 0 | 1 | 2>();
for (const start of all) {
  if (color.get(start)) continue;
  const stack: { node: string; i: number }[] = [{ node: start, i: 0 }];
  const path: string[] = [start];
  color.set(start, 1);
  while (stack.length) {
    const top = stack[stack.length - 1] as { node: string; i: number };
    const deps = graph.get(top.node) ?? [];
    if (top.i >= deps.length) {
      color.set(top.node, 2);
      stack.pop();
      path.pop();
      continue;
    }
    const next = deps[top.i++] as string;
    if (!graph.has(next)) continue;
    const c = color.get(next) ?? 0;
    if (c === 1) {
      const cycle = [...path.slice(path.indexOf(next)), next].map((f) => relative(SRC, f));
      problems.push(`import cycle: ${cycle.join(' -> ')}`);
    } else if (c === 0) {
      color.set(next, 1);
      stack.push({ node: next, i: 0 });
      path.push(next);
    }
  }
}

if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`${problems.length} import rule violation(s)`);
  process.exit(1);
}
console.log(`imports ok: ${all.length} files, no cycles, layers respected`);
