/**
 * Molecules: a compiled formula (formula/compile.ts) poured into the store
 * as beads, all of them in one transaction (`Store.createMany`), so no
 * claimer ever sees a molecule half made.
 *
 * - The root is a bead of type `molecule` (not work: never claimed). Steps
 *   are its children (steps with children are `epic`s under it), with
 *   their `needs` as `blocks` dependencies.
 * - Every bead of one molecule carries `gc.molecule_key` (one random key),
 *   the root `gc.formula` and the step `gc.step_ref` (its compiled id).
 * - With a target, every leaf step is routed to it (`gc.routed_to`): a
 *   pool works a molecule's independent steps in parallel. A step with its
 *   own `assignee` goes to that actor instead. A `gate` step is a bead of
 *   type `gate` that someone closes by hand.
 * - Containers (the root and epic steps) close by themselves once all
 *   their children are closed (`patrolMolecules`); the root closing is
 *   `molecule.completed`, and closes the bead the molecule was poured on.
 * - A wisp (`wispTtlMs`) is deleted, root and steps, that long after it
 *   completes.
 */
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  errorMessage,
  randomBase36,
} from '../core/index.js';
import type { CityOps } from '../city/index.js';
import type { CompiledFormula, CompiledStep } from '../formula/index.js';
import { ROUTED_TO, batchRef, type Bead, type CreateBeadInput } from '../store/index.js';

export const MOLECULE = 'molecule';
export const MOL = {
  key: 'gc.molecule_key',
  formula: 'gc.formula',
  stepRef: 'gc.step_ref',
  on: 'gc.on',
  gate: 'gc.gate',
  wispTtl: 'gc.wisp_ttl_ms',
  target: 'gc.target',
} as const;
/** Set on the bead a molecule was poured on (Gas City's name). */
export const MOLECULE_ID = 'molecule_id';
/** The label a wisp's root carries. */
export const WISP = 'wisp';

export interface PourOptions {
  /** Route the leaf steps (and mark the root) to this agent or pool. */
  target?: string;
  /** The bead the molecule works on (`--on`): it gets `molecule_id`, and closes with the molecule. */
  on?: string;
  /** The root's title (default: the compiled root's). */
  title?: string;
  /** A wisp: deleted this long after it completes. */
  wispTtlMs?: number;
}

export interface Poured {
  root: Bead;
  steps: Bead[];
}

/**
 * The beads to create, in an order where every parent and every need comes
 * first: the root (`#0`), then the steps. Pure.
 */
export function moleculeInputs(
  c: CompiledFormula,
  o: PourOptions & { key: string },
): CreateBeadInput[] {
  const byId = new Map(c.steps.map((s) => [s.id, s]));
  const containers = new Set(c.steps.map((s) => s.parent));
  const index = new Map<string, number>([[c.root.id, 0]]);
  const ordered: CompiledStep[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (s: CompiledStep): void => {
    if (state.get(s.id) === 'done') return;
    if (state.get(s.id) === 'open') {
      throw new ValidationError(`formula ${c.name}: needs cycle through ${s.id}`, {
        where: 'formula',
      });
    }
    state.set(s.id, 'open');
    for (const dep of [s.parent, ...s.needs]) {
      const d = byId.get(dep);
      if (d) visit(d);
    }
    state.set(s.id, 'done');
    index.set(s.id, ordered.length + 1);
    ordered.push(s);
  };
  for (const s of c.steps) visit(s);
  const ref = (id: string) => batchRef(index.get(id)!);
  const root: CreateBeadInput = {
    title: o.title ?? c.root.title,
    type: MOLECULE,
    description: c.root.description,
    labels: o.wispTtlMs !== undefined ? [WISP] : [],
    metadata: {
      [MOL.key]: o.key,
      [MOL.formula]: c.name,
      ...(o.target ? { [ROUTED_TO]: o.target, [MOL.target]: o.target } : {}),
      ...(o.on ? { [MOL.on]: o.on } : {}),
      ...(o.wispTtlMs !== undefined ? { [MOL.wispTtl]: String(o.wispTtlMs) } : {}),
    },
  };
  const steps = ordered.map((s): CreateBeadInput => {
    const leaf = !containers.has(s.id);
    const gate = s.gate !== undefined;
    const routed = leaf && !gate && !s.assignee && o.target;
    return {
      title: s.title,
      type: gate ? 'gate' : s.type,
      priority: s.priority,
      description: s.notes ? `${s.description}\n\nNotes: ${s.notes}`.trim() : s.description,
      labels: s.labels,
      ...(s.assignee && leaf ? { assignee: s.assignee } : {}),
      parent: ref(s.parent),
      needs: s.needs.map(ref),
      metadata: {
        ...s.metadata,
        [MOL.key]: o.key,
        [MOL.stepRef]: s.id,
        ...(gate ? { [MOL.gate]: s.gate! } : {}),
        ...(routed ? { [ROUTED_TO]: o.target! } : {}),
      },
    };
  });
  return [root, ...steps];
}

/** Pour a compiled formula: one transaction, then `molecule_id` on the bead it is on. */
export async function pourMolecule(
  ops: CityOps,
  actor: string,
  c: CompiledFormula,
  o: PourOptions = {},
): Promise<Poured> {
  if (o.on) {
    const on = await ops.store.get(o.on);
    if (on.status === 'closed') {
      throw new ConflictError(`bead ${o.on} is closed`, { fix: `gc bead reopen ${o.on}` });
    }
  }
  if (o.wispTtlMs !== undefined && (!Number.isFinite(o.wispTtlMs) || o.wispTtlMs < 0)) {
    throw new ValidationError(`expected a duration, got ${o.wispTtlMs}`, { where: 'wisp' });
  }
  const inputs = moleculeInputs(c, { ...o, key: randomBase36(12) });
  const made = await ops.createBeads(actor, inputs, (beads) => [
    {
      type: 'molecule.created',
      subject: beads[0]!.id,
      payload: {
        formula: c.name,
        steps: beads.length - 1,
        vars: c.vars,
        ...(o.target ? { target: o.target } : {}),
        ...(o.on ? { on: o.on } : {}),
        ...(o.wispTtlMs !== undefined ? { wisp_ttl_ms: o.wispTtlMs } : {}),
      },
      message: `molecule ${beads[0]!.id} of formula ${c.name}: ${beads.length - 1} step(s)${o.target ? `, routed to ${o.target}` : ''}`,
    },
  ]);
  const [root, ...steps] = made;
  if (o.on) {
    // The bead is the molecule's to finish: not ready work while it runs.
    await ops.setMetadata(actor, o.on, MOLECULE_ID, root!.id);
    await ops.addDependency(actor, o.on, root!.id, 'blocks');
  }
  return { root: root!, steps };
}

/** Every bead of the molecule whose root is `root`, root first. */
export async function moleculeBeads(ops: Pick<CityOps, 'store'>, root: Bead): Promise<Bead[]> {
  const key = root.metadata[MOL.key];
  if (root.issue_type !== MOLECULE || !key) {
    throw new ValidationError(`${root.id} is a ${root.issue_type}, not a molecule`, {
      where: 'molecule',
    });
  }
  const out: Bead[] = [];
  let cursor: string | undefined;
  do {
    const p = await ops.store.list({
      metadata: { [MOL.key]: key },
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    out.push(...p.items);
    cursor = p.next_cursor ?? undefined;
  } while (cursor);
  return [root, ...out.filter((b) => b.id !== root.id)];
}

export interface MoleculeProgress {
  root: string;
  formula: string;
  status: string;
  total: number;
  closed: number;
  in_progress: number;
  /** Steps, in the order they were made (parents and needs first). */
  steps: {
    id: string;
    ref: string;
    title: string;
    type: string;
    status: string;
    assignee: string;
    needs: string[];
  }[];
}

/** A molecule's progress from its beads (`moleculeBeads`, root first). Pure. */
export function moleculeProgress(beads: readonly Bead[]): MoleculeProgress {
  const [root, ...steps] = beads;
  if (!root) throw new NotFoundError('molecule', '');
  const ids = new Set(steps.map((s) => s.id));
  return {
    root: root.id,
    formula: root.metadata[MOL.formula] ?? '',
    status: root.status,
    total: steps.length,
    closed: steps.filter((s) => s.status === 'closed').length,
    in_progress: steps.filter((s) => s.status === 'in_progress').length,
    steps: steps.map((s) => ({
      id: s.id,
      ref: s.metadata[MOL.stepRef] ?? '',
      title: s.title,
      type: s.issue_type,
      status: s.status,
      assignee: s.assignee,
      needs: s.dependencies
        .filter((d) => d.type !== 'parent-child' && ids.has(d.depends_on_id))
        .map((d) => d.depends_on_id),
    })),
  };
}

export interface MoleculePatrolResult {
  /** Containers closed (epic steps and roots). */
  closed: string[];
  completed: string[];
  /** Wisps deleted after their TTL. */
  collected: string[];
}

/**
 * One pass: close every container of an open molecule whose children are
 * all closed (deepest first), completing molecules; delete wisps whose TTL
 * since completing has passed.
 */
export async function patrolMolecules(
  ops: CityOps,
  now = Date.now(),
  log: (line: string) => void = () => undefined,
): Promise<MoleculePatrolResult> {
  const out: MoleculePatrolResult = { closed: [], completed: [], collected: [] };
  const open = await ops.store.list({
    type: MOLECULE,
    status: ['open', 'in_progress'],
    limit: 1000,
  });
  for (const root of open.items) {
    if (!root.metadata[MOL.key]) continue;
    try {
      await settle(ops, root, out);
    } catch (e) {
      log(`molecule ${root.id}: ${errorMessage(e)}`);
    }
  }
  const wisps = await ops.store.list({
    type: MOLECULE,
    status: 'closed',
    label: WISP,
    limit: 1000,
  });
  for (const root of wisps.items) {
    const ttl = Number(root.metadata[MOL.wispTtl] ?? NaN);
    const closedAt = Date.parse(root.closed_at ?? '');
    if (!Number.isFinite(ttl) || !Number.isFinite(closedAt) || closedAt + ttl > now) continue;
    try {
      const beads = await moleculeBeads(ops, root);
      // Children before parents: the steps in reverse order of making, then the root.
      for (const b of beads.slice(1).reverse()) await ops.deleteBead('molecule', b.id);
      await ops.deleteBead('molecule', root.id);
      out.collected.push(root.id);
    } catch (e) {
      log(`wisp ${root.id}: ${errorMessage(e)}`);
    }
  }
  return out;
}

async function settle(ops: CityOps, root: Bead, out: MoleculePatrolResult): Promise<void> {
  const beads = await moleculeBeads(ops, root);
  const status = new Map(beads.map((b) => [b.id, b.status]));
  const kids = new Map<string, string[]>();
  for (const b of beads.slice(1)) kids.set(b.parent, [...(kids.get(b.parent) ?? []), b.id]);
  // Deepest first: made parents-first, so walk the steps backwards, the root last.
  for (const b of [...beads.slice(1).reverse(), root]) {
    const children = kids.get(b.id);
    if (!children?.length || status.get(b.id) === 'closed') continue;
    if (!children.every((k) => status.get(k) === 'closed')) continue;
    const isRoot = b.id === root.id;
    await ops.closeBead(
      'molecule',
      b.id,
      isRoot ? 'all its steps are closed' : 'all its children are closed',
    );
    status.set(b.id, 'closed');
    out.closed.push(b.id);
    if (!isRoot) continue;
    out.completed.push(root.id);
    await ops.events.record({
      type: 'molecule.completed',
      actor: 'molecule',
      subject: root.id,
      payload: { formula: root.metadata[MOL.formula] ?? '', steps: beads.length - 1 },
      message: `molecule ${root.id} (${root.metadata[MOL.formula] ?? ''}) completed: ${beads.length - 1} step(s) closed`,
    });
    const on = root.metadata[MOL.on];
    if (on) {
      await ops.closeBead('molecule', on, `molecule ${root.id} completed`).catch((e: unknown) => {
        if (!(e instanceof NotFoundError)) throw e;
      });
    }
  }
}
