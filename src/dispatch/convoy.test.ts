/**
 * Convoys over a real CityOps (memory store and event log): waves held by
 * gates until the work before them has landed, the timeout, additions,
 * auto-close, and bad input refused without changes.
 */
import { describe, expect, it } from 'vitest';
import { CityOps } from '../city/index.js';
import { MemoryEventLog } from '../events/index.js';
import { MemoryStore } from '../store/index.js';
import { addToConvoy, convoyStatus, createConvoy, listConvoys, patrolConvoys } from './index.js';

async function city(n: number) {
  const store = new MemoryStore();
  const events = new MemoryEventLog();
  const ops = new CityOps(store, events);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const b = await ops.createBead('mayor', {
      title: `work ${i}`,
      // Every third builds on the one before it.
      ...(i % 3 === 2 ? { needs: [ids[i - 1]!] } : {}),
    });
    ids.push(b.id);
  }
  return { store, events, ops, ids };
}

const readyIds = async (ops: CityOps) =>
  (await ops.store.ready({ limit: 1000 })).items.map((b) => b.id).sort();

describe('convoys', () => {
  it('releases waves only when the work before has landed (merged, not just closed)', async () => {
    const { ops, ids, events } = await city(6);
    const st = await createConvoy(ops, 'mayor', 'feature x', ids, { waveSize: 2 });
    expect(st.waves.map((w) => w.beads.length)).toEqual([2, 2, 2]);
    expect(st.waves.map((w) => w.released)).toEqual([true, false, false]);
    const wave1 = st.waves[0]!.beads.map((b) => b.id);
    // Only wave 1 is ready work; later waves wait on their gate.
    expect(await readyIds(ops)).toEqual([...wave1].sort());
    const held = await ops.store.get(st.waves[1]!.beads[0]!.id);
    expect(held.dependencies.map((d) => d.depends_on_id)).toContain(st.waves[1]!.gate);

    // Closed by the agent, but a merge request is still waiting: held.
    for (const id of wave1) await ops.closeBead('agent', id, 'done');
    const pending = new Set(wave1);
    let r = await patrolConvoys(ops, (id) => Promise.resolve(pending.has(id)));
    expect(r.released).toEqual([]);
    // Merged: wave 2 goes.
    pending.clear();
    r = await patrolConvoys(ops, () => Promise.resolve(false));
    expect(r.released).toEqual([{ convoy: st.convoy.id, wave: 2, reason: 'landed' }]);
    const wave2 = st.waves[1]!.beads.map((b) => b.id);
    expect((await readyIds(ops)).filter((id) => wave2.includes(id)).length).toBeGreaterThan(0);
    const released = (await events.list({ type: 'wave.released', limit: 10 })).items;
    expect(released.map((e) => (e.payload as { wave: number }).wave)).toEqual([1, 2]);
    // Nothing more until wave 2 lands.
    expect((await patrolConvoys(ops, () => Promise.resolve(false))).released).toEqual([]);
  });

  it('dependency order: a bead never goes in a wave before the bead it needs', async () => {
    const { ops, ids } = await city(9);
    const st = await createConvoy(ops, 'mayor', 'chain', [...ids].reverse(), { waveSize: 3 });
    const waveOf = new Map(st.waves.flatMap((w) => w.beads.map((b) => [b.id, w.wave] as const)));
    for (const id of ids) {
      const b = await ops.store.get(id);
      for (const d of b.dependencies.filter((x) => ids.includes(x.depends_on_id))) {
        expect(waveOf.get(d.depends_on_id)!).toBeLessThanOrEqual(waveOf.get(id)!);
      }
    }
  });

  it('a stuck wave is passed after its timeout', async () => {
    const { ops, ids } = await city(4);
    const st = await createConvoy(ops, 'mayor', 'slow', ids, { waveSize: 2, waveTimeoutMs: 1000 });
    const t0 = Number(st.convoy.metadata['convoy.wave_released_at']);
    expect((await patrolConvoys(ops, () => Promise.resolve(false), t0 + 500)).released).toEqual([]);
    expect((await patrolConvoys(ops, () => Promise.resolve(false), t0 + 1500)).released).toEqual([
      { convoy: st.convoy.id, wave: 2, reason: 'timeout' },
    ]);
  });

  it('closes itself when its beads are closed, unless owned; its open gates go with it', async () => {
    const { ops, ids } = await city(4);
    const auto = await createConvoy(ops, 'mayor', 'auto', ids.slice(0, 2));
    const owned = await createConvoy(ops, 'mayor', 'mine', ids.slice(2), {
      owned: true,
      waveSize: 1,
    });
    for (const id of ids) await ops.closeBead('agent', id, 'done');
    const r = await patrolConvoys(ops, () => Promise.resolve(false));
    expect(r.closed).toEqual([auto.convoy.id]);
    expect((await ops.store.get(auto.convoy.id)).status).toBe('closed');
    expect((await ops.store.get(owned.convoy.id)).status).toBe('open');
    const list = await listConvoys(ops);
    expect(list.items.map((c) => c.id)).toEqual([owned.convoy.id]);
    expect(list.items[0]).toMatchObject({ total: 2, closed: 2, wave_size: 1 });
    expect((await listConvoys(ops, { all: true })).items).toHaveLength(2);
  });

  it('the patrol tells the owner and notify when it closes a convoy, never the closer', async () => {
    const { ops, ids } = await city(3);
    const told: { to: string; subject: string }[] = [];
    const notify = (to: string, subject: string) => {
      told.push({ to, subject });
      return Promise.resolve();
    };
    const c = await createConvoy(ops, 'mayor', 'tell', ids.slice(0, 2), {
      metadata: { 'convoy.notify': 'deacon' },
    });
    // Made by the patrol's own actor: nobody else to tell.
    const quiet = await createConvoy(ops, 'convoy', 'quiet', ids.slice(2));
    for (const id of ids) await ops.closeBead('agent', id, 'done');
    const r = await patrolConvoys(ops, () => Promise.resolve(false), Date.now(), undefined, notify);
    expect(r.closed.sort()).toEqual([c.convoy.id, quiet.convoy.id].sort());
    expect(told.map((t) => t.to).sort()).toEqual(['deacon', 'mayor']);
    expect(told.every((t) => t.subject.includes(c.convoy.id))).toBe(true);
    const ev = (await ops.events.list({ type: 'convoy.closed' })).items;
    expect(ev.map((e) => e.subject).sort()).toEqual([c.convoy.id, quiet.convoy.id].sort());
  });

  it('additions go after the released waves', async () => {
    const { ops, ids } = await city(5);
    const st = await createConvoy(ops, 'mayor', 'grow', ids.slice(0, 2), { waveSize: 2 });
    expect(st.waves).toHaveLength(1);
    const more = await addToConvoy(ops, 'mayor', st.convoy.id, ids.slice(2));
    expect(more.waves.map((w) => [w.wave, w.beads.length, w.released])).toEqual([
      [1, 2, true],
      [2, 2, false],
      [3, 1, false],
    ]);
    // Adding the same beads again changes nothing.
    const again = await addToConvoy(ops, 'mayor', st.convoy.id, ids.slice(2));
    expect(again.total).toBe(5);
  });

  it('refuses bad input and changes nothing', async () => {
    const { ops, ids, store } = await city(3);
    const c = await createConvoy(ops, 'mayor', 'one', [ids[0]!]);
    const before = await store.count({});
    await expect(createConvoy(ops, 'mayor', 'two', [ids[1]!, ids[0]!])).rejects.toThrow(
      /already belongs to/,
    );
    await expect(createConvoy(ops, 'mayor', ' ', [ids[1]!])).rejects.toThrow(/must not be empty/);
    await expect(createConvoy(ops, 'mayor', 'x', ['gc-nope'])).rejects.toThrow(/not found/);
    await expect(createConvoy(ops, 'mayor', 'x', [ids[1]!], { waveSize: 0 })).rejects.toThrow(
      /wave_size/,
    );
    await expect(addToConvoy(ops, 'mayor', ids[1]!, [ids[2]!])).rejects.toThrow(/not a convoy/);
    await expect(createConvoy(ops, 'mayor', 'x', [c.convoy.id])).rejects.toThrow(/not work/);
    expect(await store.count({})).toBe(before);
    expect((await convoyStatus(ops, c.convoy.id)).total).toBe(1);
  });
});
