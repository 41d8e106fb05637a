/**
 * Mail conformance suite, run against every mail provider. The factory
 * returns a fresh, empty mail system; `maxUnread` is the inbox bound it was
 * built with (0 = none).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, TooLargeError, ValidationError } from '../core/index.js';
import { InboxFullError } from './errors.js';
import type { Mail } from './mail.js';

export interface MailHarness {
  mail: Mail;
  maxUnread: number;
  close?: () => Promise<void>;
  /** Checks the harness makes after each test (e.g. what a wrapper recorded). */
  verify?: () => Promise<void>;
}

export function runMailConformance(label: string, factory: () => Promise<MailHarness>): void {
  describe(`Mail conformance: ${label}`, () => {
    const open: MailHarness[] = [];
    const fresh = async (): Promise<Mail> => {
      const h = await factory();
      open.push(h);
      return h.mail;
    };
    afterEach(async () => {
      for (const h of open.splice(0)) {
        try {
          await h.verify?.();
        } finally {
          await h.close?.();
        }
      }
    });

    it('send fills the message; get round-trips and does not mark read', async () => {
      const m = await fresh();
      const sent = await m.send('mayor', 'w-1', {
        subject: 'Hi',
        body: 'line 1\nline 2 ✓ "q"',
        priority: 1,
        cc: ['w-2'],
      });
      expect(sent).toMatchObject({
        from: 'mayor',
        to: 'w-1',
        subject: 'Hi',
        body: 'line 1\nline 2 ✓ "q"',
        read: false,
        archived: false,
        thread_id: sent.id,
        reply_to: '',
        priority: 1,
        cc: ['w-2'],
      });
      expect(Number.isNaN(Date.parse(sent.created_at))).toBe(false);
      expect(await m.get(sent.id)).toEqual(sent);
      expect((await m.get(sent.id)).read).toBe(false);
    });

    it('inbox lists unread oldest first and marks them read; check does not', async () => {
      const m = await fresh();
      const a = await m.send('x', 'w-1', { subject: 'a', body: '1' });
      const b = await m.send('x', 'w-1', { subject: 'b', body: '2' });
      await m.send('x', 'w-2', { subject: 'other', body: '3' });
      expect((await m.check('w-1')).items.map((x) => x.id)).toEqual([a.id, b.id]);
      expect((await m.check('w-1')).items.map((x) => x.id)).toEqual([a.id, b.id]);
      const inbox = await m.inbox('w-1');
      expect(inbox.items.map((x) => [x.id, x.read])).toEqual([
        [a.id, true],
        [b.id, true],
      ]);
      expect((await m.inbox('w-1')).items).toEqual([]);
      expect((await m.check('w-1')).items).toEqual([]);
      expect((await m.all('w-1')).items.map((x) => x.id)).toEqual([a.id, b.id]);
    });

    it('inbox pages by limit: a non-null next_cursor means call again', async () => {
      const m = await fresh();
      for (let i = 0; i < 5; i++) await m.send('x', 'w-1', { subject: `s${i}`, body: '' });
      const first = await m.inbox('w-1', { limit: 3 });
      expect(first.items.map((x) => x.subject)).toEqual(['s0', 's1', 's2']);
      expect(first.next_cursor).not.toBeNull();
      const second = await m.inbox('w-1', { limit: 3 });
      expect(second.items.map((x) => x.subject)).toEqual(['s3', 's4']);
      expect(second.next_cursor).toBeNull();
    });

    it('read marks read and keeps the message; mark-read and mark-unread toggle inbox membership', async () => {
      const m = await fresh();
      const a = await m.send('x', 'w-1', { subject: 'a', body: '' });
      expect((await m.read(a.id)).read).toBe(true);
      expect((await m.check('w-1')).items).toEqual([]);
      expect((await m.markUnread(a.id)).read).toBe(false);
      expect((await m.markUnread(a.id)).read).toBe(false);
      expect((await m.check('w-1')).items.map((x) => x.id)).toEqual([a.id]);
      expect((await m.markRead(a.id)).read).toBe(true);
      expect((await m.markRead(a.id)).read).toBe(true);
      expect((await m.check('w-1')).items).toEqual([]);
      expect((await m.all('w-1')).items.map((x) => x.id)).toEqual([a.id]);
    });

    it('reply threads to the original sender; thread lists the whole conversation', async () => {
      const m = await fresh();
      const q = await m.send('mayor', 'w-1', { subject: 'Status?', body: 'how is it going' });
      const r1 = await m.reply(q.id, 'w-1', { body: 'half done' });
      expect(r1).toMatchObject({
        to: 'mayor',
        from: 'w-1',
        subject: 'Re: Status?',
        thread_id: q.id,
        reply_to: q.id,
      });
      const r2 = await m.reply(r1.id, 'mayor', { body: 'thanks' });
      expect(r2).toMatchObject({
        to: 'w-1',
        subject: 'Re: Status?',
        thread_id: q.id,
        reply_to: r1.id,
      });
      await m.send('mayor', 'w-1', { subject: 'unrelated', body: '' });
      expect((await m.thread(r2.id)).map((x) => x.id)).toEqual([q.id, r1.id, r2.id]);
      expect((await m.thread(q.id)).map((x) => x.id)).toEqual([q.id, r1.id, r2.id]);
    });

    it('archive removes from the mailbox; twice is an error; delete removes for good', async () => {
      const m = await fresh();
      const a = await m.send('x', 'w-1', { subject: 'a', body: '' });
      const b = await m.send('x', 'w-1', { subject: 'b', body: '' });
      expect((await m.archive(a.id)).archived).toBe(true);
      await expect(m.archive(a.id)).rejects.toBeInstanceOf(ConflictError);
      expect((await m.all('w-1')).items.map((x) => x.id)).toEqual([b.id]);
      expect((await m.get(a.id)).archived).toBe(true);
      await m.delete(b.id);
      await expect(m.get(b.id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(m.delete(b.id)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('count gives total and unread of the mailbox', async () => {
      const m = await fresh();
      expect(await m.count('w-1')).toEqual({ total: 0, unread: 0 });
      const a = await m.send('x', 'w-1', { subject: 'a', body: '' });
      await m.send('x', 'w-1', { subject: 'b', body: '' });
      const c = await m.send('x', 'w-1', { subject: 'c', body: '' });
      await m.read(a.id);
      await m.archive(c.id);
      expect(await m.count('w-1')).toEqual({ total: 2, unread: 1 });
    });

    it('bad input: missing message, body over 64 KiB, bad names', async () => {
      const m = await fresh();
      await expect(m.get('nope-123')).rejects.toBeInstanceOf(NotFoundError);
      await expect(m.reply('nope-123', 'x', { body: '' })).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        m.send('x', 'w-1', { subject: 's', body: 'x'.repeat(64 * 1024 + 1) }),
      ).rejects.toBeInstanceOf(TooLargeError);
      await expect(m.send('x', 'two words', { subject: 's', body: '' })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(m.send('', 'w-1', { subject: 's', body: '' })).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it('a full inbox rejects the send and keeps every message', async (ctx) => {
      const h = await factory();
      open.push(h);
      // Reported as skipped, never passed silently.
      if (h.maxUnread <= 0) ctx.skip(`${label} has no inbox bound`);
      const m = h.mail;
      for (let i = 0; i < h.maxUnread; i++)
        await m.send('x', 'w-1', { subject: `m${i}`, body: '' });
      await expect(
        m.send('x', 'w-1', { subject: 'one too many', body: '' }),
      ).rejects.toBeInstanceOf(InboxFullError);
      const all = await m.all('w-1', { limit: 1000 });
      expect(all.items.map((x) => x.subject)).toEqual(
        Array.from({ length: h.maxUnread }, (_, i) => `m${i}`),
      );
      await m.read(all.items[0]!.id);
      await m.send('x', 'w-1', { subject: 'fits now', body: '' });
    });

    it('concurrent senders never overshoot the inbox bound', async (ctx) => {
      const h = await factory();
      open.push(h);
      if (h.maxUnread <= 0) ctx.skip(`${label} has no inbox bound`);
      const results = await Promise.allSettled(
        Array.from({ length: h.maxUnread * 3 }, (_, i) =>
          h.mail.send(`s${i}`, 'w-9', { subject: `c${i}`, body: '' }),
        ),
      );
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const full = results.filter(
        (r) => r.status === 'rejected' && r.reason instanceof InboxFullError,
      ).length;
      expect(ok).toBe(h.maxUnread);
      expect(full).toBe(h.maxUnread * 2);
      expect(await h.mail.count('w-9')).toEqual({ total: h.maxUnread, unread: h.maxUnread });
    });

    it('senders to a mailbox counted a moment ago run side by side and still stop at the bound', async (ctx) => {
      const h = await factory();
      open.push(h);
      if (h.maxUnread <= 0) ctx.skip(`${label} has no inbox bound`);
      // The first send counts the mailbox; the waves after it find that count fresh.
      await h.mail.send('s', 'w-8', { subject: 'first', body: '' });
      const wave = (n: number, tag: string) =>
        Promise.allSettled(
          Array.from({ length: n }, (_, i) =>
            h.mail.send(`s${i}`, 'w-8', { subject: `${tag}${i}`, body: '' }),
          ),
        );
      const first = await wave(h.maxUnread * 3, 'a');
      expect(first.filter((r) => r.status === 'fulfilled')).toHaveLength(h.maxUnread - 1);
      for (const r of first) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InboxFullError);
      }
      expect(await h.mail.count('w-8')).toEqual({ total: h.maxUnread, unread: h.maxUnread });
      // Two read: exactly two more fit, however many try at once.
      const all = await h.mail.all('w-8', { limit: 1000 });
      await h.mail.read(all.items[0]!.id);
      await h.mail.read(all.items[1]!.id);
      const second = await wave(h.maxUnread, 'b');
      expect(second.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      expect((await h.mail.count('w-8')).unread).toBe(h.maxUnread);
    });
  });
}
