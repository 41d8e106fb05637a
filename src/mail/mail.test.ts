import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryEventLog, type GcEvent } from '../events/index.js';
import { MemoryStore, SqliteStore } from '../store/index.js';
import { runMailConformance } from './conformance.js';
import { StoreMail } from './store-mail.js';
import { ExecMail } from './exec.js';
import { RecordingMail } from './recording.js';

runMailConformance('store (memory)', () =>
  Promise.resolve({
    mail: new StoreMail(new MemoryStore({ prefix: 'ml' }), { maxUnread: 5 }),
    maxUnread: 5,
  }),
);

runMailConformance('store (sqlite)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-mail-'));
  const store = new SqliteStore({ path: path.join(dir, 'beads.db'), prefix: 'ml' });
  return {
    mail: new StoreMail(store, { maxUnread: 6 }),
    maxUnread: 6,
    close: async () => {
      await store.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const script = path.resolve(import.meta.dirname, '..', '..', 'examples', 'mail', 'file-mail.mjs');
runMailConformance('exec (examples/mail/file-mail.mjs)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-execmail-'));
  return {
    mail: new ExecMail(script, { env: { GC_MAIL_DIR: dir, GC_MAIL_MAX_UNREAD: '6' } }),
    maxUnread: 6,
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

/** Every event a log holds. */
async function allEvents(events: MemoryEventLog): Promise<GcEvent[]> {
  return (await events.list({ limit: 100_000 })).items;
}

/**
 * RecordingMail wraps every production provider (openMail): it must keep
 * the contract of what it wraps, and never put a body in the event log.
 */
runMailConformance('recording (over store, memory)', () => {
  const events = new MemoryEventLog();
  const bodies: string[] = [];
  const inner = new StoreMail(new MemoryStore({ prefix: 'rm' }), { maxUnread: 5 });
  // Note every body that goes in, to look for it in the log afterwards.
  const spy = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        for (const a of args) {
          const body = (a as { body?: unknown } | null)?.body;
          if (typeof body === 'string' && body.length >= 4) bodies.push(body);
        }
        return (v as (...x: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return Promise.resolve({
    mail: new RecordingMail(spy, events),
    maxUnread: 5,
    verify: async () => {
      const text = JSON.stringify(await allEvents(events));
      for (const b of bodies) expect(text).not.toContain(JSON.stringify(b).slice(1, -1));
    },
  });
});

describe('RecordingMail events', () => {
  it('records one event per change, with ids and subjects, never bodies', async () => {
    const events = new MemoryEventLog();
    const mail = new RecordingMail(new StoreMail(new MemoryStore({ prefix: 're' })), events);
    const q = await mail.send('mayor', 'w-1', { subject: 'Status?', body: 'BODY-ONE private' });
    const r = await mail.reply(q.id, 'w-1', { body: 'BODY-TWO private' });
    await mail.markRead(q.id);
    await mail.markUnread(q.id);
    await mail.read(q.id);
    await mail.archive(q.id);
    const third = await mail.send('w-1', 'mayor', { subject: 'again', body: 'BODY-THREE' });
    const page = await mail.inbox('mayor');
    expect(page.items.map((m) => m.id)).toEqual([r.id, third.id]);
    await mail.delete(third.id);
    // Reads without a change record nothing.
    await mail.check('w-1');
    await mail.all('w-1');
    await mail.get(q.id);
    await mail.thread(q.id);
    await mail.count('w-1');
    await mail.inbox('nobody');
    const got = await allEvents(events);
    expect(got.map((e) => [e.type, e.subject])).toEqual([
      ['mail.sent', q.id],
      ['mail.sent', r.id],
      ['mail.read', q.id],
      ['mail.unread', q.id],
      ['mail.read', q.id],
      ['mail.archived', q.id],
      ['mail.sent', third.id],
      ['mail.read', 'mayor'],
      ['mail.deleted', third.id],
    ]);
    expect(got[0]).toMatchObject({
      actor: 'mayor',
      payload: { to: 'w-1', subject: 'Status?', thread_id: q.thread_id },
    });
    expect(got[1]).toMatchObject({ actor: 'w-1', payload: { to: 'mayor', reply_to: q.id } });
    expect(got[7]!.payload).toEqual({ ids: [r.id, third.id] });
    expect(JSON.stringify(got)).not.toMatch(/BODY-/);
  });
});
