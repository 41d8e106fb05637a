/**
 * Reading one formula file (`formulas/<name>.toml`, or the legacy
 * `<name>.formula.toml`) into a FormulaSpec. Every mistake is a FormulaError
 * issue at its file, line and column; nothing is dropped silently: a key
 * gc does not know in a step is an error too.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { GcError } from '../core/index.js';
import { ConfigError, formatPath, keyPositions, type ConfigIssue } from '../config/index.js';
import type { FormulaSpec, StepSpec, VarSpec } from './types.js';

type Raw = Record<string, unknown>;
type Where = (string | number)[];

/** A formula is invalid; `issues` lists every problem with its position. */
export class FormulaError extends ConfigError {
  constructor(issues: ConfigIssue[]) {
    super(issues, 'edit the formula at the positions shown, then run `gc formula show NAME`');
  }
}

/** The formula's name from its file: `fix.toml` and `fix.formula.toml` are both `fix`. */
export function formulaName(file: string): string {
  return path.basename(file).replace(/(\.formula)?\.toml$/, '');
}

const STEP_KEYS = new Set([
  'id',
  'title',
  'description',
  'notes',
  'type',
  'priority',
  'tags',
  'metadata',
  'needs',
  'assignee',
  'condition',
  'children',
  'gate',
  'loop',
  'ralph',
]);
const TOP_KEYS = new Set([
  'formula',
  'description',
  'version',
  'extends',
  'vars',
  'steps',
  'phase',
  'pour',
]);

/** The position of `at`, else of the nearest enclosing key that has one. */
export function nearestPosition(
  positions: FormulaSpec['positions'],
  at: Where,
): { line: number; col: number } | undefined {
  for (let n = at.length; n > 0; n--) {
    const p = positions.get(formatPath(at.slice(0, n)));
    if (p) return p;
  }
  return undefined;
}

const isObj = (v: unknown): v is Raw => !!v && typeof v === 'object' && !Array.isArray(v);

export class FormulaParser {
  readonly issues: ConfigIssue[] = [];
  private positions = new Map<string, { line: number; col: number }>();

  constructor(private readonly file: string) {}

  issue(at: Where, message: string): void {
    const p = this.positionOf(at);
    this.issues.push({
      file: this.file,
      path: formatPath(at),
      ...(p ? { line: p.line, col: p.col } : {}),
      message,
    });
  }

  positionOf(at: Where): { line: number; col: number } | undefined {
    return nearestPosition(this.positions, at);
  }

  read(source: string): FormulaSpec | undefined {
    let raw: Raw;
    try {
      raw = parse(source);
    } catch (e) {
      if (!(e instanceof TomlError)) throw e;
      this.issues.push({
        file: this.file,
        path: '',
        line: e.line,
        col: e.column,
        message: `TOML syntax error: ${e.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? ''}`,
      });
      return undefined;
    }
    this.positions = keyPositions(source);
    for (const k of Object.keys(raw)) {
      if (!TOP_KEYS.has(k)) this.issue([k], `unknown formula key "${k}"`);
    }
    const name =
      raw.formula === undefined ? formulaName(this.file) : this.str(raw.formula, ['formula']);
    const version = raw.version === undefined ? 1 : Number(raw.version);
    if (!Number.isInteger(version) || version < 1)
      this.issue(['version'], 'expected a whole number');
    const steps = this.steps(raw.steps, ['steps']);
    return {
      name: name ?? formulaName(this.file),
      file: this.file,
      description: this.str(raw.description, ['description']) ?? '',
      version,
      ...(raw.extends !== undefined ? { extends: this.str(raw.extends, ['extends']) ?? '' } : {}),
      vars: this.vars(raw.vars),
      steps,
      positions: this.positions,
    };
  }

  private str(v: unknown, at: Where): string | undefined {
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    this.issue(at, `expected a string, got ${JSON.stringify(v)}`);
    return undefined;
  }

  /** A string, number or boolean as text; anything else is an issue. */
  private scalar(v: unknown, at: Where): string | undefined {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    this.issue(at, `expected a string, got ${JSON.stringify(v)}`);
    return undefined;
  }

  private strings(v: unknown, at: Where): string[] {
    if (v === undefined) return [];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    this.issue(at, 'expected a list of strings');
    return [];
  }

  private vars(v: unknown): Map<string, VarSpec> {
    const out = new Map<string, VarSpec>();
    if (v === undefined) return out;
    if (!isObj(v)) {
      this.issue(['vars'], 'expected a [vars] table');
      return out;
    }
    for (const [k, d] of Object.entries(v)) {
      const at = ['vars', k];
      if (typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean') {
        out.set(k, { default: String(d), required: false });
      } else if (isObj(d)) {
        const enumValues = d.enum === undefined ? undefined : this.strings(d.enum, [...at, 'enum']);
        const pattern = this.str(d.pattern, [...at, 'pattern']);
        if (pattern !== undefined) {
          try {
            new RegExp(pattern);
          } catch {
            this.issue([...at, 'pattern'], `not a regular expression: ${pattern}`);
          }
        }
        const def =
          d.default === undefined ? undefined : this.scalar(d.default, [...at, 'default']);
        out.set(k, {
          required: d.required === true,
          ...(typeof d.description === 'string' ? { description: d.description } : {}),
          ...(def !== undefined ? { default: def } : {}),
          ...(enumValues ? { enum: enumValues } : {}),
          ...(pattern !== undefined ? { pattern } : {}),
        });
      } else this.issue(at, 'expected a default value or a table {description, default, ...}');
    }
    return out;
  }

  private steps(v: unknown, at: Where): StepSpec[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.issue(at, 'expected [[steps]] tables');
      return [];
    }
    const out: StepSpec[] = [];
    v.forEach((s, i) => {
      const here = [...at, i];
      if (!isObj(s)) return this.issue(here, 'expected a step table');
      const step = this.step(s, here);
      if (step) out.push(step);
    });
    return out;
  }

  private step(s: Raw, at: Where): StepSpec | undefined {
    for (const k of Object.keys(s)) {
      if (!STEP_KEYS.has(k)) this.issue([...at, k], `unknown step key "${k}"`);
    }
    const id = this.str(s.id, [...at, 'id']);
    if (!id) {
      this.issue(at, 'a step needs an id');
      return undefined;
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(id)) {
      this.issue([...at, 'id'], `step id "${id}": letters, digits, _ and - only`);
    }
    const priority = s.priority === undefined ? undefined : Number(s.priority);
    if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 4)) {
      this.issue([...at, 'priority'], 'expected a priority from 0 (highest) to 4');
    }
    const metadata: Record<string, string> = {};
    if (s.metadata !== undefined) {
      if (isObj(s.metadata)) {
        for (const [k, m] of Object.entries(s.metadata)) {
          const v = this.scalar(m, [...at, 'metadata', k]);
          if (v !== undefined) metadata[k] = v;
        }
      } else this.issue([...at, 'metadata'], 'expected a table of strings');
    }
    let loop: StepSpec['loop'];
    if (s.loop !== undefined) {
      if (!isObj(s.loop)) this.issue([...at, 'loop'], 'expected a [steps.loop] table');
      else loop = this.loop(s.loop, [...at, 'loop']);
    }
    if (s.ralph !== undefined) {
      this.issue([...at, 'ralph'], 'accepted, not supported in this build: ralph loops');
    }
    const title = this.str(s.title, [...at, 'title']);
    const description = this.str(s.description, [...at, 'description']);
    const notes = this.str(s.notes, [...at, 'notes']);
    const type = this.str(s.type, [...at, 'type']);
    const assignee = this.str(s.assignee, [...at, 'assignee']);
    const condition = this.str(s.condition, [...at, 'condition']);
    const gate = this.str(s.gate, [...at, 'gate']);
    return {
      id,
      ...(title !== undefined ? { title } : {}),
      ...(description !== undefined ? { description } : {}),
      ...(notes !== undefined ? { notes } : {}),
      ...(type !== undefined ? { type } : {}),
      ...(priority !== undefined ? { priority } : {}),
      tags: this.strings(s.tags, [...at, 'tags']),
      metadata,
      needs: this.strings(s.needs, [...at, 'needs']),
      ...(assignee !== undefined ? { assignee } : {}),
      ...(condition !== undefined ? { condition } : {}),
      children: this.steps(s.children, [...at, 'children']),
      ...(gate !== undefined ? { gate } : {}),
      ...(loop ? { loop } : {}),
      at,
    };
  }

  private loop(l: Raw, at: Where): StepSpec['loop'] {
    const body = this.steps(l.body, [...at, 'body']);
    if (l.until !== undefined) {
      this.issue([...at, 'until'], 'accepted, not supported in this build: until loops');
      return undefined;
    }
    if (l.count !== undefined) {
      const n = Number(l.count);
      if (!Number.isInteger(n) || n < 1 || n > 100) {
        this.issue([...at, 'count'], 'expected a count from 1 to 100');
        return undefined;
      }
      return { count: n, body };
    }
    if (l.range !== undefined) {
      const m = typeof l.range === 'string' ? /^(\d+)\.\.(\d+)$/.exec(l.range) : null;
      const [a, b] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
      if (!m || b < a || b - a >= 100) {
        this.issue([...at, 'range'], 'expected "FIRST..LAST" (at most 100 iterations)');
        return undefined;
      }
      return { range: [a, b], body };
    }
    this.issue(at, 'a loop needs count or range');
    return undefined;
  }
}

/** Read and parse one formula file; throws a FormulaError listing every problem. */
export function readFormula(file: string): FormulaSpec {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (e) {
    throw new GcError('not_found', `cannot read formula ${file}: ${(e as Error).message}`);
  }
  const p = new FormulaParser(file);
  const spec = p.read(source);
  if (!spec || p.issues.length) throw new FormulaError(p.issues);
  return spec;
}
