/**
 * The mail seam: messages between agents (and humans). Operations follow
 * the Gas City mail contract (docs/mail.md). Every method is async; a
 * missing message is a NotFoundError; a body over 64 KiB is TooLargeError;
 * a full inbox rejects the send with InboxFullError (the oldest mail is
 * never dropped to make room).
 */
import type { Page } from '../store/index.js';

export interface Message {
  id: string;
  from: string;
  to: string;
  subject: string;
  body: string;
  created_at: string;
  read: boolean;
  archived: boolean;
  /** Id of the first message of the thread (its own id for a new thread). */
  thread_id: string;
  /** The message this one answers ("" when none). */
  reply_to: string;
  /** 0 (urgent) .. 4; default 2. */
  priority: number;
  cc: string[];
}

export interface SendInput {
  subject: string;
  body: string;
  priority?: number;
  cc?: string[];
}

export interface MailPage {
  limit?: number;
  cursor?: string;
}

export interface MailCount {
  total: number;
  unread: number;
}

/** Body cap of one message. */
export const MAX_MAIL_BODY = 64 * 1024;

export interface Mail {
  /**
   * True when the provider commits each change's event with the change
   * itself (the store-backed mail with a recorder): RecordingMail then adds
   * none of its own.
   */
  readonly recordsEvents?: boolean;
  /** Deliver a new message (a new thread). Must succeed or throw. */
  send(from: string, to: string, input: SendInput): Promise<Message>;
  /**
   * Unread, unarchived messages of `recipient`, oldest first, at most
   * `limit`; marks them read. Takes no cursor: a non-null `next_cursor`
   * means more are unread, so call inbox again.
   */
  inbox(recipient: string, page?: MailPage): Promise<Page<Message>>;
  /** Like inbox, without marking anything read. */
  check(recipient: string, page?: MailPage): Promise<Page<Message>>;
  /** Every unarchived message of `recipient`, read or not, oldest first. */
  all(recipient: string, page?: MailPage): Promise<Page<Message>>;
  /** One message; does not mark it read. */
  get(id: string): Promise<Message>;
  /** One message, marked read (it stays in the mailbox). */
  read(id: string): Promise<Message>;
  /** Idempotent. */
  markRead(id: string): Promise<Message>;
  /** Idempotent. */
  markUnread(id: string): Promise<Message>;
  /** Answer `id`: same thread, `reply_to` = id, sent to the original sender. */
  reply(
    id: string,
    from: string,
    input: Omit<SendInput, 'subject'> & { subject?: string },
  ): Promise<Message>;
  /** Every message of the thread of `id` (archived ones too), oldest first. */
  thread(id: string): Promise<Message[]>;
  /** Remove from the mailbox, keep the record. A second archive is a ConflictError. */
  archive(id: string): Promise<Message>;
  /** Delete for good. NotFoundError when absent. */
  delete(id: string): Promise<void>;
  /** Unarchived messages of `recipient`: total and unread. */
  count(recipient: string): Promise<MailCount>;
}
