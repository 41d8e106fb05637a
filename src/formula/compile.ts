/**
 * Compiling a formula (REFERENCE.md 9.2) into the beads of a molecule: a
 * root (id = the formula's name, type molecule) and one bead per step,
 * `<formula>.<step>[.<child>]`, with parent links and `needs`. Pure.
 *
 * - `extends`: the parent's steps first, a child step with the same id
 *   replacing the parent's; vars merge, the child's winning. A loop of
 *   extends is an error.
 * - vars: defaults plus the values passed. With `strict` (cook, sling, or
 *   any var passed: Gas City validates only then) a var not declared, a
 *   required one missing, or a value outside its enum or pattern is an error.
 * - condition: `{{v}}`, `!{{v}}`, `{{v}} == x`, `{{v}} != x`; a false step is
 *   dropped with its children, and `needs` on it are dropped too.
 * - loop: `count = N` or `range = "A..B"`; body steps become
 *   `<loop>.iter<N>.<id>`, each iteration after the one before.
 * - `{{name}}` in title, description, notes, assignee, tags and metadata
 *   is replaced by the var's value; an unknown one is left as is, except
 *   in a title when strict (an error).
 * - needs name a step by id: a sibling first, else the one step anywhere
 *   with that id. Unknown names and cycles are errors at their position.
 */
import { formatPath, type ConfigIssue } from '../config/index.js';
import { FormulaError, nearestPosition } from './parse.js';
import type { CompiledFormula, CompiledStep, FormulaSpec, StepSpec } from './types.js';

export interface CompileOptions {
  vars?: Record<string, string>;
  /** Vars gc sets itself (`issue` for --on): used like any, never an unknown variable. */
  implicit?: Record<string, string>;
  strict?: boolean;
  /** The formula named by `extends`. */
  resolve?: (name: string) => FormulaSpec | undefined;
}

const FALSY = new Set(['', 'false', '0', 'no', 'off']);
const CONDITION = /^(!?)\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}\s*(?:(==|!=)\s*(.*))?$/;

/** A condition's value, or a string saying what is wrong with it. */
export function evalCondition(
  expr: string,
  vars: Readonly<Record<string, string>>,
): boolean | { error: string } {
  const m = CONDITION.exec(expr.trim());
  if (!m || (m[1] && m[3])) {
    return { error: `bad condition "${expr}": expected {{v}}, !{{v}}, {{v}} == x or {{v}} != x` };
  }
  const name = m[2]!;
  if (!(name in vars)) return { error: `condition "${expr}" names an unknown variable "${name}"` };
  const value = vars[name]!;
  if (m[3]) {
    const rhs = m[4]!.trim().replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
    return m[3] === '==' ? value === rhs : value !== rhs;
  }
  const truthy = !FALSY.has(value.trim().toLowerCase());
  return m[1] ? !truthy : truthy;
}

/** `{{name}}` replaced by known values; others left as they are. */
export function substitute(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g, (all, name: string) =>
    name in vars ? vars[name]! : all,
  );
}

/** The formula with its `extends` chain applied. */
function flatten(
  spec: FormulaSpec,
  options: CompileOptions,
  issues: ConfigIssue[],
  chain: string[] = [],
): FormulaSpec {
  if (!spec.extends) return spec;
  if (chain.includes(spec.name) || spec.extends === spec.name) {
    issues.push({
      file: spec.file,
      path: 'extends',
      ...(spec.positions.get('extends') ?? {}),
      message: `extends loop: ${[...chain, spec.name, spec.extends].join(' -> ')}`,
    });
    return spec;
  }
  const parentSpec = options.resolve?.(spec.extends);
  if (!parentSpec) {
    issues.push({
      file: spec.file,
      path: 'extends',
      ...(spec.positions.get('extends') ?? {}),
      message: `extends "${spec.extends}", which is no formula here; gc formula list shows them`,
    });
    return spec;
  }
  const parent = flatten(parentSpec, options, issues, [...chain, spec.name]);
  const own = new Map(spec.steps.map((s) => [s.id, s]));
  const steps = parent.steps.map((s) => own.get(s.id) ?? s);
  const inherited = new Set(parent.steps.map((s) => s.id));
  steps.push(...spec.steps.filter((s) => !inherited.has(s.id)));
  return { ...spec, vars: new Map([...parent.vars, ...spec.vars]), steps };
}

export function compileFormula(spec: FormulaSpec, options: CompileOptions = {}): CompiledFormula {
  const issues: ConfigIssue[] = [];
  const flat = flatten(spec, options, issues);
  const at = (s: StepSpec, key?: string | number, i?: number) => {
    const where = [...s.at, ...(key !== undefined ? [key] : []), ...(i !== undefined ? [i] : [])];
    return {
      file: spec.file,
      path: formatPath(where),
      ...(nearestPosition(spec.positions, where) ?? {}),
    };
  };
  const passed = options.vars ?? {};
  const strict = options.strict ?? Object.keys(passed).length > 0;
  const vars: Record<string, string> = {};
  for (const [k, v] of flat.vars) if (v.default !== undefined) vars[k] = v.default;
  Object.assign(vars, options.implicit);
  for (const [k, v] of Object.entries(passed)) {
    if (!flat.vars.has(k) && strict) {
      issues.push({
        file: spec.file,
        path: 'vars',
        message: `unknown variable "${k}"; the formula declares ${[...flat.vars.keys()].join(', ') || 'none'}`,
      });
    }
    vars[k] = v;
  }
  if (strict) {
    for (const [k, v] of flat.vars) {
      const where = {
        file: spec.file,
        path: `vars.${k}`,
        ...(spec.positions.get(`vars.${k}`) ?? {}),
      };
      const value = vars[k];
      if (value === undefined) {
        if (v.required)
          issues.push({ ...where, message: `missing variable "${k}": pass --var ${k}=VALUE` });
        continue;
      }
      if (v.enum && !v.enum.includes(value)) {
        issues.push({ ...where, message: `${k}=${value}: expected one of ${v.enum.join(', ')}` });
      }
      if (v.pattern && !new RegExp(`^(?:${v.pattern})$`).test(value)) {
        issues.push({ ...where, message: `${k}=${value} does not match ${v.pattern}` });
      }
    }
  }

  const root = {
    id: flat.name,
    title: 'title' in vars ? vars.title : flat.name,
    description: substitute(flat.description, vars),
    type: 'molecule' as const,
  };
  const steps: CompiledStep[] = [];
  const pending: { step: CompiledStep; spec: StepSpec; scope: Map<string, string> }[] = [];
  const anywhere = new Map<string, string[]>();
  const dropped = new Set<string>();

  const walk = (list: StepSpec[], parent: string, prefix: string): Map<string, string> => {
    const scope = new Map<string, string>();
    for (const s of list) {
      const id = `${prefix}.${s.id}`;
      if (scope.has(s.id))
        issues.push({ ...at(s, 'id'), message: `step id "${s.id}" is used twice here` });
      if (s.condition !== undefined) {
        const r = evalCondition(s.condition, vars);
        if (typeof r === 'object') issues.push({ ...at(s, 'condition'), message: r.error });
        if (r !== true) {
          dropped.add(s.id);
          continue;
        }
      }
      scope.set(s.id, id);
      anywhere.set(s.id, [...(anywhere.get(s.id) ?? []), id]);
      const text = (t: string | undefined) => substitute(t ?? '', vars);
      const title = text(s.title ?? s.id);
      if (strict && /\{\{[^}]*\}\}/.test(title)) {
        issues.push({
          ...at(s, 'title'),
          message: `title "${title}" names a variable with no value`,
        });
      }
      const step: CompiledStep = {
        id,
        title,
        description: text(s.description),
        notes: text(s.notes),
        type: s.type ?? (s.children.length || s.loop ? 'epic' : 'task'),
        priority: s.priority ?? 2,
        labels: s.tags.map((t) => substitute(t, vars)),
        metadata: Object.fromEntries(
          Object.entries(s.metadata).map(([k, v]) => [k, substitute(v, vars)]),
        ),
        needs: [],
        assignee: text(s.assignee),
        parent,
        ...(s.gate !== undefined ? { gate: s.gate } : {}),
      };
      steps.push(step);
      walk(s.children, id, id);
      if (s.loop) {
        const [first, last] = s.loop.range ?? [1, s.loop.count ?? 1];
        let before: string[] = [];
        for (let k = first; k <= last; k++) {
          const inner = walk(s.loop.body, id, `${id}.iter${k}`);
          // Each iteration after the one before: its first steps wait for the last ones.
          for (const [local, cid] of inner) {
            const b = s.loop.body.find((x) => x.id === local);
            if (b?.needs.length === 0) steps.find((x) => x.id === cid)!.needs.push(...before);
          }
          const waitedOn = new Set(s.loop.body.flatMap((b) => b.needs));
          before = [...inner].filter(([local]) => !waitedOn.has(local)).map(([, cid]) => cid);
        }
      }
      pending.push({ step, spec: s, scope });
    }
    return scope;
  };
  walk(flat.steps, root.id, root.id);

  for (const { step, spec: s, scope } of pending) {
    s.needs.forEach((n, j) => {
      const hit = scope.get(n) ?? (anywhere.get(n)?.length === 1 ? anywhere.get(n)![0] : undefined);
      if (hit) {
        if (hit !== step.id && !step.needs.includes(hit)) step.needs.push(hit);
        if (hit === step.id)
          issues.push({ ...at(s, 'needs', j), message: `step "${s.id}" needs itself` });
      } else if (!dropped.has(n)) {
        const many = (anywhere.get(n)?.length ?? 0) > 1;
        issues.push({
          ...at(s, 'needs', j),
          message: many
            ? `needs "${n}", a step id used in several places; name a sibling step`
            : `needs "${n}", which is no step of this formula`,
        });
      }
    });
  }
  const cycle = findCycle(steps);
  if (cycle) {
    const first = pending.find((p) => p.step.id === cycle[0]);
    issues.push({
      ...(first ? at(first.spec, 'needs') : { file: spec.file, path: 'steps' }),
      message: `needs cycle: ${cycle.join(' -> ')}`,
    });
  }
  if (issues.length) throw new FormulaError(issues);
  return { name: flat.name, file: spec.file, root, steps, vars };
}

/** A cycle among `needs`, as the ids around it (first repeated last), or undefined. */
function findCycle(steps: readonly CompiledStep[]): string[] | undefined {
  const needs = new Map(steps.map((s) => [s.id, s.needs]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'open') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'open');
    stack.push(id);
    for (const n of needs.get(id) ?? []) {
      const c = visit(n);
      if (c) return c;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const s of steps) {
    const c = visit(s.id);
    if (c) return c;
  }
  return undefined;
}
