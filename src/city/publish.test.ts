import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { armFaults } from '../core/index.js';
import { JsonlEventLog, MemoryEventLog } from '../events/index.js';
import { MemoryStore, SqliteStore } from '../store/index.js';
import { CityOps } from './ops.js';
import { replayBeads } from './replay.js';

const dirs: string[] = [];
afterEach(async () => {
  armFaults('');
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('the outbox publisher', () => {
  it('after a crash between the log and the ack, recovery appends only what is missing', async () => {
    const store = new MemoryStore({ prefix: 'pb' });
    const log = new MemoryEventLog();
    const ev = (t: string) => ({
      events: (b: { id: string }) => [
        { type: 'bead.created', actor: 'x', subject: b.id, message: t },
      ],
    });
    // Three writes committed with their events; the first two reached the
    // log before the crash, the ack did not.
    await store.create({ title: 'a' }, ev('a'));
    await store.create({ title: 'b' }, ev('b'));
    await store.create({ title: 'c' }, ev('c'));
    const rows = await store.outbox();
    await log.record(rows[0]!.event);
    await log.record({ type: 'session.woke', actor: 'controller' });
    await log.record(rows[1]!.event);
    const ops = new CityOps(store, log, undefined, () => undefined);
    expect(await ops.recover()).toBe(1);
    const events = (await log.list({})).items;
    expect(events.map((e) => e.message ?? e.type)).toEqual(['a', 'session.woke', 'b', 'c']);
    expect(await store.outbox()).toEqual([]);
    expect(await ops.recover()).toBe(0);
  });

  it('when the log fails, the write still succeeds and its event follows once the log works', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-pub-'));
    dirs.push(dir);
    const store = new SqliteStore({ path: path.join(dir, 'beads.db'), prefix: 'pf' });
    const log = await JsonlEventLog.open({ path: path.join(dir, 'events.jsonl') });
    const lines: string[] = [];
    const ops = new CityOps(store, log, undefined, (l) => lines.push(l));
    try {
      armFaults('events.append:EIO:2');
      const b = await ops.createBead('human', { title: 'written while the log fails' });
      expect((await store.get(b.id)).title).toBe('written while the log fails');
      expect(lines.join('\n')).toMatch(/wait in the outbox/);
      // The publisher retries on its own.
      for (let i = 0; i < 200 && (await store.outbox()).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await ops.flush();
      const events = (await log.list({})).items;
      expect(events.filter((e) => e.type === 'bead.created').map((e) => e.subject)).toEqual([b.id]);
      const replayed = replayBeads(events);
      expect(replayed.get(b.id)?.status).toBe('open');
    } finally {
      ops.close();
      await log.close();
      await store.dispose();
    }
  });
});
