/**
 * Mail stored in the work store, as Gas City does: a message is a bead of
 * type `message` (never ready work), title = subject, description = body,
 * assignee = recipient, from = sender, labels `gc:message`,
 * `thread:<root id>` and `reply-to:<id>` on replies, `read` once read;
 * archive = close. Read state is also metadata `gc.read`, so "unread" is
 * an indexed equality filter rather than a scan.
 */
import { ConflictError, NotFoundError } from '../core/index.js';
import type { Bead, CloseResult, OutboxEvent, Page, Store, WriteRecord } from '../store/index.js';
import { InboxGate } from './inbox-gate.js';
import { mailChangedEvent, mailSentEvent } from './recording.js';
import { checkMailName, checkSend } from './validate.js';
import { type Mail, type MailCount, type MailPage, type Message, type SendInput } from './mail.js';

const TYPE = 'message';
const READ = 'gc.read';
const CC = 'gc.cc';

export interface StoreMailOptions {
  /** Per-recipient cap on unread mail; 0 = none. */
  maxUnread?: number;
  /** Per-sender cap on unread mail in one mailbox; 0 = none. */
  maxUnreadPerSender?: number;
  /**
   * Commit each change's event with the change (one commit per change): the
   * city's operations give their record (events, and the write's place in
   * an API request with an Idempotency-Key, so a retried send does not send
   * twice) and are told after each write.
   */
  recorder?: MailRecorder;
}

export interface MailRecorder {
  /** The record a write carries: its events, and its place in the current request. */
  rec<T>(events: (result: T) => OutboxEvent[]): WriteRecord<T>;
  /** After a write committed: its events go on to the log. */
  written(): Promise<void>;
}

/** Senders that are the city itself: their mail (merge and conflict notices) is never refused. */
export const CITY_SENDERS: ReadonlySet<string> = new Set(['controller', 'refinery', 'mail', 'gc']);
/** Metadata key naming the sender, so one sender's unread mail can be counted. */
const FROM = 'gc.from';

function toMessage(b: Bead): Message {
  const thread = b.labels.find((l) => l.startsWith('thread:'))?.slice(7);
  const replyTo = b.labels.find((l) => l.startsWith('reply-to:'))?.slice(9);
  return {
    id: b.id,
    from: b.from,
    to: b.assignee,
    subject: b.title,
    body: b.description,
    created_at: b.created_at,
    read: b.metadata[READ] === 'true',
    archived: b.status === 'closed',
    thread_id: thread ?? b.id,
    reply_to: replyTo ?? '',
    priority: b.priority,
    cc: b.metadata[CC] ? b.metadata[CC].split(',') : [],
  };
}

export class StoreMail implements Mail {
  readonly recordsEvents: boolean;
  private readonly recorder: MailRecorder | undefined;
  private readonly gate: InboxGate;

  constructor(
    private readonly store: Store,
    options: StoreMailOptions = {},
  ) {
    this.gate = new InboxGate(options.maxUnread ?? 0, options.maxUnreadPerSender ?? 0, {
      unread: (to, from) =>
        this.store.count({
          type: TYPE,
          assignee: to,
          status: 'open',
          metadata: { [READ]: 'false', ...(from !== undefined ? { [FROM]: from } : {}) },
        }),
    });
    this.recorder = options.recorder;
    this.recordsEvents = this.recorder !== undefined;
  }

  private rec<T>(events: (result: T) => OutboxEvent[]): WriteRecord<T> | undefined {
    return this.recorder?.rec(events);
  }

  private async written(): Promise<void> {
    await this.recorder?.written();
  }

  /** The change of a message's read state, with its event. */
  private async setRead(b: Bead, read: boolean, verb: string): Promise<Message> {
    const after = await this.store.update(
      b.id,
      read
        ? { metadata: { [READ]: 'true' }, labels: ['read'] }
        : { metadata: { [READ]: 'false' }, remove_labels: ['read'] },
      this.rec<Bead>((x) => [
        mailChangedEvent(read ? 'mail.read' : 'mail.unread', toMessage(x), verb),
      ]),
    );
    await this.written();
    return toMessage(after);
  }

  private async bead(id: string): Promise<Bead> {
    let b: Bead;
    try {
      b = await this.store.get(id);
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError('message', id);
      throw e;
    }
    if (b.issue_type !== TYPE) throw new NotFoundError('message', id);
    return b;
  }

  private async deliver(
    from: string,
    to: string,
    input: SendInput,
    thread: { root: string; replyTo: string } | undefined,
  ): Promise<Message> {
    checkSend(from, to, input);
    if (!this.gate.bounded || CITY_SENDERS.has(from)) {
      return this.insert(from, to, input, thread);
    }
    return this.gate.admit(from, to, () => this.insert(from, to, input, thread));
  }

  private async insert(
    from: string,
    to: string,
    input: SendInput,
    thread: { root: string; replyTo: string } | undefined,
  ): Promise<Message> {
    const subject = (input.subject ?? '').trim() || '(no subject)';
    const bead = await this.store.create(
      {
        title: subject,
        type: TYPE,
        description: input.body,
        assignee: to,
        from,
        ...(input.priority !== undefined ? { priority: input.priority } : {}),
        labels: [
          'gc:message',
          ...(thread ? [`thread:${thread.root}`, `reply-to:${thread.replyTo}`] : []),
        ],
        metadata: {
          [READ]: 'false',
          [FROM]: from,
          ...(input.cc?.length ? { [CC]: input.cc.join(',') } : {}),
        },
      },
      this.rec<Bead>((b) => [mailSentEvent(toMessage(b))]),
    );
    await this.written();
    return toMessage(bead);
  }

  send(from: string, to: string, input: SendInput): Promise<Message> {
    return this.deliver(from, to, input, undefined);
  }

  private async listFor(
    recipient: string,
    unreadOnly: boolean,
    page: MailPage,
  ): Promise<Page<Message>> {
    checkMailName(recipient, 'recipient');
    const p = await this.store.list({
      type: TYPE,
      assignee: recipient,
      status: 'open',
      ...(unreadOnly ? { metadata: { [READ]: 'false' } } : {}),
      ...(page.limit !== undefined ? { limit: page.limit } : {}),
      ...(page.cursor ? { cursor: page.cursor } : {}),
    });
    return { items: p.items.map(toMessage), next_cursor: p.next_cursor };
  }

  async inbox(recipient: string, page: MailPage = {}): Promise<Page<Message>> {
    // No cursor: what this call returns is marked read, so the next call
    // starts at the first message still unread.
    const p = await this.listFor(
      recipient,
      true,
      page.limit !== undefined ? { limit: page.limit } : {},
    );
    const items: Message[] = [];
    for (const m of p.items) items.push(await this.markRead(m.id, 'read in the inbox'));
    return { items, next_cursor: p.next_cursor === null ? null : 'inbox' };
  }

  check(recipient: string, page: MailPage = {}): Promise<Page<Message>> {
    return this.listFor(recipient, true, page);
  }

  all(recipient: string, page: MailPage = {}): Promise<Page<Message>> {
    return this.listFor(recipient, false, page);
  }

  async get(id: string): Promise<Message> {
    return toMessage(await this.bead(id));
  }

  read(id: string): Promise<Message> {
    return this.markRead(id, 'read');
  }

  async markRead(id: string, verb = 'marked read'): Promise<Message> {
    const b = await this.bead(id);
    if (b.metadata[READ] === 'true') return toMessage(b);
    return this.setRead(b, true, verb);
  }

  async markUnread(id: string): Promise<Message> {
    const b = await this.bead(id);
    if (b.metadata[READ] !== 'true') return toMessage(b);
    return this.setRead(b, false, 'marked unread');
  }

  async reply(
    id: string,
    from: string,
    input: Omit<SendInput, 'subject'> & { subject?: string },
  ): Promise<Message> {
    const original = toMessage(await this.bead(id));
    const subject =
      input.subject ??
      (/^re:/i.test(original.subject) ? original.subject : `Re: ${original.subject}`);
    return this.deliver(
      from,
      original.from,
      { ...input, subject },
      { root: original.thread_id, replyTo: original.id },
    );
  }

  async thread(id: string): Promise<Message[]> {
    const root = (await this.get(id)).thread_id;
    const out: Message[] = [await this.get(root)];
    let cursor: string | undefined;
    do {
      const p = await this.store.list({
        type: TYPE,
        label: `thread:${root}`,
        status: ['open', 'closed'],
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      out.push(...p.items.map(toMessage));
      cursor = p.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  async archive(id: string): Promise<Message> {
    const b = await this.bead(id);
    if (b.status === 'closed') {
      throw new ConflictError(`message ${id} is already archived`, { details: { id } });
    }
    const r = await this.store.close(
      id,
      { reason: 'archived' },
      this.rec<CloseResult>((x) =>
        x.changed ? [mailChangedEvent('mail.archived', toMessage(x.bead), 'archived')] : [],
      ),
    );
    await this.written();
    return toMessage(r.bead);
  }

  async delete(id: string): Promise<void> {
    const m = toMessage(await this.bead(id));
    await this.store.delete(
      id,
      this.rec<void>(() => [mailChangedEvent('mail.deleted', m, 'deleted')]),
    );
    await this.written();
  }

  async count(recipient: string): Promise<MailCount> {
    checkMailName(recipient, 'recipient');
    const base = { type: TYPE, assignee: recipient, status: 'open' as const };
    const [total, unread] = await Promise.all([
      this.store.count(base),
      this.store.count({ ...base, metadata: { [READ]: 'false' } }),
    ]);
    return { total, unread };
  }
}
