import { describe, expect, it } from 'vitest';
import { formatIssue } from '../config/index.js';
import { compileFormula, evalCondition } from './compile.js';
import { FormulaError, FormulaParser } from './parse.js';
import type { CompileOptions } from './compile.js';
import type { FormulaSpec } from './types.js';

function spec(source: string, file = 'formulas/f.toml'): FormulaSpec {
  const p = new FormulaParser(file);
  const s = p.read(source);
  if (!s || p.issues.length) throw new FormulaError(p.issues);
  return s;
}

/** The problems compiling (or parsing) `source` reports, as file:line:col: path: message. */
function problems(source: string, options: CompileOptions = {}): string[] {
  try {
    compileFormula(spec(source), options);
  } catch (e) {
    if (e instanceof FormulaError) return e.issues.map(formatIssue);
    throw e;
  }
  return [];
}

const tree = (source: string, options: CompileOptions = {}) =>
  compileFormula(spec(source), options).steps.map((s) => `${s.id} <- ${s.needs.join(',')}`);

describe('conditions', () => {
  const vars = { on: 'yes', off: 'false', zero: '0', empty: '', env: 'prod' };
  it.each([
    ['{{on}}', true],
    ['{{off}}', false],
    ['{{zero}}', false],
    ['{{ empty }}', false],
    ['!{{off}}', true],
    ['!{{on}}', false],
    ['{{env}} == prod', true],
    ['{{env}} == "prod"', true],
    ['{{env}} != prod', false],
    ['{{env}} != staging', true],
  ])('%s is %s', (expr, want) => {
    expect(evalCondition(expr, vars)).toBe(want);
  });

  it.each([
    ['env == prod', /bad condition/],
    ['!{{env}} == prod', /bad condition/],
    ['{{nope}}', /unknown variable "nope"/],
  ])('%s is refused', (expr, message) => {
    const r = evalCondition(expr, vars);
    expect(typeof r === 'object' && r.error).toMatch(message);
  });
});

describe('compiling a formula', () => {
  it('makes a root and one bead per step: ids, parents, needs, types, labels, substitution', () => {
    const c = compileFormula(
      spec(`
formula = "fix"
description = "Fix {{issue}}"
[vars]
issue = "gc-1"
title = "Fix it"
[[steps]]
id = "plan"
title = "Plan {{issue}}"
tags = ["p-{{issue}}"]
metadata = { ref = "{{issue}}", n = 3 }
[[steps]]
id = "impl"
needs = ["plan"]
priority = 1
assignee = "{{who}}"
[[steps.children]]
id = "code"
[[steps.children]]
id = "test"
needs = ["code"]
`),
    );
    expect(c.root).toEqual({
      id: 'fix',
      title: 'Fix it',
      description: 'Fix gc-1',
      type: 'molecule',
    });
    expect(
      c.steps.map((s) => [s.id, s.parent, s.type, s.needs.join(','), s.title, s.priority]),
    ).toEqual([
      ['fix.plan', 'fix', 'task', '', 'Plan gc-1', 2],
      ['fix.impl', 'fix', 'epic', 'fix.plan', 'impl', 1],
      ['fix.impl.code', 'fix.impl', 'task', '', 'code', 2],
      ['fix.impl.test', 'fix.impl', 'task', 'fix.impl.code', 'test', 2],
    ]);
    expect(c.steps[0]!.labels).toEqual(['p-gc-1']);
    expect(c.steps[0]!.metadata).toEqual({ ref: 'gc-1', n: '3' });
    // An unknown name is left as it is.
    expect(c.steps[1]!.assignee).toBe('{{who}}');
  });

  it('a false condition drops the step, its children and the needs on it', () => {
    const source = `
[vars]
deploy = "false"
[[steps]]
id = "build"
[[steps]]
id = "ship"
condition = "{{deploy}}"
needs = ["build"]
[[steps.children]]
id = "announce"
[[steps]]
id = "report"
needs = ["build", "ship"]
`;
    expect(tree(source)).toEqual(['f.build <- ', 'f.report <- f.build']);
    expect(tree(source, { vars: { deploy: 'true' } })).toEqual([
      'f.build <- ',
      'f.ship <- f.build',
      'f.ship.announce <- ',
      'f.report <- f.build,f.ship',
    ]);
  });

  it('loops: iterations named iter<N>, each after the one before; range counts from its first', () => {
    const body = `
[[steps.loop.body]]
id = "try"
[[steps.loop.body]]
id = "check"
needs = ["try"]
`;
    expect(tree(`[[steps]]\nid = "again"\n[steps.loop]\ncount = 2\n${body}`)).toEqual([
      'f.again <- ',
      'f.again.iter1.try <- ',
      'f.again.iter1.check <- f.again.iter1.try',
      'f.again.iter2.try <- f.again.iter1.check',
      'f.again.iter2.check <- f.again.iter2.try',
    ]);
    expect(tree(`[[steps]]\nid = "r"\n[steps.loop]\nrange = "3..4"\n${body}`)).toEqual([
      'f.r <- ',
      'f.r.iter3.try <- ',
      'f.r.iter3.check <- f.r.iter3.try',
      'f.r.iter4.try <- f.r.iter3.check',
      'f.r.iter4.check <- f.r.iter4.try',
    ]);
  });

  it('extends: the parent’s steps first, a child step of the same id replacing its; vars merge', () => {
    const base = spec(
      `formula = "base"\n[vars]\nlevel = "1"\n[[steps]]\nid = "a"\n[[steps]]\nid = "b"\ntitle = "old b"\n`,
      'formulas/base.toml',
    );
    const child = spec(
      `extends = "base"\n[vars]\nlevel = "2"\n[[steps]]\nid = "b"\ntitle = "new b {{level}}"\n[[steps]]\nid = "c"\nneeds = ["a"]\n`,
    );
    const c = compileFormula(child, { resolve: (n) => (n === 'base' ? base : undefined) });
    expect(c.steps.map((s) => [s.id, s.title])).toEqual([
      ['f.a', 'a'],
      ['f.b', 'new b 2'],
      ['f.c', 'c'],
    ]);
  });
});

describe('implicit vars', () => {
  it('issue (from --on) substitutes where used and is never an unknown variable', () => {
    const src = '[[steps]]\nid = "a"\ntitle = "Work on {{issue}}"\n';
    expect(problems(src, { vars: { other: 'x' }, strict: true })).toEqual([
      'formulas/f.toml: vars: unknown variable "other"; the formula declares none',
      'formulas/f.toml:3:1: steps[0].title: title "Work on {{issue}}" names a variable with no value',
    ]);
    expect(problems(src, { implicit: { issue: 'gc-1' }, strict: true })).toEqual([]);
    const c = compileFormula(spec(src), { implicit: { issue: 'gc-1' }, strict: true });
    expect(c.steps[0]!.title).toBe('Work on gc-1');
  });
});

describe('formula mistakes say where', () => {
  it.each([
    [
      'an unknown step in needs',
      '[[steps]]\nid = "a"\n[[steps]]\nid = "b"\nneeds = ["a", "nope"]\n',
      {},
      'formulas/f.toml:5:1: steps[1].needs[1]: needs "nope", which is no step of this formula',
    ],
    [
      'a cycle',
      '[[steps]]\nid = "a"\nneeds = ["b"]\n[[steps]]\nid = "b"\nneeds = ["a"]\n',
      {},
      'formulas/f.toml:3:1: steps[0].needs: needs cycle: f.a -> f.b -> f.a',
    ],
    [
      'a missing required variable',
      '[vars.issue]\nrequired = true\n[[steps]]\nid = "a"\n',
      { strict: true },
      'formulas/f.toml:1:1: vars.issue: missing variable "issue": pass --var issue=VALUE',
    ],
    [
      'a value outside the enum',
      '[vars.env]\nenum = ["prod", "staging"]\n[[steps]]\nid = "a"\n',
      { vars: { env: 'dev' } },
      'formulas/f.toml:1:1: vars.env: env=dev: expected one of prod, staging',
    ],
    [
      'a bad condition',
      '[[steps]]\nid = "a"\ncondition = "deploy"\n',
      {},
      'formulas/f.toml:3:1: steps[0].condition: bad condition "deploy": expected {{v}}, !{{v}}, {{v}} == x or {{v}} != x',
    ],
    [
      'a variable with no value left in a title',
      '[vars.who]\ndescription = "who"\n[[steps]]\nid = "a"\ntitle = "ask {{who}}"\n',
      { strict: true },
      'formulas/f.toml:5:1: steps[0].title: title "ask {{who}}" names a variable with no value',
    ],
    [
      'an extends loop',
      'formula = "f"\nextends = "f"\n[[steps]]\nid = "a"\n',
      {},
      'formulas/f.toml:2:1: extends: extends loop: f -> f',
    ],
    [
      'an unknown step key',
      '[[steps]]\nid = "a"\nneeds_all = ["b"]\n',
      {},
      'formulas/f.toml:3:1: steps[0].needs_all: unknown step key "needs_all"',
    ],
  ])('%s', (_what, source, options, want) => {
    expect(problems(source, options as CompileOptions)).toEqual([want]);
  });
});
