/**
 * Any Mail provider with an event per change: mail.sent (and replies),
 * mail.read, mail.unread, mail.archived, mail.deleted. Bodies never go into
 * events (they can be large or private): only ids, sender, recipient and
 * subject.
 */
import type { EventInput, EventLog, GcEvent } from '../events/index.js';
import type { Page } from '../store/index.js';
import type { Mail, MailCount, MailPage, Message, SendInput } from './mail.js';

/** The event of a sent message (or reply). */
export function mailSentEvent(m: Message): EventInput & { actor: string } {
  return {
    type: 'mail.sent',
    actor: m.from,
    subject: m.id,
    payload: { to: m.to, subject: m.subject, thread_id: m.thread_id, reply_to: m.reply_to },
    message: `mail ${m.id} from ${m.from} to ${m.to}: ${m.subject}`,
  };
}

/** The event of a change to a message (read, unread, archived, deleted), by its recipient. */
export function mailChangedEvent(
  type: string,
  m: Message,
  verb: string,
): EventInput & { actor: string } {
  return { type, actor: m.to, subject: m.id, message: `mail ${m.id} ${verb}` };
}

/**
 * Records one event per change of a provider that does not record its own
 * (exec mail), after the change. A provider that commits its events with
 * its writes (`recordsEvents`) passes straight through.
 */
export class RecordingMail implements Mail {
  private readonly quiet: boolean;

  constructor(
    readonly inner: Mail,
    private readonly events: EventLog,
  ) {
    this.quiet = inner.recordsEvents === true;
  }

  private async sent(m: Message): Promise<Message> {
    if (!this.quiet) await this.events.record(mailSentEvent(m));
    return m;
  }

  private async changed(type: string, m: Message, verb: string): Promise<Message> {
    if (!this.quiet) await this.events.record(mailChangedEvent(type, m, verb));
    return m;
  }

  async send(from: string, to: string, input: SendInput): Promise<Message> {
    return this.sent(await this.inner.send(from, to, input));
  }

  async inbox(recipient: string, page?: MailPage): Promise<Page<Message>> {
    const p = await this.inner.inbox(recipient, page);
    // One event per message read, as every other change has its own.
    for (const m of p.items) await this.changed('mail.read', m, 'read in the inbox');
    return p;
  }

  check(recipient: string, page?: MailPage): Promise<Page<Message>> {
    return this.inner.check(recipient, page);
  }

  all(recipient: string, page?: MailPage): Promise<Page<Message>> {
    return this.inner.all(recipient, page);
  }

  get(id: string): Promise<Message> {
    return this.inner.get(id);
  }

  async read(id: string): Promise<Message> {
    return this.changed('mail.read', await this.inner.read(id), 'read');
  }

  async markRead(id: string): Promise<Message> {
    return this.changed('mail.read', await this.inner.markRead(id), 'marked read');
  }

  async markUnread(id: string): Promise<Message> {
    return this.changed('mail.unread', await this.inner.markUnread(id), 'marked unread');
  }

  async reply(
    id: string,
    from: string,
    input: Omit<SendInput, 'subject'> & { subject?: string },
  ): Promise<Message> {
    return this.sent(await this.inner.reply(id, from, input));
  }

  thread(id: string): Promise<Message[]> {
    return this.inner.thread(id);
  }

  async archive(id: string): Promise<Message> {
    return this.changed('mail.archived', await this.inner.archive(id), 'archived');
  }

  async delete(id: string): Promise<void> {
    if (this.quiet) return this.inner.delete(id);
    const m = await this.inner.get(id);
    await this.inner.delete(id);
    await this.changed('mail.deleted', m, 'deleted');
  }

  count(recipient: string): Promise<MailCount> {
    return this.inner.count(recipient);
  }
}

/**
 * An event as an agent other than the sender and the recipient may see it:
 * mail events keep their type, ids, sender and recipient, and lose the
 * subject (in the payload and the message). Other events pass unchanged.
 */
export function mailEventFor<E extends GcEvent>(e: E, viewer: string): E {
  if (!e.type.startsWith('mail.') || e.actor === viewer) return e;
  const payload = (e.payload ?? {}) as Record<string, unknown>;
  if (payload.to === viewer) return e;
  const kept: Record<string, unknown> = {};
  for (const k of ['to', 'thread_id', 'reply_to', 'ids']) if (k in payload) kept[k] = payload[k];
  const to = typeof payload.to === 'string' ? ` to ${payload.to}` : '';
  return {
    ...e,
    payload: kept,
    message: `${e.type} ${e.subject ?? ''} by ${e.actor}${to}`,
  };
}
