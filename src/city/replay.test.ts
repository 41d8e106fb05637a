import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../events/index.js';
import { MemoryStore } from '../store/index.js';
import { CityOps } from './ops.js';
import { ReplayError, replayBeads } from './replay.js';

async function allEvents(log: MemoryEventLog) {
  return (await log.list({ limit: 10_000 })).items;
}

describe('replayBeads', () => {
  it('every bead operation of the city replays to the store state', async () => {
    const store = new MemoryStore({ prefix: 'rp' });
    const log = new MemoryEventLog();
    const ops = new CityOps(store, log);
    const a = await ops.createBead('human', { title: 'a' });
    const b = await ops.createBead('human', { title: 'b', needs: [a.id] });
    const c = await ops.createBead('human', { title: 'c', assignee: 'w9' });
    const d = await ops.createBead('human', { title: 'imported', status: 'closed' });
    await ops.claimBead('w1', a.id);
    await ops.unclaimBead('w1', a.id);
    await ops.claimNext('w2', {});
    await ops.closeBead('w2', a.id, 'done');
    await ops.closeBead('w2', a.id, 'again: no change');
    await ops.claimBead('w3', b.id);
    await ops.releaseClaimsOf('controller', 'w3', 'session died');
    await ops.updateBead('human', b.id, { status: 'in_progress', assignee: 'w4' });
    await ops.updateBead('human', c.id, { priority: 0, assignee: '' });
    await ops.setMetadata('human', c.id, 'k', 'v');
    await ops.updateBead('human', c.id, { status: 'closed' });
    await ops.updateBead('human', c.id, { status: 'open' });
    await ops.deleteBead('human', d.id);

    const replayed = replayBeads(await allEvents(log));
    for (const id of [a.id, b.id, c.id]) {
      const bead = await store.get(id);
      const r = replayed.get(id)!;
      expect({ status: r.status, assignee: r.assignee, attempt: r.attempt }).toEqual({
        status: bead.status,
        assignee: bead.assignee,
        attempt: bead.attempt,
      });
    }
    expect(replayed.get(a.id)!.closes).toBe(1);
    expect(replayed.get(c.id)!.closes).toBe(1);
    expect(replayed.get(d.id)).toMatchObject({ status: 'closed', closes: 1, deleted: true });
  });

  it('refuses a log it cannot replay, saying which event', () => {
    expect(() =>
      replayBeads([
        { seq: 1, type: 'bead.created', ts: '', actor: 'h', subject: 'x-1' },
        {
          seq: 2,
          type: 'bead.updated',
          ts: '',
          actor: 'h',
          subject: 'x-1',
          payload: { action: 'update', fields: ['status'] },
        },
      ]),
    ).toThrow(ReplayError);
    expect(() =>
      replayBeads([{ seq: 7, type: 'bead.closed', ts: '', actor: 'h', subject: 'x-9' }]),
    ).toThrow(/event 7/);
  });
});
