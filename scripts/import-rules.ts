/**
 * The import rules of docs/architecture.md, as a function over a source
 * tree (scripts/check-imports.ts runs it on src/ in CI; the tests run it on
 * trees made to break each rule):
 *
 * 1. No import cycles between files (type-only imports included).
 * 2. A module imports another module only through its index.ts.
 * 3. Dependencies point down the layers, which are read from the
 *    "Layers point down (`a → b/c → ...`)" line of docs/architecture.md, so
 *    the doc and the check cannot drift; every folder of src/ has a layer and
 *    every module the line names has a folder.
 * 4. Shipped code stays inside src/.
 *
 * Imports are found with the TypeScript parser, not a regex, so every form
 * counts (static, side-effect, `export ... from`, `import()`, `require()`,
 * `import x = require()`) and text in strings or comments does not. A path
 * it cannot read statically (a template literal with `${}` in `import()`,
 * `createRequire`) is itself a violation: the rules must be checkable. Only
 * TypeScript may live under src/.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export interface ImportCheckOptions {
  /** The source root (src/). */
  src: string;
  /** The architecture page holding the layer line. */
  architectureDoc: string;
}

export interface ImportCheckResult {
  problems: string[];
  files: number;
}

/** Tests and conformance suites may reach into modules and use test helpers. */
const isTestFile = (file: string): boolean =>
  file.endsWith('.test.ts') || file.endsWith('conformance.ts');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Module name -> rank (0 = lowest), from the doc's layer line. */
export function layersFromDoc(text: string): Map<string, number> | string {
  const m = /Layers point down \(`([^`]+)`\)/.exec(text.replace(/\s*\n\s*/g, ' '));
  if (!m?.[1]) return 'no "Layers point down (`a → b → ...`)" line';
  const tiers = m[1].split('→').map((t) => t.trim());
  const rank = new Map<string, number>();
  tiers.reverse().forEach((tier, i) => {
    for (const name of tier.split('/').map((n) => n.trim())) if (name) rank.set(name, i);
  });
  return rank;
}

interface FoundImport {
  spec: string;
  line: number;
}

/** Every import of a file, and the problems of the ones that cannot be read. */
function importsOf(file: string, text: string): { found: FoundImport[]; unreadable: string[] } {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: FoundImport[] = [];
  const unreadable: string[] = [];
  const lineOf = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const literal = (n: ts.Node | undefined): string | undefined =>
    n && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) ? n.text : undefined;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const spec = literal(node.moduleSpecifier);
      if (spec !== undefined) found.push({ spec, line: lineOf(node) });
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference)
    ) {
      const spec = literal(node.moduleReference.expression);
      if (spec !== undefined) found.push({ spec, line: lineOf(node) });
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      if (isImport || isRequire) {
        const spec = literal(node.arguments[0]);
        const what = isImport ? 'import()' : 'require()';
        if (spec !== undefined) found.push({ spec, line: lineOf(node) });
        else
          unreadable.push(
            `line ${lineOf(node)}: ${what} of a computed path; write it as a string literal`,
          );
      } else if (ts.isIdentifier(callee) && callee.text === 'createRequire') {
        unreadable.push(
          `line ${lineOf(node)}: createRequire hides imports from the rules; use import`,
        );
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { found, unreadable };
}

export function checkImports(o: ImportCheckOptions): ImportCheckResult {
  const problems: string[] = [];
  const rel = (f: string) => relative(o.src, f);
  const moduleOf = (file: string): string => rel(file).split('/')[0] ?? '';

  const layers = layersFromDoc(
    existsSync(o.architectureDoc) ? readFileSync(o.architectureDoc, 'utf8') : '',
  );
  const doc = relative(dirname(o.src), o.architectureDoc);
  const rank = typeof layers === 'string' ? new Map<string, number>() : layers;
  if (typeof layers === 'string') problems.push(`${doc}: ${layers}`);
  const folders = readdirSync(o.src).filter((n) => statSync(join(o.src, n)).isDirectory());
  for (const f of folders) {
    if (!rank.has(f) && typeof layers !== 'string') {
      problems.push(`src/${f}: module has no layer in the "Layers point down" line of ${doc}`);
    }
  }
  for (const name of rank.keys()) {
    if (!folders.includes(name))
      problems.push(`${doc}: layer line names ${name}, which has no folder src/${name}`);
  }

  const all = walk(o.src);
  for (const f of all) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) {
      problems.push(
        `${rel(f)}: only TypeScript (.ts) belongs under src/, where the import rules are checked`,
      );
    }
  }
  const tsFiles = all.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const graph = new Map<string, string[]>();
  for (const file of tsFiles) {
    const { found, unreadable } = importsOf(file, readFileSync(file, 'utf8'));
    for (const u of unreadable) problems.push(`${rel(file)}: ${u}`);
    const deps: string[] = [];
    const isTest = isTestFile(file);
    for (const { spec, line } of found) {
      if (!spec.startsWith('.')) continue; // a package or node: builtin
      const where = `${rel(file)}:${line}`;
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (relative(o.src, target).startsWith('..')) {
        // Tests may use helpers from test/; shipped code must stay inside src/.
        if (!isTest) problems.push(`${where}: imports ${spec}, outside src/`);
        continue;
      }
      deps.push(target);
      const from = moduleOf(file);
      const to = moduleOf(target);
      if (from === to) continue;
      if (relative(join(o.src, to), target) !== 'index.ts' && !isTest) {
        problems.push(`${where}: imports ${rel(target)}; import ${to}/index.ts instead`);
      }
      const rf = rank.get(from);
      const rt = rank.get(to);
      if (rf === undefined || rt === undefined) continue; // reported above
      if (rt >= rf) {
        problems.push(`${where}: ${from} (layer ${rf}) must not import ${to} (layer ${rt})`);
      }
    }
    graph.set(file, deps);
  }
  problems.push(...cycles(graph).map((c) => `import cycle: ${c.map(rel).join(' -> ')}`));
  return { problems, files: tsFiles.length };
}

/** Every cycle found by an iterative depth-first search (each reported once). */
function cycles(graph: Map<string, string[]>): string[][] {
  const out: string[][] = [];
  const color = new Map<string, 0 | 1 | 2>();
  for (const start of graph.keys()) {
    if (color.get(start)) continue;
    const stack: { node: string; i: number }[] = [{ node: start, i: 0 }];
    const path: string[] = [start];
    color.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const deps = graph.get(top.node) ?? [];
      if (top.i >= deps.length) {
        color.set(top.node, 2);
        stack.pop();
        path.pop();
        continue;
      }
      const next = deps[top.i++]!;
      if (!graph.has(next)) continue;
      const c = color.get(next) ?? 0;
      if (c === 1) out.push([...path.slice(path.indexOf(next)), next]);
      else if (c === 0) {
        color.set(next, 1);
        stack.push({ node: next, i: 0 });
        path.push(next);
      }
    }
  }
  return out;
}
