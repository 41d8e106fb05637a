import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch, database } from '../../test/helpers/db.js';
import { MemoryEventLog, type GcEvent } from '../events/index.js';
import { MemoryStore, SqlStore, SqliteStore } from '../store/index.js';
import { runMailConformance } from './conformance.js';
import { StoreMail, type MailRecorder } from './store-mail.js';
import type { Mail } from './mail.js';
import { inRequest, nextRequestWrite } from '../core/index.js';
import { ExecMail } from './exec.js';
import { RecordingMail } from './recording.js';
import { InboxFullError } from './errors.js';

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
for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  if (!server.url) {
    describe.skip(`${kind} mail${server.note}`, () => undefined);
    continue;
  }
  const scratch = new Scratch(server.url);
  afterAll(() => scratch.dropAll());
  runMailConformance(`store (${kind})`, async () => {
    const store = await SqlStore.open({
      url: server.url!,
      schema: await scratch.create(),
      prefix: 'ml',
      poolSize: 4,
    });
    return {
      mail: new StoreMail(store, { maxUnread: 6 }),
      maxUnread: 6,
      close: () => store.dispose(),
    };
  });
}

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

/** Drains a store's outbox into a log: what the city's publisher does after each write. */
function recorderFor(store: MemoryStore, log: MemoryEventLog): MailRecorder {
  return {
    rec: (events) => ({ events }),
    written: async () => {
      const rows = await store.outbox();
      for (const r of rows) await log.record(r.event);
      if (rows.length) await store.ackOutbox(rows[rows.length - 1]!.id);
    },
  };
}

describe('mail events', () => {
  const makers: [string, () => { mail: Mail; events: MemoryEventLog; store: MemoryStore }][] = [
    [
      'recorded after each change (RecordingMail)',
      () => {
        const events = new MemoryEventLog();
        const store = new MemoryStore({ prefix: 're' });
        return { mail: new RecordingMail(new StoreMail(store), events), events, store };
      },
    ],
    [
      'committed with each change (StoreMail with a recorder)',
      () => {
        const events = new MemoryEventLog();
        const store = new MemoryStore({ prefix: 're' });
        const inner = new StoreMail(store, { recorder: recorderFor(store, events) });
        return { mail: new RecordingMail(inner, events), events, store };
      },
    ],
  ];
  for (const [how, make] of makers) {
    it(`one event per change, with ids and subjects, never bodies: ${how}`, async () => {
      const { mail, events, store } = make();
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
      expect(got.map((e) => [e.type, e.subject, e.actor])).toEqual([
        ['mail.sent', q.id, 'mayor'],
        ['mail.sent', r.id, 'w-1'],
        ['mail.read', q.id, 'w-1'],
        ['mail.unread', q.id, 'w-1'],
        ['mail.read', q.id, 'w-1'],
        ['mail.archived', q.id, 'w-1'],
        ['mail.sent', third.id, 'w-1'],
        ['mail.read', r.id, 'mayor'],
        ['mail.read', third.id, 'mayor'],
        ['mail.deleted', third.id, 'mayor'],
      ]);
      expect(got[0]).toMatchObject({
        payload: { to: 'w-1', subject: 'Status?', thread_id: q.thread_id },
      });
      expect(got[1]).toMatchObject({ payload: { to: 'mayor', reply_to: q.id } });
      expect(got[7]!.message).toMatch(/read in the inbox/);
      expect(JSON.stringify(got)).not.toMatch(/BODY-/);
      expect(await store.outbox()).toEqual([]);
    });
  }

  it('a send inside a retried API request sends once', async () => {
    const events = new MemoryEventLog();
    const store = new MemoryStore({ prefix: 'rq' });
    const mail = new StoreMail(store, {
      recorder: {
        rec: (evs) => ({ events: evs, request: nextRequestWrite() }),
        written: () => Promise.resolve(),
      },
    });
    const req = { scope: 'k', key: 'send-1', fp: 'f' };
    const send = () => inRequest(req, () => mail.send('mayor', 'w-1', { subject: 's', body: 'b' }));
    const first = await send();
    const again = await send();
    expect(again.id).toBe(first.id);
    expect((await mail.all('w-1')).items).toHaveLength(1);
    // The send's event committed once, with the message.
    expect((await store.outbox()).map((r) => r.event.type)).toEqual(['mail.sent']);
    await events.close();
  });
});

describe('the inbox bound without a count per send', () => {
  it("room freed by a read is seen at once; another process's mail within a second", async () => {
    const store = new MemoryStore({ prefix: 'ib' });
    const a = new StoreMail(store, { maxUnread: 5 });
    const b = new StoreMail(store, { maxUnread: 5 });
    const sent = [];
    for (let i = 0; i < 5; i++)
      sent.push(await a.send(`s${i}`, 'w-1', { subject: `m${i}`, body: '' }));
    await expect(a.send('s9', 'w-1', { subject: 'full', body: '' })).rejects.toBeInstanceOf(
      InboxFullError,
    );
    // A read makes room: the next send counts again and gets in.
    await a.read(sent[0]!.id);
    await a.send('s5', 'w-1', { subject: 'after read', body: '' });
    // Another process reads three and sends three: full again.
    for (const m of sent.slice(1, 4)) await b.read(m.id);
    for (let i = 0; i < 3; i++) await b.send(`t${i}`, 'w-1', { subject: `t${i}`, body: '' });
    expect((await a.count('w-1')).unread).toBe(5);
    // This process remembers 5 (at the bound): it counts, and refuses.
    await expect(a.send('s9', 'w-1', { subject: 'late', body: '' })).rejects.toBeInstanceOf(
      InboxFullError,
    );
    // Below the bound, a remembered count is trusted for a second at most.
    const unread = (await a.check('w-1')).items;
    await b.read(unread[0]!.id);
    await b.read(unread[1]!.id);
    await a.send('s10', 'w-1', { subject: 'room', body: '' }); // counted 3: remembers 4
    await b.send('u1', 'w-1', { subject: 'u1', body: '' }); // 5 unread; this one remembers 4
    await new Promise((r) => setTimeout(r, 1100));
    await expect(a.send('s11', 'w-1', { subject: 'late', body: '' })).rejects.toBeInstanceOf(
      InboxFullError,
    );
    expect((await a.count('w-1')).unread).toBe(5);
  });

  it("under half the bound a remembered count is trusted for five seconds: another process's mail is seen then", async () => {
    const store = new MemoryStore({ prefix: 'ih' });
    const a = new StoreMail(store, { maxUnread: 10 });
    const b = new StoreMail(store, { maxUnread: 10 });
    await a.send('s0', 'w-2', { subject: 'one', body: '' }); // counted 0: remembers 1
    for (let i = 0; i < 9; i++) await b.send(`t${i}`, 'w-2', { subject: `t${i}`, body: '' });
    // Ten unread now; this process still trusts its 1 (far below 10), past a second.
    await new Promise((r) => setTimeout(r, 1100));
    await a.send('s1', 'w-2', { subject: 'trusted', body: '' });
    expect((await a.count('w-2')).unread).toBe(11);
    // Past five seconds it counts again, and refuses.
    await new Promise((r) => setTimeout(r, 4000));
    await expect(a.send('s2', 'w-2', { subject: 'late', body: '' })).rejects.toBeInstanceOf(
      InboxFullError,
    );
  });
});
