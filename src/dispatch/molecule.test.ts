/**
 * Molecules over a real CityOps (memory store, event log): the beads a
 * compiled formula pours (order, routing, gates), containers and the root
 * closing themselves, the bead a molecule is on, wisps collected after
 * their TTL (fake clock), and bad input changing nothing.
 */
import { describe, expect, it } from 'vitest';
import { CityOps } from '../city/index.js';
import { FakeClock } from '../core/index.js';
import { MemoryEventLog } from '../events/index.js';
import { FormulaError, FormulaParser, compileFormula } from '../formula/index.js';
import { MemoryStore, ROUTED_TO } from '../store/index.js';
import {
  MOL,
  moleculeBeads,
  moleculeInputs,
  moleculeProgress,
  patrolMolecules,
  pourMolecule,
} from './index.js';

function compiled(source: string, vars: Record<string, string> = {}) {
  const p = new FormulaParser('formulas/f.toml');
  const s = p.read(source);
  if (!s || p.issues.length) throw new FormulaError(p.issues);
  return compileFormula(s, { vars });
}

/** `deploy` is listed before what it needs; `check` is a gate; `review` has its own assignee. */
const FLOW = `
[[steps]]
id = "deploy"
needs = ["verify"]
[[steps]]
id = "build"
[[steps]]
id = "verify"
needs = ["build", "check"]
[[steps.children]]
id = "lint"
[[steps.children]]
id = "unit"
[[steps]]
id = "check"
gate = "human"
[[steps]]
id = "review"
assignee = "alice"
needs = ["build"]
`;

function city() {
  const clock = new FakeClock();
  const store = new MemoryStore({ clock });
  const events = new MemoryEventLog();
  return { clock, store, events, ops: new CityOps(store, events) };
}

describe('moleculeInputs', () => {
  it('puts parents and needs first, routes only leaf work, makes gates gate beads', () => {
    const inputs = moleculeInputs(compiled(FLOW), { key: 'k1', target: 'pool' });
    const refs = inputs.map((i) => i.metadata?.[MOL.stepRef] ?? 'root');
    expect(refs).toEqual([
      'root',
      'f.build',
      'f.check',
      'f.verify',
      'f.deploy',
      'f.verify.lint',
      'f.verify.unit',
      'f.review',
    ]);
    // Every #N names an earlier bead.
    inputs.forEach((input, i) => {
      for (const r of [input.parent ?? '', ...(input.needs ?? [])].filter(Boolean)) {
        expect(Number(r.slice(1)), `${refs[i]} -> ${r}`).toBeLessThan(i);
      }
    });
    const by = new Map(inputs.map((x, i) => [refs[i], x]));
    expect(by.get('root')).toMatchObject({ type: 'molecule', metadata: { [ROUTED_TO]: 'pool' } });
    expect(by.get('f.deploy')!.needs).toEqual(['#3']);
    expect(by.get('f.verify')!.type).toBe('epic');
    expect(by.get('f.verify')!.metadata![ROUTED_TO]).toBeUndefined();
    expect(by.get('f.verify.lint')!.metadata![ROUTED_TO]).toBe('pool');
    expect(by.get('f.check')).toMatchObject({ type: 'gate', metadata: { [MOL.gate]: 'human' } });
    expect(by.get('f.check')!.metadata![ROUTED_TO]).toBeUndefined();
    expect(by.get('f.review')).toMatchObject({ assignee: 'alice' });
    expect(by.get('f.review')!.metadata![ROUTED_TO]).toBeUndefined();
    for (const i of inputs) expect(i.metadata![MOL.key]).toBe('k1');
  });
});

describe('molecules in a city', () => {
  it('pours in one go; containers, then the root, close themselves; the bead it is on closes too', async () => {
    const { ops, events } = city();
    const issue = await ops.createBead('mayor', { title: 'the bug' });
    const { root, steps } = await pourMolecule(ops, 'mayor', compiled(FLOW), {
      target: 'pool',
      on: issue.id,
    });
    expect(steps).toHaveLength(7);
    const on = await ops.store.get(issue.id);
    expect(on.metadata.molecule_id).toBe(root.id);
    // The bead waits for its molecule: no longer ready work.
    expect((await ops.store.ready({ limit: 100 })).items.map((b) => b.id)).not.toContain(issue.id);
    const ready = (await ops.store.ready({ metadata: { [ROUTED_TO]: 'pool' } })).items;
    expect(ready.map((b) => b.metadata[MOL.stepRef])).toEqual(['f.build']);

    const id = (ref: string) => steps.find((s) => s.metadata[MOL.stepRef] === ref)!.id;
    for (const ref of ['f.build', 'f.review', 'f.check', 'f.verify.lint']) {
      await ops.closeBead('w', id(ref));
    }
    expect((await patrolMolecules(ops)).closed).toEqual([]);
    await ops.closeBead('w', id('f.verify.unit'));
    expect((await patrolMolecules(ops)).closed).toEqual([id('f.verify')]);
    await ops.closeBead('w', id('f.deploy'));
    const done = await patrolMolecules(ops);
    expect(done).toMatchObject({ closed: [root.id], completed: [root.id] });
    expect((await ops.store.get(issue.id)).status).toBe('closed');
    const progress = moleculeProgress(await moleculeBeads(ops, await ops.store.get(root.id)));
    expect(progress).toMatchObject({ status: 'closed', total: 7, closed: 7 });
    expect(progress.steps.find((s) => s.ref === 'f.deploy')!.needs).toEqual([id('f.verify')]);
    const types = (await events.list({ limit: 1000 })).items.map((e) => e.type);
    expect(types.filter((t) => t === 'molecule.created')).toHaveLength(1);
    expect(types.filter((t) => t === 'molecule.completed')).toHaveLength(1);
    expect(types.filter((t) => t === 'bead.created')).toHaveLength(9);
    // A second pass finds nothing more to do.
    expect(await patrolMolecules(ops)).toEqual({ closed: [], completed: [], collected: [] });
  });

  it('a wisp is deleted, root and steps, its TTL after it completes', async () => {
    const { ops, clock } = city();
    const { root, steps } = await pourMolecule(
      ops,
      'mayor',
      compiled('[[steps]]\nid = "a"\n[[steps]]\nid = "b"\nneeds = ["a"]\n'),
      { wispTtlMs: 60_000 },
    );
    expect(root.labels).toEqual(['wisp']);
    for (const s of steps) await ops.closeBead('w', s.id);
    expect((await patrolMolecules(ops, clock.now())).completed).toEqual([root.id]);
    clock.advance(59_000);
    expect((await patrolMolecules(ops, clock.now())).collected).toEqual([]);
    clock.advance(2_000);
    expect((await patrolMolecules(ops, clock.now())).collected).toEqual([root.id]);
    expect(await ops.store.getMany([root.id, ...steps.map((s) => s.id)])).toEqual([]);
  });

  it('refuses a closed or missing bead to pour on, and makes nothing', async () => {
    const { ops } = city();
    const closed = await ops.createBead('mayor', { title: 'done' });
    await ops.closeBead('mayor', closed.id);
    const before = await ops.store.count();
    await expect(pourMolecule(ops, 'mayor', compiled(FLOW), { on: closed.id })).rejects.toThrow(
      /is closed/,
    );
    await expect(pourMolecule(ops, 'mayor', compiled(FLOW), { on: 'gc-nope' })).rejects.toThrow(
      /gc-nope/,
    );
    expect(await ops.store.count()).toBe(before);
  });
});
