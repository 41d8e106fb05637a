/**
 * Sling as Gas City users type it: a bead routed to a target inside its
 * own convoy (`sling-<bead>`, auto-closed once the bead is), or a formula
 * poured as a molecule whose steps are routed to the target, in a convoy
 * over its root. `cook` pours a formula with no target.
 */
import { NotFoundError, ValidationError, parseDuration, suggest } from '../core/index.js';
import type { CityOps } from '../city/index.js';
import {
  compileFormula,
  formulaResolver,
  type CompiledFormula,
  type FormulaFile,
  type FormulaSpec,
} from '../formula/index.js';
import { createConvoy } from './convoy.js';
import { sling, type SlingResult } from './dispatch.js';
import { pourMolecule, type PourOptions, type Poured } from './molecule.js';

export interface ConvoyChoice {
  /** Make the auto-convoy (default true); a bead that already has a parent gets none. */
  convoy?: boolean;
  /** The auto-convoy is owned: never closed by itself. */
  owned?: boolean;
}

/** Route a bead, in its own convoy unless told not to or it already has a parent. */
export async function slingBead(
  ops: CityOps,
  actor: string,
  target: string,
  beadId: string,
  known: readonly string[],
  o: ConvoyChoice = {},
): Promise<SlingResult & { convoy?: string }> {
  const r = await sling(ops, actor, target, beadId, known);
  const convoy = await autoConvoy(ops, actor, r.bead.id, r.bead.parent, target, o);
  return convoy ? { ...r, bead: await ops.store.get(r.bead.id), convoy } : r;
}

export interface BeadSlingOptions extends ConvoyChoice {
  /** The target's default_sling_formula: poured on the bead (absent or "": none). */
  defaultFormula?: string | undefined;
  /** false: route the bead alone, even with a default formula (`--no-formula`). */
  formula?: boolean;
}

export type BeadSlingResult = SlingResult & {
  convoy?: string;
  /** The molecule the target's default formula poured on the bead. */
  molecule?: string;
  formula?: string;
};

/**
 * `gc sling TARGET BEAD`: with the target's default_sling_formula (and no
 * `--no-formula`), the formula is poured on the bead, its steps routed to
 * the target (Gas City's `--on`); otherwise the bead itself is routed.
 */
export async function slingWork(
  ops: CityOps,
  actor: string,
  target: string,
  beadId: string,
  known: readonly string[],
  files: () => readonly FormulaFile[],
  o: BeadSlingOptions = {},
): Promise<BeadSlingResult> {
  const formula = o.formula === false ? undefined : o.defaultFormula || undefined;
  const choice: ConvoyChoice = {
    ...(o.convoy !== undefined ? { convoy: o.convoy } : {}),
    ...(o.owned !== undefined ? { owned: o.owned } : {}),
  };
  if (!formula) return slingBead(ops, actor, target, beadId, known, choice);
  const r = await slingFormula(ops, actor, target, files(), known, {
    formula,
    on: beadId,
    ...choice,
  });
  return {
    bead: await ops.store.get(beadId),
    target,
    molecule: r.root.id,
    formula,
    ...(r.convoy ? { convoy: r.convoy } : {}),
  };
}

async function autoConvoy(
  ops: CityOps,
  actor: string,
  bead: string,
  parent: string,
  target: string,
  o: ConvoyChoice,
  extra: Record<string, string> = {},
): Promise<string | undefined> {
  if (o.convoy === false || parent) return undefined;
  const st = await createConvoy(ops, actor, `sling-${bead}`, [bead], {
    ...(o.owned ? { owned: true } : {}),
    metadata: { target, ...extra },
  });
  return st.convoy.id;
}

export interface FormulaRequest extends ConvoyChoice {
  formula: string;
  vars?: Record<string, string>;
  on?: string;
  title?: string;
  wispTtlMs?: number;
}

/** The named formula and a resolver for its `extends`, or a NotFoundError with a suggestion. */
export function findFormula(
  files: readonly FormulaFile[],
  name: string,
): { spec: FormulaSpec; resolve: (name: string) => FormulaSpec | undefined } {
  const resolve = formulaResolver(files);
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
  return { spec, resolve };
}

/** The formula compiled for pouring: vars checked strictly. */
export function compileFor(
  files: readonly FormulaFile[],
  name: string,
  vars: Record<string, string> = {},
  implicit: Record<string, string> = {},
): CompiledFormula {
  const { spec, resolve } = findFormula(files, name);
  return compileFormula(spec, { vars, implicit, resolve, strict: true });
}

/** A formula sling as the CLI and the API take it: `wisp` is a duration ("1h"). */
export interface FormulaSlingInput extends ConvoyChoice {
  formula: string;
  vars?: Record<string, string>;
  on?: string;
  title?: string;
  wisp?: string;
}

export function formulaRequest(i: FormulaSlingInput): FormulaRequest {
  let wispTtlMs: number | undefined;
  if (i.wisp !== undefined) {
    try {
      wispTtlMs = parseDuration(i.wisp);
    } catch {
      throw new ValidationError(`expected a duration like 1h, got ${JSON.stringify(i.wisp)}`, {
        where: 'wisp',
      });
    }
  }
  return {
    formula: i.formula,
    ...(i.vars ? { vars: i.vars } : {}),
    ...(i.on !== undefined ? { on: i.on } : {}),
    ...(i.title !== undefined ? { title: i.title } : {}),
    ...(wispTtlMs !== undefined ? { wispTtlMs } : {}),
    ...(i.convoy !== undefined ? { convoy: i.convoy } : {}),
    ...(i.owned !== undefined ? { owned: i.owned } : {}),
  };
}

export interface FormulaSlingResult extends Poured {
  target: string | null;
  convoy?: string;
}

/**
 * Pour `formula` as a molecule routed to `target` (null: `cook`, nothing
 * routed), in a convoy over its root unless told not to. With `on`, the
 * formula gets the var `issue` = that bead (unless passed), and the bead
 * waits for the molecule and closes with it.
 */
export async function slingFormula(
  ops: CityOps,
  actor: string,
  target: string | null,
  files: readonly FormulaFile[],
  known: readonly string[],
  o: FormulaRequest,
): Promise<FormulaSlingResult> {
  if (target !== null && !known.includes(target)) {
    const hint = suggest(target, known);
    throw new NotFoundError('agent', target, {
      fix: hint ? `did you mean ${hint}?` : `known agents: ${known.join(', ') || '(none)'}`,
    });
  }
  if (o.on !== undefined && !o.on.trim()) {
    throw new ValidationError('must name a bead', { where: 'on' });
  }
  // --on adds var issue (Gas City): a formula that does not declare it is fine.
  const compiled = compileFor(files, o.formula, o.vars ?? {}, o.on ? { issue: o.on } : {});
  const pour: PourOptions = {
    ...(target ? { target } : {}),
    ...(o.on ? { on: o.on } : {}),
    ...(o.title ? { title: o.title } : {}),
    ...(o.wispTtlMs !== undefined ? { wispTtlMs: o.wispTtlMs } : {}),
  };
  const poured = await pourMolecule(ops, actor, compiled, pour);
  if (target === null) return { ...poured, target };
  const convoy = await autoConvoy(ops, actor, poured.root.id, '', target, o, {
    'convoy.molecule': poured.root.id,
  });
  const root = convoy ? await ops.store.get(poured.root.id) : poured.root;
  return { ...poured, root, target, ...(convoy ? { convoy } : {}) };
}
