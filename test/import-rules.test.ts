/**
 * The import checker (scripts/import-rules.ts) on small source trees made
 * to break each rule once, and on the real src/ (which must pass).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkImports, layersFromDoc } from '../scripts/import-rules.js';
import { REPO } from './helpers/cli.js';

const base = mkdtempSync(path.join(tmpdir(), 'gc-imports-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const DOC =
  'Layers point down (`cli → api → core`); a module imports\nanother only through its index.\n';
let n = 0;

/** A tree with modules core, api, cli (one index.ts each) plus `files`; its problems. */
function problemsOf(files: Record<string, string>, doc = DOC): string[] {
  const root = path.join(base, `t${n++}`);
  const src = path.join(root, 'src');
  const tree: Record<string, string> = {
    'core/index.ts': 'export const x = 1;\n',
    'api/index.ts': "import { x } from '../core/index.js';\nexport const y = x;\n",
    'cli/index.ts': "import { y } from '../api/index.js';\nexport const z = y;\n",
    ...files,
  };
  for (const [rel, text] of Object.entries(tree)) {
    mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    writeFileSync(path.join(src, rel), text);
  }
  mkdirSync(path.join(root, 'docs'), { recursive: true });
  writeFileSync(path.join(root, 'docs', 'architecture.md'), doc);
  return checkImports({ src, architectureDoc: path.join(root, 'docs', 'architecture.md') })
    .problems;
}

describe('import rules', () => {
  it('a clean tree passes, and so does the real src/', () => {
    expect(problemsOf({})).toEqual([]);
    const real = checkImports({
      src: path.join(REPO, 'src'),
      architectureDoc: path.join(REPO, 'docs', 'architecture.md'),
    });
    expect(real.problems).toEqual([]);
    expect(real.files).toBeGreaterThan(100);
  });

  it('reads the layers from the doc line, across a line break', () => {
    const layers = layersFromDoc('Layers point down (`cli → client →\n  api/x → core`); more');
    expect(layers).toEqual(
      new Map([
        ['core', 0],
        ['api', 1],
        ['x', 1],
        ['client', 2],
        ['cli', 3],
      ]),
    );
    expect(layersFromDoc('no such line')).toMatch(/no "Layers point down/);
  });

  const cases: [string, Record<string, string>, RegExp][] = [
    [
      'a static import up the layers',
      { 'core/up.ts': "import { y } from '../api/index.js';\nexport const w = y;\n" },
      /core\/up\.ts:1: core \(layer 0\) must not import api \(layer 1\)/,
    ],
    [
      'a side-effect import',
      { 'core/side.ts': "import '../cli/index.js';\n" },
      /core\/side\.ts:1: core \(layer 0\) must not import cli/,
    ],
    [
      'an export-from',
      { 'core/re.ts': "export { z } from '../cli/index.js';\n" },
      /core\/re\.ts:1: core \(layer 0\) must not import cli/,
    ],
    [
      'a literal dynamic import, with backticks',
      { 'core/dyn.ts': 'export const f = () => import(`../cli/index.js`);\n' },
      /core\/dyn\.ts:1: core \(layer 0\) must not import cli/,
    ],
    [
      'a dynamic import of a computed path',
      { 'core/tpl.ts': 'const m = "index";\nexport const f = () => import(`../cli/${m}.js`);\n' },
      /core\/tpl\.ts: line 2: import\(\) of a computed path/,
    ],
    [
      'require',
      {
        'core/req.ts':
          "declare const require: (s: string) => unknown;\nexport const r = require('../cli/index.js');\n",
      },
      /core\/req\.ts:2: core \(layer 0\) must not import cli/,
    ],
    [
      'createRequire',
      {
        'core/cr.ts':
          "import { createRequire } from 'node:module';\nconst req = createRequire(import.meta.url);\nexport const r = req('../cli/index.js');\n",
      },
      /core\/cr\.ts: line 2: createRequire hides imports/,
    ],
    [
      'a module internal instead of its index',
      {
        'api/inner.ts': 'export const i = 1;\n',
        'cli/deep.ts': "import { i } from '../api/inner.js';\nexport const d = i;\n",
      },
      /cli\/deep\.ts:1: imports api\/inner\.ts; import api\/index\.ts instead/,
    ],
    [
      'an import outside src/',
      { 'api/out.ts': "import { h } from '../../test/helpers/x.js';\nexport const o = h;\n" },
      /api\/out\.ts:1: imports \.\.\/\.\.\/test\/helpers\/x\.js, outside src\//,
    ],
    [
      'a JavaScript file under src/',
      { 'core/legacy.js': "import '../cli/index.js';\n" },
      /core\/legacy\.js: only TypeScript/,
    ],
    [
      'a cycle',
      {
        'core/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
        'core/b.ts':
          "import type { a } from './a.js';\nexport const b = 1 as unknown as typeof a;\n",
      },
      /import cycle: core\/a\.ts -> core\/b\.ts -> core\/a\.ts/,
    ],
    [
      'a folder with no layer',
      { 'extra/index.ts': 'export const e = 1;\n' },
      /src\/extra: module has no layer/,
    ],
  ];
  for (const [what, files, want] of cases) {
    it(`catches ${what}`, () => {
      const problems = problemsOf(files);
      expect(problems.join('\n')).toMatch(want);
    });
  }

  it('a layer the doc names with no folder, or a doc without the line, is a problem', () => {
    expect(problemsOf({}, 'Layers point down (`cli → api → server → core`).').join('\n')).toMatch(
      /names server, which has no folder src\/server/,
    );
    expect(problemsOf({}, 'nothing here').join('\n')).toMatch(/no "Layers point down/);
  });

  it('text in strings and comments is not an import', () => {
    expect(
      problemsOf({
        'core/text.ts':
          "// import '../cli/index.js';\nexport const s = \"require('../cli/index.js')\";\nexport const t = `import('../cli/index.js')`;\n",
      }),
    ).toEqual([]);
  });

  it('tests may reach into modules and use test helpers, but not up the layers', () => {
    const problems = problemsOf({
      'api/inner.ts': 'export const i = 1;\n',
      'cli/x.test.ts': "import { i } from '../api/inner.js';\nimport '../../test/helpers/h.js';\n",
      'core/y.test.ts': "import '../cli/index.js';\n",
    });
    expect(problems).toEqual([
      expect.stringMatching(/core\/y\.test\.ts:1: core \(layer 0\) must not import cli/),
    ]);
  });
});
